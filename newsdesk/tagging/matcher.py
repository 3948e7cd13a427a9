"""One Aho-Corasick automaton over folded text, with word boundaries and longest match."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import ahocorasick

from newsdesk.tagging.folding import fold

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Match(Generic[P]):
    start: int
    end: int  # exclusive
    payloads: tuple[P, ...]


class PhraseMatcher(Generic[P]):
    """Finds whole-word phrases; a phrase ending in `*` may run on to the end of its word.

    Keys are stored as " phrase " in folded text (punctuation already folded to spaces), so the
    automaton only reports matches that start and end on word boundaries.
    """

    def __init__(self, phrases: Iterable[tuple[str, P]]) -> None:
        grouped: dict[str, list[P]] = {}
        for phrase, payload in phrases:
            is_prefix = phrase.endswith("*")
            words = " ".join(fold(phrase.rstrip("*")).split())
            if not words:
                continue
            key = f" {words}" if is_prefix else f" {words} "
            grouped.setdefault(key, []).append(payload)
        self._automaton = ahocorasick.Automaton()
        for key, payloads in grouped.items():
            is_prefix = not key.endswith(" ")
            self._automaton.add_word(key, (is_prefix, len(key), tuple(payloads)))
        if grouped:
            self._automaton.make_automaton()
        self.size = len(grouped)

    def find(self, folded: str) -> Iterator[Match[P]]:
        """Leftmost-longest, non-overlapping, whole-word matches in already folded text."""
        if self.size == 0:
            return
        padded = f" {folded} "
        length = len(folded)
        candidates: list[tuple[int, int, tuple[P, ...]]] = []
        for end_index, (is_prefix, size, payloads) in self._automaton.iter(padded):
            # In `padded`, the key covers [end_index - size + 1, end_index]; shift by the pad.
            start = end_index - size + 1  # the leading space's index = the word's index in folded
            if is_prefix:
                end = end_index  # in folded coordinates, one past the matched prefix
                while end < length and folded[end].isalnum():
                    end += 1
            else:
                end = end_index - 1  # drop the trailing space, then the pad
            candidates.append((start, end, payloads))
        # Longest first at each start, then sweep left to right: "south korea" beats "korea".
        candidates.sort(key=lambda c: (c[0], -(c[1] - c[0])))
        cursor = 0
        for start, end, payloads in candidates:
            if start >= cursor:
                cursor = end
                yield Match(start, end, payloads)

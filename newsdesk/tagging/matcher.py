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
    """Finds whole-word phrases; a phrase ending in `*` may run on to the end of its word."""

    def __init__(self, phrases: Iterable[tuple[str, P]]) -> None:
        grouped: dict[str, list[P]] = {}
        prefix: set[str] = set()
        for phrase, payload in phrases:
            is_prefix = phrase.endswith("*")
            key = fold(phrase.rstrip("*").strip())
            if not key:
                continue
            if is_prefix:
                prefix.add(key)
            grouped.setdefault(key, []).append(payload)
        self._automaton = ahocorasick.Automaton()
        for key, payloads in grouped.items():
            self._automaton.add_word(key, (key in prefix, len(key), tuple(payloads)))
        if grouped:
            self._automaton.make_automaton()
        self.size = len(grouped)

    def find(self, folded: str) -> Iterator[Match[P]]:
        """Leftmost-longest, non-overlapping, whole-word matches in already folded text."""
        if self.size == 0:
            return
        candidates: list[tuple[int, int, tuple[P, ...]]] = []
        length = len(folded)
        for end_index, (is_prefix, size, payloads) in self._automaton.iter(folded):
            start = end_index - size + 1
            end = end_index + 1
            if start > 0 and folded[start - 1].isalnum():
                continue
            if is_prefix:
                while end < length and folded[end].isalnum():
                    end += 1
            elif end < length and folded[end].isalnum():
                continue
            candidates.append((start, end, payloads))
        # Longest first at each start, then sweep left to right: "south korea" beats "korea".
        candidates.sort(key=lambda c: (c[0], -(c[1] - c[0])))
        cursor = 0
        for start, end, payloads in candidates:
            if start >= cursor:
                cursor = end
                yield Match(start, end, payloads)

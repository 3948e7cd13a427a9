"""Text folding for matching: lower case, accents off, apostrophes and dashes unified.

Folding maps every character to exactly one character, so a match's offsets in the folded text
are its offsets in the original: evidence can quote the original words and check their case.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_APOSTROPHES = "'’‘ʼ′`´"
_DASHES = "-‐‑‒–—―−"


def _fold_char(char: str) -> str:
    if char in _APOSTROPHES:
        return "'"
    if char in _DASHES:
        return "-"
    if char.isspace():
        return " "
    lowered = char.lower()
    if len(lowered) != 1:
        return char
    base = unicodedata.normalize("NFD", lowered)[0]
    return base if base.isalnum() or not lowered.isalnum() else lowered


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    # The Basic Multilingual Plane up to CJK covers every script the gazetteer knows.
    table: dict[int, str] = {}
    for code in range(0x3000):
        char = chr(code)
        folded = _fold_char(char)
        if folded != char:
            table[code] = folded
    return table


def fold(text: str) -> str:
    """The folded form of `text`, the same length as `text`."""
    return text.translate(_table())


def is_word_char(char: str) -> bool:
    return char.isalnum()

"""File-name-safe slugs: ASCII, lower case, dashes; never a path separator or a dot."""

from __future__ import annotations

import re
import unicodedata


def slugify(text: str) -> str:
    """`Corée du Nord / Sud` -> `coree-du-nord-sud`; empty input gives `untitled`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:80].strip("-") or "untitled"

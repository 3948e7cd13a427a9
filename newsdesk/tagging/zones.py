"""Where in an article a word stands: headline, dateline, lede or body; each weighs differently."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsdesk.tagging.folding import fold

ZONE_WEIGHTS = {"title": 3.0, "dateline": 3.0, "lede": 2.0, "body": 1.0}

# "PARIS (Reuters) -", "WASHINGTON, Feb 26 -", "KYIV —", "BAMAKO, 3 mars (AFP) -"
_DATELINE = re.compile(
    r"^\s*([A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’. -]{1,40}?)"  # the place, in capitals
    r"(?:,\s*[^—–\-()\n]{1,30})?"  # ", Feb 26"
    r"\s*(?:\([^)\n]{1,30}\))?"  # "(Reuters)"
    r"\s*[—–-]+\s"
)


@dataclass(frozen=True, slots=True)
class Zones:
    """The article as one text, with the offsets where each zone ends."""

    text: str
    folded: str  # `text` folded for matching, computed once for every tagger
    title_end: int
    dateline_end: int
    lede_end: int

    def zone(self, offset: int) -> str:
        if offset < self.title_end:
            return "title"
        if offset < self.dateline_end:
            return "dateline"
        if offset < self.lede_end:
            return "lede"
        return "body"


def split_zones(title: str, body: str) -> Zones:
    """Join title and body into one text and mark the zones (title, dateline, lede, body)."""
    if title and body.startswith(title.rstrip("…").rstrip()):
        title = ""  # a headline derived from the lede would count the lede twice
    head = f"{title}\n\n"
    dateline = _DATELINE.match(body)
    dateline_end = len(head) + (dateline.end(1) if dateline else 0)
    first_break = body.find("\n\n")
    lede_end = len(head) + (first_break if first_break >= 0 else len(body))
    text = head + body
    return Zones(
        text=text,
        folded=fold(text),
        title_end=len(title),
        dateline_end=dateline_end,
        lede_end=lede_end,
    )

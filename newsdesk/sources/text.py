"""Plain text articles: the first paragraph is the lede; short bare lines are subheadings."""

from __future__ import annotations

import re

from newsdesk.models import Block

HEADING_MAX = 120
_BLANK_LINE = re.compile(r"\n[ \t\u00a0]*\n")
_CLOSING = tuple(".!?…:;,»\"”)’'")


def is_heading_line(line: str) -> bool:
    """A subheading: one short line that does not close like a sentence."""
    stripped = line.strip()
    return 0 < len(stripped) <= HEADING_MAX and not stripped.endswith(_CLOSING)


def text_blocks(text: str) -> tuple[str | None, tuple[Block, ...]]:
    """(headline if the text opens with one, blocks) from plain text."""
    blocks: list[Block] = []
    for chunk in _BLANK_LINE.split(text.replace("\r\n", "\n").replace("\r", "\n").strip()):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        # Only a lone line can be a heading: hard-wrapped prose also has short unpunctuated lines.
        if len(lines) == 1 and is_heading_line(lines[0]):
            blocks.append(Block("heading", lines[0]))
        else:
            blocks.append(Block("paragraph", " ".join(lines)))
    title: str | None = None
    if len(blocks) > 1 and blocks[0].kind == "heading" and blocks[1].kind == "paragraph":
        title = blocks.pop(0).text
    return title, tuple(blocks)

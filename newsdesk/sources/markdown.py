"""Markdown articles with optional front matter (title, date, url, lang, source, summary)."""

from __future__ import annotations

from typing import Any

import frontmatter
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt

from newsdesk.models import Block
from newsdesk.sources.html import html_blocks

_markdown = MarkdownIt("commonmark")


def markdown_article(text: str) -> tuple[dict[str, Any], str | None, tuple[Block, ...]]:
    """(front matter, headline from a leading `# h1` if any, blocks)."""
    post = frontmatter.loads(text)
    soup = BeautifulSoup(_markdown.render(post.content), "lxml")
    h1 = soup.find("h1")
    headline = h1.get_text(" ", strip=True) if h1 else None
    if h1:
        h1.decompose()
    body = soup.body or soup
    return dict(post.metadata), headline, html_blocks(body)

"""A whole web page -> the article it carries: metadata, headline and body blocks only.

Navigation, ads, cookie banners, share buttons, scripts and embeds are removed before the
article container is chosen, so none of it can reach a feed or an email.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from newsdesk.dates import parse_datetime
from newsdesk.models import Block

MIN_ARTICLE_CHARS = 80
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "iframe",
    "template",
    "svg",
    "canvas",
    "form",
    "nav",
    "footer",
    "aside",
    "button",
    "figure",
    "object",
    "embed",
    "video",
    "audio",
    "select",
    "input",
    "dialog",
)
_BOILERPLATE = re.compile(
    r"(^|[-_ ])(ads?|advert\w*|banner|cookies?|consent|promo\w*|newsletter|share|sharing|social|"
    r"related|sidebar|most-?read|popular|comments?|subscribe|subscription|byline|breadcrumbs?|"
    r"toolbar|menu|masthead|paywall|sponsored|outbrain|taboola)([-_ ]|$)",
    re.IGNORECASE,
)
_CONTAINER_HINT = re.compile(
    r"(article|story|entry|post|content)[-_]?(body|content|text)|articlebody", re.IGNORECASE
)
_BLOCK_TAGS = ("h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre")
_TITLE_SUFFIX = re.compile(r"\s+[|–—-]\s+[^|–—-]{2,60}$")


@dataclass(frozen=True, slots=True)
class Page:
    """What a page says about its article."""

    title: str | None
    summary: str | None
    url: str | None
    published: datetime | None
    language: str | None
    source: str | None
    blocks: tuple[Block, ...]


def parse_page(markup: str, base_url: str | None = None) -> Page:
    """Extract the article of a page; `blocks` is empty when the page carries no article text."""
    soup = BeautifulSoup(markup, "lxml")
    metadata = _metadata(soup, base_url)
    _strip_boilerplate(soup)
    container = _article_container(soup)
    blocks = html_blocks(container) if container is not None else ()
    title = metadata["title"]
    if blocks and blocks[0].kind == "heading" and title and blocks[0].text.strip() == title:
        blocks = blocks[1:]
    if sum(len(b.text) for b in blocks if b.kind == "paragraph") < MIN_ARTICLE_CHARS:
        blocks = ()
    return Page(
        title=title,
        summary=metadata["summary"],
        url=metadata["url"],
        published=parse_datetime(metadata["published"]),
        language=metadata["language"],
        source=metadata["source"],
        blocks=blocks,
    )


def html_blocks(container: Tag) -> tuple[Block, ...]:
    """Headings and paragraphs in document order, each block counted once."""
    blocks: list[Block] = []
    for element in container.find_all(_BLOCK_TAGS):
        # A <li> or <blockquote> wrapping <p> elements is read through its paragraphs.
        if element.find(_BLOCK_TAGS) is not None:
            continue
        for br in element.find_all("br"):
            br.replace_with("\n")
        text = " ".join(element.get_text().split())
        if not text:
            continue
        is_heading = element.name in ("h2", "h3", "h4", "h5", "h6")
        blocks.append(Block("heading" if is_heading else "paragraph", text))
    return tuple(blocks)


def _meta(soup: BeautifulSoup, *names: str) -> str | None:
    for name in names:
        tag = soup.find("meta", attrs={"property": name}) or soup.find("meta", attrs={"name": name})
        if isinstance(tag, Tag):
            content = str(tag.get("content") or "").strip()
            if content:
                return content
    return None


def _json_ld(soup: BeautifulSoup) -> Iterator[dict[str, object]]:
    for script in soup.find_all("script", attrs={"type": "application/ld+json"}):
        try:
            data = json.loads(script.string or "")
        except (json.JSONDecodeError, TypeError):
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                yield item
                if isinstance(item.get("@graph"), list):
                    stack.extend(item["@graph"])


def _metadata(soup: BeautifulSoup, base_url: str | None) -> dict[str, str | None]:
    ld = next((d for d in _json_ld(soup) if "datePublished" in d or "headline" in d), {})
    h1 = soup.find("h1")
    title_tag = soup.find("title")
    page_title = title_tag.get_text(" ", strip=True) if title_tag else ""
    title = (
        _meta(soup, "og:title", "twitter:title")
        or (h1.get_text(" ", strip=True) if h1 else None)
        or _TITLE_SUFFIX.sub("", page_title)
        or None
    )
    canonical = soup.find("link", attrs={"rel": "canonical"})
    url = (str(canonical.get("href") or "") if isinstance(canonical, Tag) else "") or _meta(
        soup, "og:url"
    )
    if url and base_url:
        url = urljoin(base_url, url)
    time_tag = soup.find("time", attrs={"datetime": True})
    html_tag = soup.find("html")
    return {
        "title": title,
        "summary": _meta(soup, "og:description", "description", "twitter:description"),
        "url": url or None,
        "published": (
            _meta(soup, "article:published_time", "date", "pubdate", "dc.date", "DC.date.issued")
            or (str(ld.get("datePublished")) if ld.get("datePublished") else None)
            or (str(time_tag.get("datetime")) if isinstance(time_tag, Tag) else None)
        ),
        "language": (str(html_tag.get("lang") or "") if isinstance(html_tag, Tag) else "")
        or _meta(soup, "og:locale", "language"),
        "source": _meta(soup, "og:site_name", "application-name"),
    }


def _strip_boilerplate(soup: BeautifulSoup) -> None:
    for element in soup.find_all(_DROP_TAGS):
        element.decompose()
    for element in soup.find_all(True):
        if element.decomposed or element.name in ("html", "body", "article", "main"):
            continue
        attrs = element.attrs or {}
        marker = " ".join([*attrs.get("class", []), str(attrs.get("id", ""))])
        hidden = attrs.get("aria-hidden") == "true" or "hidden" in attrs
        role = attrs.get("role") in ("navigation", "banner", "complementary", "contentinfo")
        if hidden or role or (marker.strip() and _BOILERPLATE.search(marker)):
            element.decompose()
    header = soup.find("header")
    while isinstance(header, Tag):
        header.decompose()
        header = soup.find("header")


def _paragraph_chars(element: Tag) -> int:
    return sum(len(p.get_text(strip=True)) for p in element.find_all("p"))


def _article_container(soup: BeautifulSoup) -> Tag | None:
    """The element holding the article: explicit markup first, then the densest paragraphs."""
    explicit = soup.find(True, attrs={"itemprop": "articleBody"})
    if isinstance(explicit, Tag) and _paragraph_chars(explicit) >= MIN_ARTICLE_CHARS:
        return explicit
    for candidates in (
        soup.find_all("article"),
        soup.find_all(class_=_CONTAINER_HINT),
        soup.find_all(id=_CONTAINER_HINT),
        soup.find_all("main"),
    ):
        best = max(candidates, key=_paragraph_chars, default=None)
        if isinstance(best, Tag) and _paragraph_chars(best) >= MIN_ARTICLE_CHARS:
            return best
    # No markup to go by: the parent of the most paragraph text.
    parents: dict[int, tuple[Tag, int]] = {}
    for paragraph in soup.find_all("p"):
        parent = paragraph.parent
        if isinstance(parent, Tag):
            _, chars = parents.get(id(parent), (parent, 0))
            parents[id(parent)] = (parent, chars + len(paragraph.get_text(strip=True)))
    if not parents:
        return None
    return max(parents.values(), key=lambda pair: pair[1])[0]

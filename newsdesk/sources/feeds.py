"""Fetched bytes -> RawEntry: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 (feedparser), JSON Feed, pages.

Only bytes come in; feedparser is never handed a URL or a path (it would fetch or open it).
Bytes are decoded here first (UTF-8 unless proven otherwise, whatever the declaration says) and
handed to feedparser as UTF-8, so a feed that lies about its encoding still reads correctly.
Documents that declare XML entities are refused before any parser sees them.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import io
import json
import logging
import re
from calendar import timegm
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import feedparser
from bs4 import BeautifulSoup
from lxml import etree
from lxml import html as lxml_html

from newsdesk.dates import parse_datetime
from newsdesk.errors import InputError
from newsdesk.models import Block, RawEntry
from newsdesk.sources.decoding import decode_text
from newsdesk.sources.html import parse_page
from newsdesk.sources.text import text_blocks
from newsdesk.urls import canonical_url, host_of, resolve

log = logging.getLogger(__name__)

Kind = Literal["feed", "page"]
SHORT_TEXT_CHARS = 500  # an entry with less text than this is "only a summary"
_ENTITY_DECLARATION = re.compile(r"<!ENTITY", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*?\?>", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_FEED_ROOT = re.compile(r"<(rss|feed|rdf:RDF|RDF)[\s>]", re.IGNORECASE)
_DROP = ("script", "style", "noscript", "iframe", "object", "embed", "template", "svg", "form")
_BLOCKS = ("h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre")
_TAG_LIKE = re.compile(r"<[a-zA-Z/!]")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """The entries of one feed document, and what had to be forgiven to read them."""

    title: str
    entries: tuple[RawEntry, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Item:
    """One feed item in format-neutral form, before it becomes a RawEntry."""

    guid: str | None
    link: str | None
    title: str | None
    content_html: str
    summary_html: str
    published: datetime | None
    language: str | None


def detect_kind(body: bytes, content_type: str) -> Kind:
    """Feed or page, by media type first and then by sniffing the document's start."""
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/rss+xml", "application/atom+xml", "application/feed+json"):
        return "feed"
    if media in ("text/html", "application/xhtml+xml"):
        return "page"
    head = body[:4096].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if head.startswith("{") and "jsonfeed.org/version" in head:
        return "feed"
    if head.startswith("<") and _FEED_ROOT.search(head) and "<html" not in head.lower():
        return "feed"
    return "page"


def parse_feed(
    body: bytes, url: str, source: str, content_type: str = "", language: str | None = None
) -> ParsedFeed:
    """Every entry of a feed document; InputError when the document is not a usable feed."""
    problems: list[str] = []
    text, problem = decode_document(body, content_type, url)
    if problem:
        problems.append(problem)
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        title, items = _json_feed(stripped, url)
    else:
        refuse_entities(stripped, url)
        title, items, bozo = _xml_feed(stripped, url)
        if bozo:
            problems.append(bozo)
    entries = [_entry(item, url, source, language) for item in items]
    kept = tuple(e for e in entries if e is not None)
    if len(kept) < len(entries):
        problems.append(f"{len(entries) - len(kept)} entries had no title, text or link; skipped")
    return ParsedFeed(title=title, entries=kept, problems=tuple(problems))


def parse_article_page(
    body: bytes, url: str, source: str, content_type: str = "", language: str | None = None
) -> tuple[RawEntry, str | None]:
    """The article a page carries as a RawEntry (plus a decoding note), or InputError."""
    text, problem = decode_document(body, content_type, url)
    page = parse_page(text, base_url=url)
    if not page.blocks:
        raise InputError(url, "page holds no article text; check it is an article page")
    page_url = resolve(url, page.url) or url
    entry = RawEntry(
        origin=url,
        key=f"url:{canonical_url(page_url)}",
        source=source,
        blocks=page.blocks,
        title=page.title,
        summary=page.summary,
        url=canonical_url(page_url),
        published=page.published,
        language=page.language or language,
    )
    return entry, problem


def page_blocks(body: bytes, url: str, content_type: str = "") -> tuple[Block, ...]:
    """The article text of a page fetched to complete a short feed entry (may be empty)."""
    text, _ = decode_document(body, content_type, url)
    return parse_page(text, base_url=url).blocks


def is_short(entry: RawEntry) -> bool:
    """Whether an entry carries only a summary, so its article page is worth fetching."""
    return bool(entry.url) and sum(len(b.text) for b in entry.blocks) < SHORT_TEXT_CHARS


def refuse_entities(text: str, origin: str) -> None:
    """Refuse a document whose DOCTYPE declares entities (billion laughs, external entities)."""
    if _DOCTYPE.search(text) and _ENTITY_DECLARATION.search(text):
        raise InputError(
            origin,
            "document declares XML entities in its DOCTYPE (entity expansion or external "
            "entities); refused as unsafe",
        )


def decode_document(body: bytes, content_type: str, origin: str) -> tuple[str, str | None]:
    """(text, note): UTF-8 when the bytes are UTF-8, else the declared or a detected encoding."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return body.decode("utf-16", errors="replace"), None
    declared = _declared_charset(body, content_type)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    else:
        if declared and _codec(declared) not in ("utf-8", "ascii", None) and not body.isascii():
            return text, f"declared encoding {declared} but the bytes are UTF-8; read as UTF-8"
        return text, None
    codec = _codec(declared) if declared else None
    if codec and codec != "utf-8":
        try:
            return body.decode(codec), None
        except UnicodeDecodeError:
            pass
    legacy = decode_text(body, origin)  # raises InputError when nothing fits
    return legacy, (
        f"not valid {declared or 'UTF-8'}; decoded with a detected legacy encoding, "
        "some characters may be wrong"
    )


def _declared_charset(body: bytes, content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    head = body[:2048]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _xml_feed(text: str, url: str) -> tuple[str, list[_Item], str | None]:
    # The text is already decoded: re-encode as UTF-8 and say so, so feedparser cannot
    # re-interpret it by a wrong declaration.
    utf8 = _XML_DECLARATION.sub('<?xml version="1.0" encoding="utf-8"?>', text, count=1)
    parsed = feedparser.parse(
        io.BytesIO(utf8.encode("utf-8")),
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": url,
        },
        # Content is reduced to text blocks and sanitized by nh3 later, and entry links are
        # resolved here; feedparser's own (slow, sgmllib) passes would only repeat that work.
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    if not parsed.entries and (parsed.bozo or not parsed.version):
        reason = parsed.get("bozo_exception") or "no feed elements found"
        raise InputError(url, f"not a readable RSS or Atom feed ({reason}); check the URL")
    note = None
    if parsed.bozo:
        note = f"feed is not well-formed XML ({parsed.get('bozo_exception')}); read leniently"
    feed = parsed.feed
    feed_language = feed.get("language")
    items = [_feedparser_item(entry, feed_language) for entry in parsed.entries]
    return _plain(feed.get("title")) or url, items, note


def _feedparser_item(entry: Any, feed_language: str | None) -> _Item:
    contents = [c for c in entry.get("content", []) if c.get("value")]
    content = max(contents, key=lambda c: len(c["value"]), default=None)
    summary = entry.get("summary") or ""
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    moment = moment or entry.get("created_parsed")
    detail = entry.get("content", [{}])[0] if entry.get("content") else {}
    language = (
        (detail.get("language") if detail else None)
        or entry.get("title_detail", {}).get("language")
        or feed_language
    )
    return _Item(
        guid=entry.get("id") or None,
        link=entry.get("link") or None,
        title=entry.get("title"),
        content_html=content["value"] if content else "",
        summary_html=summary,
        published=datetime.fromtimestamp(timegm(moment), tz=UTC) if moment else None,
        language=language,
    )


def _json_feed(text: str, url: str) -> tuple[str, list[_Item]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(url, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    if not version.startswith("https://jsonfeed.org/version/"):
        raise InputError(url, "JSON document is not a JSON Feed (no jsonfeed.org version)")
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise InputError(url, "JSON Feed has no items list")
    base = resolve(url, _string(data.get("feed_url"))) or url
    feed_language = _string(data.get("language"))
    items = [
        _Item(
            guid=_string(item.get("id")),
            link=resolve(base, _string(item.get("url")) or _string(item.get("external_url"))),
            title=_string(item.get("title")),
            content_html=_string(item.get("content_html"))
            or _escape_text(_string(item.get("content_text"))),
            summary_html=_escape_text(_string(item.get("summary"))),
            published=parse_datetime(item.get("date_published") or item.get("date_modified")),
            language=_string(item.get("language")) or feed_language,
        )
        for item in raw_items
        if isinstance(item, dict)
    ]
    return _string(data.get("title")) or url, items


def _string(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _escape_text(text: str | None) -> str:
    return html.escape(text or "", quote=False).replace("\n", "<br>")


def _entry(item: _Item, url: str, source: str, language: str | None) -> RawEntry | None:
    link = resolve(url, item.link)
    link = canonical_url(link) if link else None
    title = _plain(item.title)
    blocks = fragment_blocks(item.content_html or item.summary_html)
    summary = _plain(item.summary_html) if item.content_html and item.summary_html else None
    if not blocks and title:
        blocks = (Block("paragraph", title),)  # a headline-only item still says something
    if not blocks and not link:
        return None
    text = "\n".join(b.text for b in blocks)
    if item.guid:
        key = f"guid:{source}:{item.guid}"  # guids are only unique within their feed
    elif link:
        key = f"url:{link}"
    else:
        digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:32]
        key = f"hash:{source}:{digest}"
    return RawEntry(
        origin=f"{url} entry {item.guid or link or (title or '')[:60]}",
        key=key,
        source=source,
        blocks=blocks,
        title=title,
        summary=summary[:1000] if summary else None,
        url=link,
        published=item.published,
        language=item.language or language,
    )


def _plain(markup: str | None) -> str | None:
    """Text of a title or summary that may hold markup; tags dropped, spacing folded."""
    if not markup:
        return None
    if _TAG_LIKE.search(markup):
        soup = BeautifulSoup(markup, "lxml")
        for element in soup.find_all(_DROP):
            element.decompose()
        markup = soup.get_text(" ")
    text = " ".join(markup.split())
    return text or None


def fragment_blocks(markup: str) -> tuple[Block, ...]:
    """Headings and paragraphs of an HTML fragment (feed content), loose text included."""
    markup = markup.replace("\x00", "")
    if not markup.strip():
        return ()
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return ()
    for element in list(root.iter(*_DROP)):
        element.drop_tree()
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    structured: list[Block] = []
    for element in root.iter(*_BLOCKS):
        if any(isinstance(d.tag, str) and d.tag in _BLOCKS for d in element.iterdescendants()):
            continue  # read through its inner blocks
        text = " ".join(element.text_content().split())
        if text:
            heading = element.tag in ("h2", "h3", "h4", "h5", "h6")
            structured.append(Block("heading" if heading else "paragraph", text))
    all_text = " ".join(root.text_content().split())
    if structured and sum(len(b.text) for b in structured) >= 0.8 * len(all_text):
        return tuple(structured)
    # Loose text (no <p>, or text between blocks): read it the way plain text is read.
    for element in root.iter(*_BLOCKS, "div"):
        element.text = "\n\n" + (element.text or "")
        element.tail = "\n\n" + (element.tail or "")
    title, blocks = text_blocks(root.text_content())
    return ((Block("heading", title),) if title else ()) + blocks


def source_name_for(url: str, names: Iterable[str] = ()) -> str:
    """A readable name for an unnamed URL: its host, made unique against `names`."""
    base = host_of(url) or url
    taken = set(names)
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base} ({counter})", counter + 1
    return name

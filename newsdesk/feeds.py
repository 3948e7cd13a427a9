"""Articles + a feed definition -> RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes, and an OPML list.

feedgen writes RSS and Atom; what it lacks (sibling and hub links in RSS, per-entry xml:lang)
comes from our extensions in `newsdesk.feedext`. Each article is rendered once into a `FeedItem`
(its RSS item, Atom entry and JSON Feed item as bytes) that every feed carrying it reuses; the
store keeps it for later builds (`ITEM_FORMAT`). JSON Feed 1.1 is written directly: feedgen has
none.

Pure: dates come from the articles (or `now` for an empty feed), so the bytes are reproducible.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib.metadata import version
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3
import orjson
from feedgen.entry import FeedEntry
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from newsdesk import feedext
from newsdesk.catalog import KIND_HEADINGS, KIND_ORDER, FeedDef
from newsdesk.feedext import EntryLanguage, FeedLinks
from newsdesk.models import Article, FeedItem, Tag
from newsdesk.normalize import ALLOWED_TAGS, tag_uri
from newsdesk.store import ArticleFilter
from newsdesk.tagging.custom import CUSTOM_PREFIX
from newsdesk.tagging.taxonomy import URI_BASE

FORMATS = {"rss": "rss", "atom": "atom", "json": "json"}  # format -> file extension
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
FORMAT_NAMES = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "newsdesk"
# What an item's bytes depend on besides the article: bump ITEM_VERSION when the code renders
# the same article differently. Stored items with another format are rendered again.
ITEM_VERSION = "2"  # 2: hexadecimal references in RSS text; unique atom:updated
ITEM_FORMAT = "; ".join(
    [f"items {ITEM_VERSION}", *(f"{name} {version(name)}" for name in ("feedgen", "lxml", "nh3"))]
)
# Ours rather than lxml's (single quotes, upper-case UTF-8): the same prolog in every format.
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
# Category schemes, so a reader can tell an IPTC topic from an ISO country code.
COUNTRY_SCHEME = "https://www.iso.org/iso-3166-country-codes.html"
M49_SCHEME = "https://unstats.un.org/unsd/methodology/m49/"
CUSTOM_SCHEME = "urn:newsdesk:custom"  # the operator's own regions and topics

# XML 1.0 forbids most control characters even when escaped; drop them from every text.
_INVALID_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# nh3 writes every attribute as ` name="value"`: a literal prefix the regex engine finds fast.
_HREF = re.compile(r'( href=")([^"]*)(")')
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes={"a": {"href", "title"}},
    url_schemes={"http", "https", "mailto"},
)


@dataclass(frozen=True, slots=True)
class Site:
    """What every feed shares: where it is served, what it is called, its WebSub hub."""

    base_url: str  # the feeds folder, ending in /
    title: str
    description: str
    default_language: str
    hub: str = ""

    def url(self, name: str) -> str:
        return _clean(urljoin(self.base_url, name))  # lxml refuses what XML forbids


def feed_url(site: Site, feed: FeedDef, fmt: str) -> str:
    return site.url(f"{feed.slug}.{FORMATS[fmt]}")


def render(
    feed: FeedDef, articles: Sequence[Article], fmt: str, site: Site, now: datetime
) -> bytes:
    """One feed in one format; `articles` are newest first and none is later than `now`."""
    renderer = ItemRenderer(site)
    return render_feed(feed, [renderer.render(a) for a in articles], fmt, site, now)


def render_feed(
    feed: FeedDef, items: Sequence[FeedItem], fmt: str, site: Site, now: datetime
) -> bytes:
    """One feed in one format from items already rendered (newest first)."""
    if fmt == "json":
        return _render_json(feed, items, site)
    if fmt not in FORMATS:
        raise ValueError(f"unknown feed format {fmt!r}")
    head = _head(_generator(feed, fmt, items, site, now), fmt)
    # feedgen appends the entries last in the channel (RSS) or the feed (Atom): splice them in
    # before its closing tag, each indented as feedgen's pretty printing would indent it.
    closing = head.rindex(_CLOSING[fmt])
    return b"".join([head[:closing], *(getattr(item, fmt) for item in items), head[closing:]])


def feed_language(feed: FeedDef, items: Sequence[FeedItem | Article], site: Site) -> str:
    """The feed's language: its own, the one all items share, or the site default."""
    if feed.language:
        return feed.language
    languages = {a.language for a in items}
    return languages.pop() if len(languages) == 1 else site.default_language


def newest(items: Sequence[FeedItem | Article], now: datetime) -> datetime:
    """The feed's date: its newest item's, never the clock unless the feed is empty."""
    return max((entry_updated(a.id, a.published) for a in items), default=now)


def entry_updated(article_id: str, published: datetime) -> datetime:
    """An Atom entry's `updated`: its published second plus a fraction of a second taken from
    its id. Articles published in the same second are common (a batch, a wire, files with one
    mtime) and the W3C validator warns when two entries of a feed share `atom:updated`; the
    fraction tells them apart, the same in every build, without moving them out of their
    second."""
    return _utc(published).replace(microsecond=zlib.crc32(article_id.encode()) % 1_000_000)


def content_html(article: Article) -> str:
    """The article's HTML, sanitized again (the store is not trusted) with absolute links."""
    cleaned = _CLEANER.clean(article.body_html)
    if ' href="' not in cleaned:
        return cleaned
    base = article.url if _is_web(article.url) else ""

    def absolute(match: re.Match[str]) -> str:
        target = html.unescape(match.group(2)).strip()
        if _is_absolute(target):
            resolved = target
        elif not base:
            return ""  # a relative link with nothing to resolve it against: drop the href
        elif target.startswith("/") and not target.startswith("//"):
            parts = urlsplit(base)  # root-relative, the common case: no need for urljoin
            resolved = f"{parts.scheme}://{parts.netloc}{target}"
        else:
            resolved = urljoin(base, target)
            if not _is_absolute(resolved):
                return ""
        return f"{match.group(1)}{html.escape(resolved)}{match.group(3)}"

    return _HREF.sub(absolute, cleaned)


def summary_text(article: Article) -> str:
    """A non-empty plain-text summary."""
    return article.summary.strip() or article.body_text.strip()[:300] or article.title


# Items: each article rendered once per format ---------------------------------------------


class ItemRenderer:
    """Articles -> FeedItems for one site.

    feedgen makes every RSS item and Atom entry, as it would inside a feed; the element is then
    serialized in a frame with the namespaces and the depth of a real feed, so its bytes are
    what feedgen would write for it in any feed, and a feed becomes a head plus its items'
    bytes. Serializing each article once instead of once per feed that carries it is what
    keeps a full build of hundreds of overlapping feeds fast.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._categories: dict[tuple[str, str, str], dict[str, str]] = {}
        sample = FeedDef("frame", "all", "frame", "", ArticleFilter())
        self._frames = {
            fmt: _frame(_generator(sample, fmt, [], site, datetime.now(UTC)), fmt)
            for fmt in ("rss", "atom")
        }

    def render(self, article: Article) -> FeedItem:
        content = _clean(content_html(article))
        entry = self._entry(article, content)
        return FeedItem(
            id=article.id,
            published=article.published,
            language=article.language,
            rss=self._serialize(entry.rss_entry(), "rss"),
            atom=self._serialize(entry.atom_entry(), "atom"),
            # orjson: forty times faster than json.dumps on items this size, same JSON.
            json=orjson.dumps(_json_item(article, content)),
        )

    def _serialize(self, element: Any, fmt: str) -> bytes:
        root, parent = self._frames[fmt]
        parent.append(element)  # lxml moves the element's namespaces onto the frame's
        try:
            text: bytes = etree.tostring(root, pretty_print=True, encoding="utf-8")
        finally:
            parent.remove(element)
        start = 0
        for _ in range(_OPENING_LINES[fmt]):  # "<rss ...>", "  <channel>" | "<feed ...>"
            start = text.index(b"\n", start) + 1
        serialized = text[start : text.rindex(_CLOSING[fmt])]
        return _rss_plain_text(serialized) if fmt == "rss" else serialized

    def _entry(self, article: Article, content: str) -> FeedEntry:
        # Every value is cleaned and checked before feedgen sees it: feedgen raises on a naive
        # date or a character XML forbids, half-way through, leaving a half-built entry behind.
        guid = tag_uri(article.id)
        published = _utc(article.published)
        summary = _clean(summary_text(article)).strip()
        title = _clean(article.title).strip() or summary or guid
        source = _clean(article.source)
        language = _clean(article.language)
        url = _clean(article.url) if _is_web(article.url) else ""
        categories = [self._category(tag) for tag in article.tags]

        entry = FeedEntry()
        # The extensions a feed would register on the entries it is given: this entry joins
        # no FeedGenerator, so it carries its own.
        entry.register_extension(feedext.NAMESPACE, EntryLanguage)
        entry.register_extension("dc", DcEntryExtension, atom=False, rss=True)
        entry.id(guid)  # also the RSS <guid isPermaLink="false">
        entry.title(title)
        entry.published(published)
        entry.updated(entry_updated(article.id, published))
        if url:
            entry.link(href=url, rel="alternate", type="text/html")
        if source:
            entry.author(name=source)  # Atom only: RSS <author> must be an email address
            entry.dc.dc_creator(source)
        # The order matters: summary() sets the Atom summary (plain text) and the RSS
        # description; description() then makes the RSS description HTML (the text escaped
        # once more, so a literal "<" stays text) but also overwrites the Atom content, which
        # content() sets last.
        entry.summary(summary or title)
        entry.description(html.escape(summary or title, quote=False))
        entry.content(content, type="html")  # Atom content and RSS content:encoded
        if categories:
            entry.category(categories)
        if language:
            entry.dc.dc_language(language)
            getattr(entry, feedext.NAMESPACE).language = language
        return entry

    def _category(self, tag: Tag) -> dict[str, str]:
        """A category for feedgen: Atom term, scheme and label; RSS shows the label, scheme as
        domain. Made once for each tag (most items share them)."""
        key = (tag.kind, tag.code, tag.label)
        found = self._categories.get(key)
        if found is None:
            code = _clean(tag.code)
            found = self._categories[key] = {
                "term": code,
                "scheme": _scheme(tag),
                "label": _clean(tag.label) or code,
            }
        return found


# RSS 2.0 and Atom 1.0 heads, through feedgen -----------------------------------------------

# Where a feed's entries end: feedgen's pretty printing puts these on a line of their own.
_CLOSING = {"rss": b"  </channel>", "atom": b"</feed>"}
_OPENING_LINES = {"rss": 2, "atom": 1}  # and where they start, in an entry's frame


def _generator(
    feed: FeedDef, fmt: str, items: Sequence[FeedItem], site: Site, now: datetime
) -> FeedGenerator:
    """A feed's head as feedgen renders it for `fmt`; the entries are spliced in later."""
    generator = FeedGenerator()
    generator.id(feed_url(site, feed, "atom"))  # Atom only
    generator.title(_clean(feed.title) or feed.slug)
    generator.description(_clean(_description(feed, site)) or feed.slug)  # and Atom subtitle
    generator.language(feed_language(feed, items, site))  # and Atom xml:lang
    generator.generator(GENERATOR)
    # feedgen stamps the clock into updated and lastBuildDate: set both from the items.
    generator.updated(newest(items, now) if items else _utc(now))
    if fmt == "rss":
        # dc: declares the namespace of the items' dc:creator and dc:language; ours adds
        # links. register_extension, not load_extension: that imports a module on every call.
        generator.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
        generator.register_extension(feedext.NAMESPACE, FeedLinks, EntryLanguage)
        generator.docs("https://www.rssboard.org/rss-specification")
        generator.link(href=feed_url(site, feed, "rss"), rel="self", type=MEDIA_TYPES["rss"])
        # RSS <link> is the feed's last link in feedgen: the index, as a page for people.
        generator.link(href=site.url("index.html"), rel="alternate")
        links: FeedLinks = getattr(generator, feedext.NAMESPACE)
        for other in FORMATS:
            if other != "rss":
                links.link("alternate", feed_url(site, feed, other), MEDIA_TYPES[other])
        if site.hub:
            links.link("hub", _clean(site.hub))
    else:
        generator.author(name=_clean(site.title) or GENERATOR)
        generator.link(href=feed_url(site, feed, "atom"), rel="self", type=MEDIA_TYPES["atom"])
        generator.link(href=site.url("index.html"), rel="alternate", type="text/html")
        for other in FORMATS:
            if other != "atom":
                generator.link(
                    href=feed_url(site, feed, other), rel="alternate", type=MEDIA_TYPES[other]
                )
        if site.hub:
            generator.link(href=_clean(site.hub), rel="hub")
    return generator


def _head(generator: FeedGenerator, fmt: str) -> bytes:
    if fmt == "rss":
        return XML_DECLARATION + _rss_plain_text(
            bytes(generator.rss_str(pretty=True, xml_declaration=False)), _RSS_HEAD_PLAIN_TEXT
        )
    return XML_DECLARATION + bytes(generator.atom_str(pretty=True, xml_declaration=False))


# RSS elements of plain text (the channel's description too, but not an item's: that is HTML).
# The RSS Profile, and so the W3C validator, wants "&" and "<" in them written as hexadecimal
# character references, so a reader cannot take the text for HTML; lxml writes "&amp;" and
# "&lt;". The same XML either way: only the spelling changes.
_RSS_PLAIN_TEXT = re.compile(
    rb"(<(title|category|dc:creator)(?: [^>]*)?>)([^<]*&(?:amp|lt);[^<]*)(</\2>)"
)
_RSS_HEAD_PLAIN_TEXT = re.compile(
    rb"(<(title|description|category|dc:creator)(?: [^>]*)?>)([^<]*&(?:amp|lt);[^<]*)(</\2>)"
)


def _rss_plain_text(xml: bytes, elements: re.Pattern[bytes] = _RSS_PLAIN_TEXT) -> bytes:
    def hexadecimal(match: re.Match[bytes]) -> bytes:
        text = match.group(3).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
        return match.group(1) + text + match.group(4)

    return elements.sub(hexadecimal, xml)


def _frame(generator: FeedGenerator, fmt: str) -> tuple[Any, Any]:
    """An empty feed to serialize entries in: its root and the entries' parent.

    Read back from feedgen's own output, so the root declares the namespaces a real feed's
    root declares, and an entry comes out as it would in a real feed.
    """
    write = generator.rss_str if fmt == "rss" else generator.atom_str
    root = etree.fromstring(write(pretty=False), _FRAME_PARSER)
    parent = root[0] if fmt == "rss" else root  # <rss><channel> | <feed>
    for child in list(parent):
        parent.remove(child)
    return root, parent


_FRAME_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)


# JSON Feed 1.1 -----------------------------------------------------------------------------


def _render_json(feed: FeedDef, items: Sequence[FeedItem], site: Site) -> bytes:
    head: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": site.url("index.html"),
        "feed_url": feed_url(site, feed, "json"),
        "description": _description(feed, site),
        "language": feed_language(feed, items, site),
        "authors": [{"name": site.title}],
    }
    if site.hub:
        head["hubs"] = [{"type": "WebSub", "url": site.hub}]
    # JSON Feed has no link to alternates; an extension object (leading "_") carries them.
    head["_newsdesk"] = {
        "about": site.url("index.html"),
        "alternates": [
            {"type": MEDIA_TYPES[fmt], "url": feed_url(site, feed, fmt)}
            for fmt in FORMATS
            if fmt != "json"
        ],
    }
    prefix = json.dumps(head, ensure_ascii=False, indent=1)[:-2]  # without the closing "\n}"
    body = b",\n".join(item.json for item in items)
    return b"".join([f'{prefix},\n "items": [\n'.encode(), body, b"\n ]\n}\n"])


def _json_item(article: Article, content: str) -> dict[str, object]:
    stamp = _rfc3339(article.published)
    item: dict[str, object] = {"id": tag_uri(article.id)}
    if _is_web(article.url):
        item["url"] = article.url
    item |= {
        "title": _clean(article.title),
        "content_html": content,
        "summary": _clean(summary_text(article)),
        "date_published": stamp,
        "date_modified": stamp,
    }
    source = _clean(article.source).strip()
    if source:  # an author object needs a name (or a url or an avatar): none is better than ""
        item["authors"] = [{"name": source}]
    item |= {
        "language": article.language,
        "tags": list(dict.fromkeys(tag.label or tag.code for tag in article.tags)),
    }
    return item


# OPML 2.0 ----------------------------------------------------------------------------------


def render_opml(feeds: Sequence[FeedDef], site: Site, updated: datetime) -> bytes:
    """OPML 2.0 subscribing to every feed (Atom), outlines grouped by kind."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = _clean(site.title)
    ET.SubElement(head, "dateModified").text = _rfc822(updated)
    # No <docs>: OPML 2.0 allows it, but the W3C validator calls it an undefined element.
    body = ET.SubElement(opml, "body")
    for kind in KIND_ORDER:
        members = [f for f in feeds if f.kind == kind]
        if not members:
            continue
        group = ET.SubElement(body, "outline", text=KIND_HEADINGS[kind])
        for feed in members:
            ET.SubElement(
                group,
                "outline",
                type="rss",
                text=_clean(feed.title),
                title=_clean(feed.title),
                description=_clean(_description(feed, site)),
                xmlUrl=feed_url(site, feed, "atom"),
                htmlUrl=site.url("index.html"),
            )
    ET.indent(opml)
    declaration = '<?xml version="1.0" encoding="utf-8"?>\n'
    return (declaration + ET.tostring(opml, encoding="unicode") + "\n").encode("utf-8")


# Helpers -----------------------------------------------------------------------------------


def _description(feed: FeedDef, site: Site) -> str:
    return feed.description.strip() or site.description.strip() or feed.title


def _scheme(tag: Tag) -> str:
    """The vocabulary a category comes from: IPTC Media Topics, ISO 3166, UN M49 or ours."""
    if tag.code.startswith(CUSTOM_PREFIX):
        return CUSTOM_SCHEME
    if tag.kind == "topic":
        return URI_BASE
    if tag.kind == "country":
        return COUNTRY_SCHEME
    return M49_SCHEME


def _is_web(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _is_absolute(url: str) -> bool:
    for prefix in ("https://", "http://"):  # the common cases, without parsing
        if url.startswith(prefix):
            host = url[len(prefix) : len(prefix) + 1]
            return bool(host) and host not in "/?#"
    if ":" not in url:
        return False  # no scheme: relative
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return parts.scheme == "mailto"


def _clean(text: str) -> str:
    return _INVALID_XML.sub("", text) if _INVALID_XML.search(text) else text


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(moment: datetime) -> datetime:
    """An aware UTC time to the second, as feedgen wants it (it rejects naive times)."""
    if moment.tzinfo is None:  # the store keeps UTC; a naive time can only mean UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)

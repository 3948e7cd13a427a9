"""Articles + a feed definition -> RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes, and an OPML list.

Written directly rather than through feedgen: every element the W3C Feed Validation Service
wants is under our control (self/alternate/hub links, isPermaLink, per-item language), and an
item is rendered once per build however many feeds carry it (`EntryCache`).

Pure: dates come from the articles (or `now` for an empty feed), so the bytes are reproducible.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin, urlsplit

import nh3
import orjson

from newsdesk.catalog import KIND_HEADINGS, KIND_ORDER, FeedDef
from newsdesk.models import Article, Tag
from newsdesk.normalize import ALLOWED_TAGS, tag_uri
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
        return urljoin(self.base_url, name)


@dataclass
class EntryCache:
    """Rendered items by (format, article id), so an article is rendered once per build."""

    items: dict[tuple[str, str], bytes] = field(default_factory=dict)  # encoded once
    categories: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)  # article id -> HTML
    escaped: dict[str, str] = field(default_factory=dict)  # article id -> HTML escaped for XML
    fields: dict[str, Escaped] = field(default_factory=dict)  # article id -> its text, escaped


@dataclass(frozen=True, slots=True)
class Escaped:
    """An article's short texts escaped for XML once, for both the RSS and the Atom item."""

    title: str
    summary: str
    source: str
    url: str  # "" when the article has no web address
    guid: str
    language: str

    @classmethod
    def of(cls, article: Article, cache: EntryCache) -> Escaped:
        found = cache.fields.get(article.id)
        if found is None:
            found = cache.fields[article.id] = cls(
                title=_x(article.title),
                summary=_x(summary_text(article)),
                source=_x(article.source),
                url=_xa(article.url) if _is_web(article.url) else "",
                guid=_x(tag_uri(article.id)),
                language=_xa(article.language),
            )
        return found


def feed_url(site: Site, feed: FeedDef, fmt: str) -> str:
    return site.url(f"{feed.slug}.{FORMATS[fmt]}")


def render(
    feed: FeedDef,
    articles: Sequence[Article],
    fmt: str,
    site: Site,
    now: datetime,
    cache: EntryCache | None = None,
) -> bytes:
    """One feed in one format; `articles` are newest first and none is later than `now`."""
    cache = cache if cache is not None else EntryCache()
    if fmt == "rss":
        return _render_rss(feed, articles, site, now, cache)
    if fmt == "atom":
        return _render_atom(feed, articles, site, now, cache)
    if fmt == "json":
        return _render_json(feed, articles, site, now, cache)
    raise ValueError(f"unknown feed format {fmt!r}")


def feed_language(feed: FeedDef, articles: Sequence[Article], site: Site) -> str:
    """The feed's language: its own, the one all items share, or the site default."""
    if feed.language:
        return feed.language
    languages = {a.language for a in articles}
    return languages.pop() if len(languages) == 1 else site.default_language


def newest(articles: Sequence[Article], now: datetime) -> datetime:
    """The feed's date: its newest item's, never the clock unless the feed is empty."""
    return max((a.published for a in articles), default=now)


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


# RSS 2.0 -----------------------------------------------------------------------------------


def _render_rss(
    feed: FeedDef, articles: Sequence[Article], site: Site, now: datetime, cache: EntryCache
) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n',
        f"<title>{_x(feed.title)}</title>\n",
        f"<link>{_x(site.url('index.html'))}</link>\n",
        f"<description>{_x(_description(feed, site))}</description>\n",
        f"<language>{_x(feed_language(feed, articles, site))}</language>\n",
        f"<lastBuildDate>{_rfc822(newest(articles, now))}</lastBuildDate>\n",
        f"<generator>{GENERATOR}</generator>\n",
        "<docs>https://www.rssboard.org/rss-specification</docs>\n",
        *_atom_links(feed, site, "rss", "atom:link"),
    ]
    items = []
    for article in articles:
        key = ("rss", article.id)
        item = cache.items.get(key)
        if item is None:
            item = cache.items[key] = _rss_item(article, cache).encode("utf-8")
        items.append(item)
    return b"".join(["".join(parts).encode("utf-8"), *items, b"</channel>\n</rss>\n"])


def _rss_item(article: Article, cache: EntryCache) -> str:
    text = Escaped.of(article, cache)
    parts = ["<item>\n", f"<title>{text.title}</title>\n"]
    if text.url:
        parts.append(f"<link>{text.url}</link>\n")
    # description is HTML in RSS: the escaped text escaped once more (its & become &amp;amp;).
    parts.append(f"<description>{text.summary.replace('&', '&amp;')}</description>\n")
    parts.append(f"<content:encoded>{_content_x(article, cache)}</content:encoded>\n")
    parts.append(f"<dc:creator>{text.source}</dc:creator>\n")
    parts.append(f"<dc:language>{text.language}</dc:language>\n")
    parts += [_category(tag, "rss", cache) for tag in article.tags]
    parts.append(f'<guid isPermaLink="false">{text.guid}</guid>\n')
    parts.append(f"<pubDate>{_rfc822(article.published)}</pubDate>\n</item>\n")
    return "".join(parts)


# Atom 1.0 ----------------------------------------------------------------------------------


def _render_atom(
    feed: FeedDef, articles: Sequence[Article], site: Site, now: datetime, cache: EntryCache
) -> bytes:
    language = feed_language(feed, articles, site)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{_xa(language)}">\n',
        f"<id>{_x(feed_url(site, feed, 'atom'))}</id>\n",
        f"<title>{_x(feed.title)}</title>\n",
        f"<subtitle>{_x(_description(feed, site))}</subtitle>\n",
        f"<updated>{_rfc3339(newest(articles, now))}</updated>\n",
        *_atom_links(feed, site, "atom", "link"),
        f"<author><name>{_x(site.title)}</name></author>\n",
        f"<generator>{GENERATOR}</generator>\n",
    ]
    entries = []
    for article in articles:
        key = ("atom", article.id)
        entry = cache.items.get(key)
        if entry is None:
            entry = cache.items[key] = _atom_entry(article, cache).encode("utf-8")
        entries.append(entry)
    return b"".join(["".join(parts).encode("utf-8"), *entries, b"</feed>\n"])


def _atom_entry(article: Article, cache: EntryCache) -> str:
    text = Escaped.of(article, cache)
    stamp = _rfc3339(article.published)
    parts = [
        f'<entry xml:lang="{text.language}">\n',
        f"<id>{text.guid}</id>\n",
        f"<title>{text.title}</title>\n",
        f"<updated>{stamp}</updated>\n<published>{stamp}</published>\n",
    ]
    if text.url:
        parts.append(f'<link rel="alternate" type="text/html" href="{text.url}"/>\n')
    parts.append(f"<author><name>{text.source}</name></author>\n")
    parts.append(f"<summary>{text.summary}</summary>\n")
    parts.append(f'<content type="html">{_content_x(article, cache)}</content>\n')
    parts += [_category(tag, "atom", cache) for tag in article.tags]
    parts.append("</entry>\n")
    return "".join(parts)


def _category(tag: Tag, fmt: str, cache: EntryCache) -> str:
    """A category element, rendered once per build for each tag (most items share them)."""
    key = (fmt, tag.kind, tag.code, tag.label)
    found = cache.categories.get(key)
    if found is None:
        scheme = _scheme(tag)
        if fmt == "rss":  # RSS shows the text to people: the label, with its vocabulary
            found = f'<category domain="{_xa(scheme)}">{_x(tag.label or tag.code)}</category>\n'
        else:
            found = (
                f'<category term="{_xa(tag.code)}" scheme="{_xa(scheme)}" '
                f'label="{_xa(tag.label or tag.code)}"/>\n'
            )
        cache.categories[key] = found
    return found


def _atom_links(feed: FeedDef, site: Site, own: str, element: str) -> list[str]:
    """rel=self, the index as the HTML alternate, each sibling format, and the WebSub hub."""
    self_url = _xa(feed_url(site, feed, own))
    links = [f'<{element} rel="self" type="{MEDIA_TYPES[own]}" href="{self_url}"/>\n']
    if own == "atom":  # RSS has <link> for this; in Atom it is a link element
        links.append(
            f'<{element} rel="alternate" type="text/html" href="{_xa(site.url("index.html"))}"/>\n'
        )
    for fmt in FORMATS:
        if fmt != own:
            links.append(
                f'<{element} rel="alternate" type="{MEDIA_TYPES[fmt]}" '
                f'href="{_xa(feed_url(site, feed, fmt))}"/>\n'
            )
    if site.hub:
        links.append(f'<{element} rel="hub" href="{_xa(site.hub)}"/>\n')
    return links


# JSON Feed 1.1 -----------------------------------------------------------------------------


def _render_json(
    feed: FeedDef, articles: Sequence[Article], site: Site, now: datetime, cache: EntryCache
) -> bytes:
    del now  # JSON Feed has no feed-level date
    head: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": site.url("index.html"),
        "feed_url": feed_url(site, feed, "json"),
        "description": _description(feed, site),
        "language": feed_language(feed, articles, site),
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
    items = []
    for article in articles:
        key = ("json", article.id)
        item = cache.items.get(key)
        if item is None:
            # orjson: forty times faster than json.dumps on items this size, same JSON.
            item = cache.items[key] = orjson.dumps(_json_item(article, cache))
        items.append(item)
    prefix = json.dumps(head, ensure_ascii=False, indent=1)[:-2]  # without the closing "\n}"
    return b"".join([f'{prefix},\n "items": [\n'.encode(), b",\n".join(items), b"\n ]\n}\n"])


def _json_item(article: Article, cache: EntryCache) -> dict[str, object]:
    stamp = _rfc3339(article.published)
    item: dict[str, object] = {"id": tag_uri(article.id)}
    if _is_web(article.url):
        item["url"] = article.url
    item |= {
        "title": _clean(article.title),
        "content_html": _content(article, cache),
        "summary": _clean(summary_text(article)),
        "date_published": stamp,
        "date_modified": stamp,
        "authors": [{"name": _clean(article.source)}],
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
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
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


def _content(article: Article, cache: EntryCache) -> str:
    found = cache.content.get(article.id)
    if found is None:
        found = cache.content[article.id] = _clean(content_html(article))
    return found


def _content_x(article: Article, cache: EntryCache) -> str:
    """The content escaped once per build, shared by the RSS and the Atom renderings."""
    found = cache.escaped.get(article.id)
    if found is None:
        html_text = _content(article, cache)  # already free of characters XML forbids
        found = cache.escaped[article.id] = (
            html_text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        )
    return found


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


def _x(text: str) -> str:
    """Text content escaped for XML."""
    return _clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xa(text: str) -> str:
    """An attribute value escaped for XML (always written between double quotes)."""
    return _x(text).replace('"', "&quot;")


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

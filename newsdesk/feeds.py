"""Articles + a feed definition -> RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes, and an OPML list.

feedgen writes RSS and Atom; what it lacks (sibling and hub links in RSS, per-entry xml:lang)
comes from our extensions in `newsdesk.feedext`. Each article becomes one FeedEntry per build,
added to every RSS and Atom feed that carries it (`EntryCache`). JSON Feed 1.1 is written
directly: feedgen has none.

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
from feedgen.entry import FeedEntry
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.feed import FeedGenerator

from newsdesk import feedext
from newsdesk.catalog import KIND_HEADINGS, KIND_ORDER, FeedDef
from newsdesk.feedext import EntryLanguage, FeedLinks, SharedEntry
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


@dataclass
class EntryCache:
    """What one build makes once per article (or tag) and reuses in every feed that needs it."""

    entries: dict[str, FeedEntry] = field(default_factory=dict)  # article id -> RSS/Atom entry
    items: dict[tuple[str, str], bytes] = field(default_factory=dict)  # JSON Feed items, encoded
    categories: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)  # article id -> HTML


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


# RSS 2.0 and Atom 1.0, through feedgen -------------------------------------------------------


def _render_rss(
    feed: FeedDef, articles: Sequence[Article], site: Site, now: datetime, cache: EntryCache
) -> bytes:
    generator = _generator(feed, articles, site, now)
    # dc: declares the namespace of the items' dc:creator and dc:language; ours adds links.
    # register_extension, not load_extension: that one imports a module by name on every call.
    generator.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
    generator.register_extension(feedext.NAMESPACE, FeedLinks, EntryLanguage)
    generator.docs("https://www.rssboard.org/rss-specification")
    generator.link(href=feed_url(site, feed, "rss"), rel="self", type=MEDIA_TYPES["rss"])
    # RSS <link> is the feed's last link in feedgen: the index, as a page for people.
    generator.link(href=site.url("index.html"), rel="alternate")
    links: FeedLinks = getattr(generator, feedext.NAMESPACE)
    for fmt in FORMATS:
        if fmt != "rss":
            links.link("alternate", feed_url(site, feed, fmt), MEDIA_TYPES[fmt])
    if site.hub:
        links.link("hub", _clean(site.hub))
    for article in articles:
        generator.add_entry(feedEntry=_entry(article, cache), order="append")  # not prepend
    return XML_DECLARATION + bytes(generator.rss_str(pretty=True, xml_declaration=False))


def _render_atom(
    feed: FeedDef, articles: Sequence[Article], site: Site, now: datetime, cache: EntryCache
) -> bytes:
    generator = _generator(feed, articles, site, now)
    generator.author(name=_clean(site.title) or GENERATOR)
    generator.link(href=feed_url(site, feed, "atom"), rel="self", type=MEDIA_TYPES["atom"])
    generator.link(href=site.url("index.html"), rel="alternate", type="text/html")
    for fmt in FORMATS:
        if fmt != "atom":
            generator.link(href=feed_url(site, feed, fmt), rel="alternate", type=MEDIA_TYPES[fmt])
    if site.hub:
        generator.link(href=_clean(site.hub), rel="hub")
    for article in articles:
        generator.add_entry(feedEntry=_entry(article, cache), order="append")  # not prepend
    return XML_DECLARATION + bytes(generator.atom_str(pretty=True, xml_declaration=False))


def _generator(
    feed: FeedDef, articles: Sequence[Article], site: Site, now: datetime
) -> FeedGenerator:
    """What the RSS and the Atom rendering of a feed share."""
    generator = FeedGenerator()
    generator.id(feed_url(site, feed, "atom"))  # Atom only
    generator.title(_clean(feed.title) or feed.slug)
    generator.description(_clean(_description(feed, site)) or feed.slug)  # and Atom subtitle
    generator.language(feed_language(feed, articles, site))  # and Atom xml:lang
    generator.generator(GENERATOR)
    # feedgen stamps the clock into updated and lastBuildDate: set both from the articles.
    generator.updated(_utc(newest(articles, now)))
    return generator


def _entry(article: Article, cache: EntryCache) -> FeedEntry:
    """The article's FeedEntry, made once per build and shared by every RSS and Atom feed."""
    found = cache.entries.get(article.id)
    if found is None:
        found = cache.entries[article.id] = _new_entry(article, cache)
    return found


def _new_entry(article: Article, cache: EntryCache) -> FeedEntry:
    # Every value is cleaned and checked before feedgen sees it: feedgen raises on a naive
    # date or a character XML forbids, half-way through, leaving a half-built entry behind.
    guid = tag_uri(article.id)
    published = _utc(article.published)
    summary = _clean(summary_text(article)).strip()
    title = _clean(article.title).strip() or summary or guid
    source = _clean(article.source)
    language = _clean(article.language)
    url = _clean(article.url) if _is_web(article.url) else ""
    content = _content(article, cache)
    categories = [_category(tag, cache) for tag in article.tags]

    entry = SharedEntry()
    entry.register_extension(feedext.NAMESPACE, EntryLanguage)
    entry.register_extension("dc", DcEntryExtension, atom=False, rss=True)
    entry.id(guid)  # also the RSS <guid isPermaLink="false">
    entry.title(title)
    entry.published(published)
    entry.updated(published)
    if url:
        entry.link(href=url, rel="alternate", type="text/html")
    if source:
        entry.author(name=source)  # Atom only: RSS <author> must be an email address
        entry.dc.dc_creator(source)
    # The order matters: summary() sets the Atom summary (plain text) and the RSS description;
    # description() then makes the RSS description HTML (the text escaped once more, so a
    # literal "<" stays text) but also overwrites the Atom content, which content() sets last.
    entry.summary(summary or title)
    entry.description(html.escape(summary or title, quote=False))
    entry.content(content, type="html")  # Atom content and RSS content:encoded
    if categories:
        entry.category(categories)
    if language:
        entry.dc.dc_language(language)
        getattr(entry, feedext.NAMESPACE).language = language
    return entry


def _category(tag: Tag, cache: EntryCache) -> dict[str, str]:
    """A category for feedgen: Atom term, scheme and label; RSS shows the label, scheme as domain.

    Made once per build for each tag (most items share them).
    """
    key = (tag.kind, tag.code, tag.label)
    found = cache.categories.get(key)
    if found is None:
        code = _clean(tag.code)
        found = cache.categories[key] = {
            "term": code,
            "scheme": _scheme(tag),
            "label": _clean(tag.label) or code,
        }
    return found


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

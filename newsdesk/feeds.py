"""Articles + feed definitions -> RSS 2.0 and Atom 1.0 (feedgen), an OPML list and an HTML index."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from feedgen.feed import FeedGenerator

from newsdesk.models import Article, Tag
from newsdesk.normalize import tag_uri
from newsdesk.slugs import slugify
from newsdesk.store import ArticleFilter, TagCount
from newsdesk.tagging.custom import CUSTOM_PREFIX
from newsdesk.tagging.taxonomy import URI_BASE

FORMATS = {"rss": "rss", "atom": "atom"}  # format -> file extension
KIND_ORDER = ("all", "region", "subregion", "country", "topic")
KIND_HEADINGS = {
    "all": "All articles",
    "region": "Regions",
    "subregion": "Sub-regions",
    "country": "Countries",
    "topic": "Topics",
}
# Category schemes, so a reader can tell an IPTC topic from an ISO country code.
COUNTRY_SCHEME = "https://www.iso.org/iso-3166-country-codes.html"
M49_SCHEME = "https://unstats.un.org/unsd/methodology/m49/"
CUSTOM_SCHEME = "urn:newsdesk:custom"  # the operator's own regions and topics


@dataclass(frozen=True, slots=True)
class FeedDef:
    """One feed: its file name stem, what it selects, and how it presents itself."""

    slug: str
    kind: str
    title: str
    description: str
    wanted: ArticleFilter


def feed_definitions(
    counts: Sequence[TagCount], site_title: str, min_country_articles: int
) -> list[FeedDef]:
    """The combined feed, then one per region, sub-region, country and topic that has articles."""
    feeds = [FeedDef("all", "all", site_title, f"{site_title}: all articles", ArticleFilter())]
    for count in counts:
        if count.kind == "country" and count.count < min_country_articles:
            continue
        if count.kind == "country":
            wanted = ArticleFilter(countries=(count.code,))
            slug = f"country-{slugify(count.code)}"
        elif count.kind == "subregion":
            wanted = ArticleFilter(subregions=(count.code,))
            slug = f"subregion-{slugify(count.label)}"
        elif count.kind == "region":
            wanted = ArticleFilter(regions=(count.code,))
            slug = f"region-{slugify(count.label)}"
        elif count.kind == "topic":
            wanted = ArticleFilter(topics=(count.code,))
            slug = f"topic-{slugify(count.label)}"
        else:
            continue
        feeds.append(
            FeedDef(
                slug,
                count.kind,
                f"{site_title}: {count.label}",
                f"News about {count.label}",
                wanted,
            )
        )
    feeds.sort(key=lambda f: (KIND_ORDER.index(f.kind), f.slug))
    return feeds


def feed_url(base_url: str, feed: FeedDef, fmt: str) -> str:
    return urljoin(base_url, f"{feed.slug}.{FORMATS[fmt]}")


def render(
    feed: FeedDef, articles: Sequence[Article], fmt: str, base_url: str, now: datetime
) -> bytes:
    """One feed in one format. Dates come from the articles, so the bytes are reproducible."""
    generator = FeedGenerator()
    self_url = feed_url(base_url, feed, fmt)
    generator.id(self_url)
    generator.title(feed.title)
    generator.description(feed.description)
    generator.subtitle(feed.description)
    generator.link(href=urljoin(base_url, "index.html"), rel="alternate")
    generator.link(href=self_url, rel="self")
    generator.generator("newsdesk", uri="https://pypi.org/project/newsdesk/")
    languages = {a.language for a in articles}
    if len(languages) == 1:
        generator.language(languages.pop())
    newest = max((a.published for a in articles), default=now)
    generator.updated(newest)
    generator.lastBuildDate(newest)  # feedgen would stamp the clock otherwise
    for article in articles:
        entry = generator.add_entry(order="append")  # feedgen prepends by default
        guid = tag_uri(article.id)
        entry.id(guid)
        entry.guid(guid, permalink=False)
        entry.title(article.title)
        if article.url.startswith(("http://", "https://")):
            entry.link(href=article.url, rel="alternate")
        entry.published(article.published)
        entry.updated(article.published)
        entry.author(name=article.source)
        if fmt == "rss":
            entry.description(article.summary)
            entry.content(article.body_html, type="CDATA")
        else:
            entry.summary(article.summary)
            entry.content(article.body_html, type="html")
        for tag in article.tags:
            entry.category(**_category(tag, fmt))
    if fmt == "rss":
        return bytes(generator.rss_str(pretty=True))
    return bytes(generator.atom_str(pretty=True))


def _category(tag: Tag, fmt: str) -> dict[str, str]:
    if tag.code.startswith(CUSTOM_PREFIX):
        scheme = domain = CUSTOM_SCHEME
    elif tag.kind == "topic":
        scheme = URI_BASE
        domain = URI_BASE + tag.code.split(":", 1)[-1]
    elif tag.kind == "country":
        scheme = domain = COUNTRY_SCHEME
    else:
        scheme = domain = M49_SCHEME
    if fmt == "rss":  # RSS shows the text to people: the label, with the code's home as domain
        return {"term": tag.label, "scheme": domain}
    return {"term": tag.code, "scheme": scheme, "label": tag.label}


def render_opml(feeds: Sequence[FeedDef], base_url: str, title: str) -> bytes:
    """OPML 2.0 subscribing to every feed (Atom), grouped by kind."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = title
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
                text=feed.title,
                title=feed.title,
                xmlUrl=feed_url(base_url, feed, "atom"),
                htmlUrl=urljoin(base_url, "index.html"),
            )
    ET.indent(opml)
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return (declaration + ET.tostring(opml, encoding="unicode") + "\n").encode("utf-8")

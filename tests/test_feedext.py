"""feedgen with our extensions: an item rendered once reads in every feed as feedgen would write
it there, and what feedgen would do on its own (stamp the clock, call itself the generator, choke on a naive
date or a control character) never reaches a feed. Read back with feedparser and lxml."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta

import feedparser
from feed_fixtures import BASE_URL, NOW, article, sample_articles
from lxml import etree

from newsdesk import feeds
from newsdesk.catalog import FeedDef
from newsdesk.models import Article
from newsdesk.normalize import tag_uri
from newsdesk.store import ArticleFilter

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SITE = feeds.Site(BASE_URL, "Desk", "News by region and topic", "en")


def feed_def(slug: str) -> FeedDef:
    return FeedDef(slug, "custom", f"Desk: {slug}", "", ArticleFilter())


def feedgen_whole(feed: FeedDef, articles: list[Article], fmt: str) -> bytes:
    """The feed as feedgen renders it with the entries added to the FeedGenerator: what the
    splicing of items rendered once must reproduce byte for byte."""
    renderer = feeds.ItemRenderer(SITE)
    items = [renderer.render(a) for a in articles]
    generator = feeds._generator(feed, fmt, items, SITE, NOW)
    for one in articles:
        entry = renderer._entry(one, feeds._clean(feeds.content_html(one)))
        generator.add_entry(feedEntry=entry, order="append")
    write = generator.rss_str if fmt == "rss" else generator.atom_str
    return feeds.XML_DECLARATION + bytes(write(pretty=True, xml_declaration=False))


def test_items_rendered_once_splice_into_any_feed_as_feedgen_renders_it() -> None:
    articles = [
        *sample_articles(),
        dataclasses.replace(
            article(41, hours_ago=2, countries=("FR",), language="fr"),
            title="Émeutes ]]> & « cités » 🚒",
            body_html="<p>Texte <b>gras</b> &amp; ]]&gt; <a href='/a?b=1&amp;c=2'>lien</a></p>",
            source="",  # no author, no dc:creator
            url="",  # no link: the tag: URI stays the only id
        ),
    ]
    renderer = feeds.ItemRenderer(SITE)
    items = [renderer.render(a) for a in articles]
    for fmt in ("rss", "atom", "json"):
        # Two overlapping feeds share the same items...
        first = feeds.render_feed(feed_def("one"), items, fmt, SITE, NOW)
        second = feeds.render_feed(feed_def("two"), items[2:], fmt, SITE, NOW)
        if fmt == "json":
            assert [i["id"] for i in json.loads(first)["items"]] == [
                tag_uri(a.id) for a in articles
            ]
            assert len(json.loads(second)["items"]) == len(articles) - 2
            assert "authors" not in json.loads(first)["items"][-1]  # no source, no empty name
            continue
        assert not feedparser.parse(first).bozo
        assert len(feedparser.parse(first).entries) == len(articles)
        assert len(feedparser.parse(second).entries) == len(articles) - 2
        # ...and each is exactly what feedgen writes when it renders the whole feed itself,
        # but for the spelling of "&" and "<" in RSS plain text (see test_feeds).
        assert named_references(first) == feedgen_whole(feed_def("one"), articles, fmt)
        assert named_references(second) == feedgen_whole(feed_def("two"), articles[2:], fmt)
    empty = feeds.render_feed(feed_def("none"), [], "rss", SITE, NOW)
    assert named_references(empty) == feedgen_whole(feed_def("none"), [], "rss")


def named_references(xml: bytes) -> bytes:
    """The hexadecimal references newsdesk writes in RSS plain text, spelled as lxml does."""
    return xml.replace(b"&#x26;", b"&amp;").replace(b"&#x3C;", b"&lt;")


def test_feed_dates_and_generator_are_ours_not_feedgens_defaults() -> None:
    articles = sample_articles()[:3]
    rss = etree.fromstring(feeds.render(feed_def("x"), articles, "rss", SITE, NOW))
    assert rss.findtext("channel/generator") == "newsdesk"
    assert rss.findtext("channel/docs") == "https://www.rssboard.org/rss-specification"
    assert rss.findtext("channel/lastBuildDate") == "Mon, 23 Nov 2026 11:00:00 +0000"
    atom = etree.fromstring(feeds.render(feed_def("x"), articles, "atom", SITE, NOW))
    generator = atom.find(f"{ATOM}generator")
    assert generator is not None and generator.text == "newsdesk" and not generator.attrib
    # The newest entry's updated: its published second and a fraction that sets it apart.
    updated = atom.findtext(f"{ATOM}updated") or ""
    assert updated == atom.findtext(f"{ATOM}entry/{ATOM}updated")
    assert re.fullmatch(r"2026-11-23T11:00:00\.\d{6}\+00:00", updated)
    # An empty feed is dated `now`, the only time the clock shows.
    empty = etree.fromstring(feeds.render(feed_def("x"), [], "atom", SITE, NOW))
    assert empty.findtext(f"{ATOM}updated") == "2026-11-23T12:00:00+00:00"


def test_items_carry_their_language_and_source_in_both_formats() -> None:
    articles = [sample_articles()[3], sample_articles()[0]]  # French, then English
    rss = etree.fromstring(feeds.render(feed_def("x"), articles, "rss", SITE, NOW))
    assert [i.findtext(f"{DC}language") for i in rss.iter("item")] == ["fr", "en"]
    assert {i.findtext(f"{DC}creator") for i in rss.iter("item")} == {"Example Wire"}
    assert not [i for i in rss.iter("item") if i.find("author") is not None]  # needs an email
    atom = etree.fromstring(feeds.render(feed_def("x"), articles, "atom", SITE, NOW))
    assert [e.get(XML_LANG) for e in atom.iter(f"{ATOM}entry")] == ["fr", "en"]
    assert rss.nsmap.get("dc") == DC.strip("{}") and "dc" not in atom.nsmap


def test_naive_dates_and_forbidden_characters_never_break_a_feed() -> None:
    hostile = dataclasses.replace(
        article(40, hours_ago=1, countries=("FR",)),
        title="\x01\x02",  # nothing left once XML's forbidden characters go
        summary="Left\x00 alone",
        source="Wire\x1f",
        published=(NOW - timedelta(hours=1)).replace(tzinfo=None, microsecond=1234),
    )
    for fmt in ("rss", "atom"):
        body = feeds.render(feed_def("x"), [hostile], fmt, SITE, NOW)
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        [entry] = parsed.entries
        assert entry.title == "Left alone"  # the summary stands in for an empty title
        assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == NOW - timedelta(hours=1)

"""feedgen with our extensions: an entry shared by many feeds renders as if made for each, and
what feedgen would do on its own (stamp the clock, call itself the generator, choke on a naive
date or a control character) never reaches a feed. Read back with feedparser and lxml."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import feedparser
from feed_fixtures import BASE_URL, NOW, article, sample_articles
from lxml import etree

from newsdesk import feeds
from newsdesk.catalog import FeedDef
from newsdesk.store import ArticleFilter

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SITE = feeds.Site(BASE_URL, "Desk", "News by region and topic", "en")


def feed_def(slug: str) -> FeedDef:
    return FeedDef(slug, "custom", f"Desk: {slug}", "", ArticleFilter())


def test_a_shared_entry_renders_as_a_fresh_one_in_every_feed() -> None:
    articles = sample_articles()[:6]
    shared = feeds.EntryCache()
    for fmt in ("rss", "atom"):
        # The same entries go into two feeds (and both formats) through one cache...
        first = feeds.render(feed_def("one"), articles, fmt, SITE, NOW, shared)
        second = feeds.render(feed_def("two"), articles[2:], fmt, SITE, NOW, shared)
        # ...and come out byte for byte as with a cache of their own.
        assert first == feeds.render(feed_def("one"), articles, fmt, SITE, NOW)
        assert second == feeds.render(feed_def("two"), articles[2:], fmt, SITE, NOW)
        # Nothing lost or doubled between the feeds that share the entries.
        assert len(feedparser.parse(first).entries) == 6
        assert len(feedparser.parse(second).entries) == 4
    assert len(shared.entries) == 6  # one FeedEntry per article, whatever the feeds and formats


def test_feed_dates_and_generator_are_ours_not_feedgens_defaults() -> None:
    articles = sample_articles()[:3]
    rss = etree.fromstring(feeds.render(feed_def("x"), articles, "rss", SITE, NOW))
    assert rss.findtext("channel/generator") == "newsdesk"
    assert rss.findtext("channel/docs") == "https://www.rssboard.org/rss-specification"
    assert rss.findtext("channel/lastBuildDate") == "Mon, 23 Nov 2026 11:00:00 +0000"
    atom = etree.fromstring(feeds.render(feed_def("x"), articles, "atom", SITE, NOW))
    generator = atom.find(f"{ATOM}generator")
    assert generator is not None and generator.text == "newsdesk" and not generator.attrib
    assert atom.findtext(f"{ATOM}updated") == "2026-11-23T11:00:00+00:00"
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

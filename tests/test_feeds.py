"""Feeds read back by feedparser and lxml, every feed in every format, against the rules of
the W3C Feed Validation Service and JSON Feed 1.1; plus which feeds exist, the index, the OPML,
incremental rebuilds and WebSub pings to a real loopback hub."""

from __future__ import annotations

import json
import re
import shutil
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
from conftest import RunCli
from feed_fixtures import BASE_URL, NOW, PARENTS, article, make_workspace, sample_articles
from jsonschema import Draft202012Validator
from lxml import etree
from sqlalchemy import select, update

from newsdesk import feeds as feedlib
from newsdesk import feedsite, pipeline
from newsdesk.catalog import slugify
from newsdesk.config import load_config
from newsdesk.errors import ConfigError
from newsdesk.manifest import MANIFEST_NAME
from newsdesk.store import Store, feed_items_table

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# feedgen writes UTC as "+0000" (strftime %z); RFC 822 allows it as well as "GMT", and both
# the RSS spec and the W3C validator accept it. Still UTC only: no other zone passes.
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
UNSAFE = re.compile(r"<\s*(script|iframe|object|embed|style)|\son\w+\s*=|javascript:", re.I)
HTML_URL = re.compile(r"""\s(?:href|src)\s*=\s*["']([^"']*)["']""", re.I)
JSON_FEED_SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json").read_text("utf-8")),
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)
MEDIA = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


def build(root: Path, now: datetime = NOW) -> feedsite.SiteReport:
    config = load_config(root / "newsdesk.toml")
    store = Store.open(config.database_url())
    try:
        return feedsite.build_site(config, store, pipeline.templates_for(config), now, PARENTS)
    finally:
        store.close()


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    make_workspace(tmp_path)
    build(tmp_path)
    return tmp_path


def feed_paths(root: Path) -> list[Path]:
    return sorted(
        p
        for p in (root / "feeds").iterdir()
        if p.suffix in (".rss", ".atom", ".json") and not p.name.startswith(".")
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "feeds").iterdir()}


def absolute(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme in ("http", "https") and bool(parts.netloc)) or parts.scheme in (
        "mailto",
        "tag",
    )


def check_html(html: str, where: str) -> None:
    assert not UNSAFE.search(html), f"{where}: unsafe HTML in {html!r}"
    for url in HTML_URL.findall(html):
        assert absolute(url), f"{where}: relative URL {url!r} in content"


# Which feeds exist -------------------------------------------------------------------------


def test_every_kind_of_feed_is_built_in_three_formats(site: Path) -> None:
    names = {p.name for p in feed_paths(site)}
    stems = {n.rsplit(".", 1)[0] for n in names}
    for stem in stems:
        assert {f"{stem}.rss", f"{stem}.atom", f"{stem}.json"} <= names
    assert {
        "all",
        "region-asia",
        "region-europe",
        "subregion-eastern-asia",
        "country-kp",
        "country-kr",
        "country-fr",
        "topic-conflict-war-and-peace",  # top level
        "topic-act-of-terror",  # second level
        "language-en",
        "language-fr",
        "korea-health",
        "francophone-europe",
    } <= stems
    assert "country-br" not in stems, "Brazil has 1 article, below min_country_articles = 2"
    for stem in stems:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", stem), stem


def test_a_path_like_tag_label_stays_inside_feeds(site: Path) -> None:
    assert (site / "feeds" / "subregion-etc-passwd.rss").is_file()
    assert not (site / "etc").exists() and not (site.parent / "etc").exists()
    for text in ("../../etc/passwd", "a/b\\c", "..", "", "Ünïcödé/ñ", "\x00x", "日本"):
        slug = slugify(text)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), (text, slug)


def items_of(root: Path, name: str) -> list[str]:
    parsed = feedparser.parse((root / "feeds" / name).read_bytes())
    return [e.id.rsplit(":", 1)[-1] for e in parsed.entries]


def test_items_filtered_ordered_and_limited(site: Path) -> None:
    # Newest first, then by id (a0009 before a0008: same time); a0011 is in the future.
    assert items_of(site, "country-kr.rss") == ["a0001", "a0003", "a0009", "a0008", "a0012"]
    assert items_of(site, "all.atom") == ["a0001", "a0002", "a0003", "a0004", "a0005"]
    assert "a0011" not in items_of(site, "country-kp.json")
    # Custom: places OR together (KP or KR), the topic narrows (health).
    assert items_of(site, "korea-health.rss") == ["a0003", "a0009", "a0008"]
    # Custom: a region and a language.
    assert items_of(site, "francophone-europe.atom") == ["a0004", "a0005"]
    assert items_of(site, "language-fr.rss") == ["a0004", "a0005"]
    assert items_of(site, "topic-act-of-terror.rss") == ["a0001", "a0006"]


# The formats, checked as the W3C validator and JSON Feed 1.1 would -----------------------


def test_every_xml_feed_parses_without_bozo(site: Path) -> None:
    """feedparser 6 reads RSS and Atom; JSON Feed is checked by the schema test below."""
    paths = [p for p in feed_paths(site) if p.suffix != ".json"]
    assert len(paths) >= 2 * 13
    for path in paths:
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (path.name, parsed.get("bozo_exception"))
        ids = [e.id for e in parsed.entries]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate ids"


RSS_PLAIN_TEXT = re.compile(rb"<(title|category|dc:creator)(?: [^>]*)?>([^<]*)</")


def test_rss_follows_the_validator_rules(site: Path) -> None:
    assert (
        b"<title>Talks &#x3C;resume&gt; &#x26; stall at the border</title>"
        in (site / "feeds" / "all.rss").read_bytes()
    )
    for path in [p for p in feed_paths(site) if p.suffix == ".rss"]:
        # The RSS Profile: "&" and "<" in plain text as hexadecimal references, so no reader
        # takes the text for HTML (the validator warns on "&amp;" and "&lt;" there).
        for match in RSS_PLAIN_TEXT.finditer(path.read_bytes()):
            assert b"&amp;" not in match.group(2) and b"&lt;" not in match.group(2), path.name
        tree = etree.fromstring(path.read_bytes())
        assert path.read_bytes().startswith(b'<?xml version="1.0" encoding="utf-8"?>')
        channel = tree.find("channel")
        assert channel is not None
        selves = [link for link in channel.findall(f"{ATOM}link") if link.get("rel") == "self"]
        assert [link.get("href") for link in selves] == [BASE_URL + path.name]
        assert selves[0].get("type") == "application/rss+xml"
        alternates = {
            link.get("type"): link.get("href")
            for link in channel.findall(f"{ATOM}link")
            if link.get("rel") == "alternate"
        }
        stem = path.stem
        assert alternates == {
            "application/atom+xml": f"{BASE_URL}{stem}.atom",
            "application/feed+json": f"{BASE_URL}{stem}.json",
        }
        assert (channel.findtext("description") or "").strip()
        assert re.fullmatch(r"[a-z]{2}", channel.findtext("language") or "")
        assert absolute(channel.findtext("link") or "")
        items = channel.findall("item")
        last_build = channel.findtext("lastBuildDate") or ""
        assert RFC822.match(last_build), last_build
        dates = [parsedate_to_datetime(i.findtext("pubDate") or "") for i in items]
        if items:
            assert parsedate_to_datetime(last_build) == max(dates), "lastBuildDate = newest item"
        for item in items:
            where = f"{path.name} {item.findtext('guid')}"
            guid = item.find("guid")
            assert guid is not None and guid.get("isPermaLink") == "false"
            assert guid.text != item.findtext("link")
            assert RFC822.match(item.findtext("pubDate") or ""), where
            assert parsedate_to_datetime(item.findtext("pubDate") or "") <= NOW, where
            assert (item.findtext("description") or "").strip(), where
            link = item.findtext("link")
            assert link is None or absolute(link), where
            encoded = item.findtext(f"{CONTENT}encoded") or ""
            assert encoded, where
            check_html(encoded, where)
            check_html(item.findtext("description") or "", where)
            categories = item.findall("category")
            assert categories, where
            for category in categories:
                assert absolute(category.get("domain") or ""), where


def test_atom_follows_the_validator_rules(site: Path) -> None:
    for path in [p for p in feed_paths(site) if p.suffix == ".atom"]:
        tree = etree.fromstring(path.read_bytes())
        assert re.fullmatch(r"[a-z]{2}", tree.get(XML_LANG) or "")
        links = tree.findall(f"{ATOM}link")
        assert [link.get("href") for link in links if link.get("rel") == "self"] == [
            BASE_URL + path.name
        ]
        alternates = {
            link.get("type"): link.get("href") for link in links if link.get("rel") == "alternate"
        }
        assert alternates == {
            "text/html": BASE_URL + "index.html",
            "application/rss+xml": f"{BASE_URL}{path.stem}.rss",
            "application/feed+json": f"{BASE_URL}{path.stem}.json",
        }
        assert (tree.findtext(f"{ATOM}subtitle") or "").strip()
        assert tree.find(f"{ATOM}author/{ATOM}name") is not None
        updated = tree.findtext(f"{ATOM}updated") or ""
        assert RFC3339.match(updated)
        entries = tree.findall(f"{ATOM}entry")
        stamps = [entry.findtext(f"{ATOM}updated") or "" for entry in entries]
        if entries:
            newest = max(stamps, key=datetime.fromisoformat)
            assert updated == newest, "feed updated = newest entry's"
        # The validator warns when two entries share one (a0008 and a0009 share a second).
        assert len(set(stamps)) == len(stamps), path.name
        for entry in entries:
            where = f"{path.name} {entry.findtext(f'{ATOM}id')}"
            assert entry.get(XML_LANG), where
            for name in ("updated", "published"):
                stamp = entry.findtext(f"{ATOM}{name}") or ""
                assert RFC3339.match(stamp), where
            published = datetime.fromisoformat(entry.findtext(f"{ATOM}published") or "")
            assert published <= NOW, where
            # updated: the published second, told apart from its neighbours by a fraction.
            second = datetime.fromisoformat(entry.findtext(f"{ATOM}updated") or "")
            assert second.replace(microsecond=0) == published, where
            assert (entry.findtext(f"{ATOM}summary") or "").strip(), where
            content = entry.find(f"{ATOM}content")
            assert content is not None and content.get("type") == "html"
            check_html(content.text or "", where)
            for link in entry.findall(f"{ATOM}link"):
                assert absolute(link.get("href") or ""), where
            for category in entry.findall(f"{ATOM}category"):
                assert category.get("term") and absolute(category.get("scheme") or ""), where


JSON_FEED_TOP = {
    "version",
    "title",
    "home_page_url",
    "feed_url",
    "description",
    "user_comment",
    "next_url",
    "icon",
    "favicon",
    "authors",
    "author",
    "language",
    "expired",
    "hubs",
    "items",
}
JSON_ITEM = {
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
    "authors",
    "author",
    "tags",
    "language",
    "attachments",
}


def test_json_feed_follows_version_1_1(site: Path) -> None:
    for path in feed_paths(site):
        if path.suffix != ".json":
            continue
        feed: dict[str, Any] = json.loads(path.read_bytes().decode("utf-8"))
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        assert isinstance(feed["title"], str) and feed["title"]
        assert feed["feed_url"] == BASE_URL + path.name
        assert absolute(feed["home_page_url"])
        assert feed["description"]
        assert re.fullmatch(r"[a-z]{2}", feed["language"])
        for key in feed:  # anything not in the spec must be an extension: "_" then a letter
            assert key in JSON_FEED_TOP or re.match(r"^_[a-zA-Z]", key), key
        alternates = {a["type"]: a["url"] for a in feed["_newsdesk"]["alternates"]}
        assert alternates == {
            "application/rss+xml": f"{BASE_URL}{path.stem}.rss",
            "application/atom+xml": f"{BASE_URL}{path.stem}.atom",
        }
        assert all(isinstance(a["name"], str) for a in feed["authors"])
        assert isinstance(feed["items"], list)
        ids = [item["id"] for item in feed["items"]]
        assert len(ids) == len(set(ids))
        for item in feed["items"]:
            where = f"{path.name} {item['id']}"
            assert set(item) <= JSON_ITEM, where
            assert isinstance(item["id"], str) and item["id"], where
            assert item.get("content_html") or item.get("content_text"), where
            check_html(item["content_html"], where)
            for key in ("date_published", "date_modified"):
                assert RFC3339.match(item[key]), where
                assert datetime.fromisoformat(item[key]) <= NOW, where
            if "url" in item:
                assert absolute(item["url"]), where
            assert all(isinstance(t, str) for t in item["tags"]), where
        JSON_FEED_SCHEMA.validate(feed)


def test_content_is_sanitized_and_links_made_absolute(site: Path) -> None:
    parsed = feedparser.parse((site / "feeds" / "all.atom").read_bytes())
    first = next(e for e in parsed.entries if e.id.endswith("a0001"))
    html = first.content[0].value
    assert 'href="https://example.com/analysis/2"' in html
    assert 'href="https://example.com/news/1#map"' in html
    assert "<script" not in html and "<iframe" not in html and "onclick" not in html
    assert "javascript:" not in html
    assert first.title == "Talks <resume> & stall at the border"  # \x0b dropped, rest kept
    # The French article has a tag: URI, not a web page: its relative link cannot be resolved.
    french = feedparser.parse((site / "feeds" / "language-fr.rss").read_bytes())
    fr = next(e for e in french.entries if e.id.endswith("a0004"))
    assert "../dossier.html" not in fr.content[0].value
    assert "le dossier" in fr.content[0].value
    assert "link" not in fr or fr.link.startswith("https://news.example.org/")


def test_categories_carry_their_scheme(site: Path) -> None:
    parsed = feedparser.parse((site / "feeds" / "country-kp.atom").read_bytes())
    tags = {(t["term"], t["scheme"]) for e in parsed.entries for t in e.tags}
    assert ("KP", "https://www.iso.org/iso-3166-country-codes.html") in tags
    assert ("030", "https://unstats.un.org/unsd/methodology/m49/") in tags
    assert ("medtop:16000000", "http://cv.iptc.org/newscodes/mediatopic/") in tags


def test_language_of_feeds(site: Path) -> None:
    fr = etree.fromstring((site / "feeds" / "language-fr.atom").read_bytes())
    assert fr.get(XML_LANG) == "fr"
    rss = etree.fromstring((site / "feeds" / "francophone-europe.rss").read_bytes())
    assert rss.findtext("channel/language") == "fr"  # every item is French
    mixed = etree.fromstring((site / "feeds" / "all.rss").read_bytes())
    assert mixed.findtext("channel/language") == "en"  # mixed: the default language


# Index and OPML ----------------------------------------------------------------------------


def test_index_lists_every_feed_with_count_and_latest(site: Path) -> None:
    index = (site / "feeds" / "index.html").read_text(encoding="utf-8")
    stems = {p.stem for p in feed_paths(site)}
    for stem in stems:
        for ext in ("rss", "atom", "json"):
            assert f'href="{stem}.{ext}"' in index, stem
    for kind in (
        "Custom feeds",
        "Regions",
        "Sub-regions",
        "Countries",
        "Topics",
        "Sub-topics",
        "Languages",
    ):
        assert f">{kind}</h2>" in index, kind
    row = next(line for line in index.splitlines() if '<td><a href="korea-health.rss"' in line)
    assert '<td class="count">3</td>' in row and "Story number 3" in row
    for fmt, media in MEDIA.items():
        assert f'<link rel="alternate" type="{media}" title="Desk (' in index
        assert f'href="all.{fmt}">' in index
    assert 'type="application/rss+xml" title="Desk: Asia (RSS)" href="region-asia.rss"' in index


# The head elements the W3C validator knows (it calls OPML 2.0's <docs> undefined).
OPML_HEAD = {
    "title",
    "dateCreated",
    "dateModified",
    "ownerName",
    "ownerEmail",
    "ownerId",
    "expansionState",
    "vertScrollState",
    "windowTop",
    "windowLeft",
    "windowBottom",
    "windowRight",
}


def test_opml_subscribes_to_every_feed_grouped_by_kind(site: Path) -> None:
    root = ET.fromstring((site / "feeds" / "feeds.opml").read_bytes())
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Desk"
    head = root.find("head")
    assert head is not None and {child.tag for child in head} <= OPML_HEAD
    groups = {g.get("text"): g for g in root.findall("body/outline")}
    assert {"All articles", "Custom feeds", "Regions", "Countries", "Topics", "Sub-topics"} <= set(
        groups
    )
    urls = {o.get("xmlUrl") for g in groups.values() for o in g.findall("outline")}
    assert urls == {f"{BASE_URL}{p.stem}.atom" for p in feed_paths(site)}
    for outline in root.iter("outline"):
        if outline.get("xmlUrl"):
            assert outline.get("type") == "rss" and outline.get("text")


# Incremental, reproducible, atomic --------------------------------------------------------


def test_rebuild_with_nothing_new_writes_nothing(site: Path) -> None:
    before = snapshot(site)
    report = build(site)
    assert report.written == [] and report.removed == []
    assert snapshot(site) == before


def test_rebuild_from_scratch_is_byte_identical(
    site: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = make_workspace(tmp_path_factory.mktemp("again"))
    build(other)
    mine = {n: b for n, (b, _) in snapshot(site).items() if n != MANIFEST_NAME}
    theirs = {n: b for n, (b, _) in snapshot(other).items() if n != MANIFEST_NAME}
    assert mine == theirs


def stored_items(root: Path) -> dict[str, tuple[str, bytes]]:
    """article id -> (key, RSS bytes) of every feed item the store keeps."""
    store = Store.open(f"sqlite:///{root / 'newsdesk.db'}")
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    feed_items_table.c.article_id, feed_items_table.c.key, feed_items_table.c.rss
                )
            )
            return {ident: (key, rss) for ident, key, rss in rows}
    finally:
        store.close()


def carried(root: Path) -> set[str]:
    """The ids of the articles that some feed carries."""
    return {
        i for path in feed_paths(root) if path.suffix == ".atom" for i in items_of(root, path.name)
    }


def mark_stored_item(root: Path, ident: str, old: bytes, new: bytes) -> None:
    store = Store.open(f"sqlite:///{root / 'newsdesk.db'}")
    try:
        with store.engine.begin() as connection:
            where = feed_items_table.c.article_id == ident
            rss = connection.execute(select(feed_items_table.c.rss).where(where)).scalar_one()
            assert old in rss
            connection.execute(
                update(feed_items_table).where(where).values(rss=rss.replace(old, new))
            )
    finally:
        store.close()


def test_items_are_stored_and_reused_until_the_article_changes(site: Path) -> None:
    assert set(stored_items(site)) == carried(site)
    # A stored item, marked: a build from scratch shows the mark, so it took the stored bytes.
    mark_stored_item(site, "a0002", b"Story number 2", b"Stored story 2")
    shutil.rmtree(site / "feeds")
    build(site)
    assert b"Stored story 2" in (site / "feeds" / "country-kp.rss").read_bytes()
    # An edited article has a new key: its item is rendered again.
    store = Store.open(f"sqlite:///{site / 'newsdesk.db'}")
    edited = article(2, hours_ago=2, countries=("KP",), topics=("medtop:16000000",), title="Edited")
    store.save_articles([edited], NOW)
    store.close()
    build(site)
    body = (site / "feeds" / "country-kp.rss").read_bytes()
    assert b"Stored story 2" not in body and b"<title>Edited</title>" in body


def test_items_stored_by_other_code_are_rendered_again(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark_stored_item(site, "a0002", b"Story number 2", b"Stored story 2")
    # What a new feedgen, lxml or nh3, or a change to the item code, would do to ITEM_FORMAT.
    monkeypatch.setattr(feedlib, "ITEM_FORMAT", feedlib.ITEM_FORMAT + "; next")
    shutil.rmtree(site / "feeds")
    build(site)
    assert b"Stored story 2" not in (site / "feeds" / "country-kp.rss").read_bytes()
    stored = stored_items(site)
    assert set(stored) == carried(site)
    assert all(key.startswith(feedlib.ITEM_FORMAT + "|") for key, _ in stored.values())


def test_new_rendering_code_renders_every_feed_again(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedlib, "ITEM_FORMAT", feedlib.ITEM_FORMAT + "; next")
    build(site)  # the feeds' bytes may well be the same: what matters is they were rendered
    assert all(key.startswith(feedlib.ITEM_FORMAT + "|") for key, _ in stored_items(site).values())


def test_stored_items_follow_the_feeds(site: Path) -> None:
    before = set(stored_items(site))
    config = site / "newsdesk.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("item_limit = 5", "item_limit = 1"),
        encoding="utf-8",
    )
    build(site)
    after = set(stored_items(site))
    assert after == carried(site) and after < before  # the articles no feed carries are gone
    store = Store.open(f"sqlite:///{site / 'newsdesk.db'}")
    store.delete_articles_older_than(NOW + timedelta(days=1))
    store.close()
    assert stored_items(site) == {}  # and they go with their articles


def test_a_new_article_rewrites_only_the_feeds_it_is_in(site: Path) -> None:
    before = snapshot(site)
    store = Store.open(f"sqlite:///{site / 'newsdesk.db'}")
    store.save_articles(
        [article(20, hours_ago=0.5, countries=("FR",), topics=("medtop:07000000",))], NOW
    )
    store.close()
    report = build(site)
    after = snapshot(site)
    changed = {name for name in after if name not in before or after[name] != before[name]}
    stems = {
        name.rsplit(".", 1)[0]
        for name in changed
        if name.endswith((".rss", ".atom", ".json")) and not name.startswith(".")
    }
    assert stems == {
        "all",
        "country-fr",
        "region-europe",
        "subregion-western-europe",
        "topic-health",
        "language-en",
    }
    assert {"index.html", "feeds.opml", MANIFEST_NAME} <= changed
    assert set(report.written) == changed - {MANIFEST_NAME}
    assert sorted(report.changed_urls) == sorted(
        f"{BASE_URL}{stem}.{ext}" for stem in stems for ext in ("rss", "atom", "json")
    )
    # lastBuildDate follows the newest item, not the clock.
    rss = etree.fromstring((site / "feeds" / "all.rss").read_bytes())
    assert parsedate_to_datetime(rss.findtext("channel/lastBuildDate") or "") == NOW - timedelta(
        minutes=30
    )


def test_an_article_dated_in_the_future_appears_when_its_time_comes(site: Path) -> None:
    assert "a0011" not in items_of(site, "country-kp.rss")
    build(site, now=NOW + timedelta(hours=6))
    assert items_of(site, "country-kp.rss")[0] == "a0011"


def test_feeds_that_no_longer_exist_are_removed_but_not_foreign_files(site: Path) -> None:
    feeds = site / "feeds"
    (feeds / "notes.rss").write_text("mine, not newsdesk's", encoding="utf-8")
    config = site / "newsdesk.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text[: text.index("[[custom_feeds]]")], encoding="utf-8")
    report = build(site)
    assert {"korea-health.rss", "korea-health.atom", "korea-health.json"} <= set(report.removed)
    assert not (feeds / "korea-health.rss").exists()
    assert (feeds / "notes.rss").read_text(encoding="utf-8") == "mine, not newsdesk's"
    assert (feeds / "all.rss").exists()


def test_a_hand_edited_feed_is_put_back(site: Path) -> None:
    path = site / "feeds" / "country-kp.rss"
    original = path.read_bytes()
    path.write_bytes(b"tampered")
    build(site)
    assert path.read_bytes() == original


def test_no_temp_files_are_left(site: Path) -> None:
    assert not [p for p in (site / "feeds").iterdir() if p.name.endswith(".tmp")]


# Config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('slug = "../escape"\ntitle = "x"', "slug must be lower-case ASCII"),
        ('slug = "Caps"\ntitle = "x"', "slug must be lower-case ASCII"),
        ('slug = "region-mine"\ntitle = "x"', "reserved"),
        ('slug = "all"\ntitle = "x"', "reserved"),
        ('slug = "ok"\ntitle = "x"\nregions = ["Narnia"]', "unknown region 'Narnia'"),
        ('slug = "ok"\ntitle = "x"\ncountries = ["XX"]', "unknown code 'XX'"),
        ('slug = "ok"\ntitle = "x"\ntopics = ["war"]', "not an IPTC Media Topic code"),
        ('slug = "ok"\ntitle = "x"\ncolour = "red"', "unknown key 'colour'"),
        ('title = "x"', "slug: required"),
    ],
)
def test_bad_custom_feeds_are_clear_errors(tmp_path: Path, entry: str, message: str) -> None:
    (tmp_path / "newsdesk.toml").write_text(f"[[custom_feeds]]\n{entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(tmp_path / "newsdesk.toml")
    assert str(raised.value).startswith("newsdesk.toml: [[custom_feeds]] #1")


def test_duplicate_custom_slugs_are_an_error(tmp_path: Path) -> None:
    entry = '[[custom_feeds]]\nslug = "twice"\ntitle = "x"\n'
    (tmp_path / "newsdesk.toml").write_text(entry * 2, encoding="utf-8")
    with pytest.raises(ConfigError, match="used twice"):
        load_config(tmp_path / "newsdesk.toml")


# WebSub ------------------------------------------------------------------------------------


class Hub:
    """A real HTTP server on loopback that records publish pings and answers `status`."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.pings: list[dict[str, list[str]]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hub.pings.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(hub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hub() -> Iterator[Hub]:
    server = Hub()
    yield server
    server.close()


def pipeline_build(root: Path) -> pipeline.BuildReport:
    config = load_config(root / "newsdesk.toml")
    store = Store.open(config.database_url())
    try:
        return pipeline.build(config, store, pipeline.templates_for(config), NOW)
    finally:
        store.close()


def test_feeds_advertise_the_hub_and_the_hub_is_pinged_on_change(tmp_path: Path, hub: Hub) -> None:
    make_workspace(tmp_path, hub=hub.url)
    report = pipeline_build(tmp_path)
    assert report.hub_notified is True
    urls = [u for ping in hub.pings for u in ping["hub.url"]]
    assert all(ping["hub.mode"] == ["publish"] for ping in hub.pings)
    assert f"{BASE_URL}all.atom" in urls and f"{BASE_URL}country-kp.json" in urls
    assert len(urls) == 3 * report.feeds
    rss = etree.fromstring((tmp_path / "feeds" / "all.rss").read_bytes())
    assert [
        link.get("href") for link in rss.findall(f"channel/{ATOM}link") if link.get("rel") == "hub"
    ] == [hub.url]
    atom = etree.fromstring((tmp_path / "feeds" / "all.atom").read_bytes())
    assert [
        link.get("href") for link in atom.findall(f"{ATOM}link") if link.get("rel") == "hub"
    ] == [hub.url]
    feed = json.loads((tmp_path / "feeds" / "all.json").read_bytes())
    assert feed["hubs"] == [{"type": "WebSub", "url": hub.url}]
    assert not feedparser.parse((tmp_path / "feeds" / "all.rss").read_bytes()).bozo
    # Nothing changed: no ping.
    hub.pings.clear()
    again = pipeline_build(tmp_path)
    assert hub.pings == [] and again.hub_notified is None


def test_a_failing_hub_is_logged_never_fatal(
    tmp_path: Path, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.status = 500
    make_workspace(tmp_path, hub=hub.url)
    report = pipeline_build(tmp_path)
    assert report.hub_notified is False and report.files_written > 0
    assert "websub_refused" in caplog.text
    caplog.clear()
    hub.close()  # now nobody answers at all
    store = Store.open(f"sqlite:///{tmp_path / 'newsdesk.db'}")
    store.save_articles([article(30, hours_ago=0.2, countries=("KP",))], NOW)
    store.close()
    report = pipeline_build(tmp_path)
    assert report.hub_notified is False and report.files_written > 0
    assert "websub_failed" in caplog.text


# The store migration -----------------------------------------------------------------------


def test_migration_backfills_published_on_an_older_database(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url)
    store.save_articles(sample_articles(), NOW)
    store.close()
    engine = create_engine(url)
    with engine.begin() as connection:  # make it look like a schema-1 database
        connection.execute(text("DROP INDEX ix_article_tags_feed"))
        connection.execute(text("ALTER TABLE article_tags DROP COLUMN published"))
        connection.execute(
            text("UPDATE newsdesk_meta SET value = '1' WHERE key = 'schema_version'")
        )
    engine.dispose()
    store = Store.open(url)
    assert store.schema_version() >= 2
    ids = store.feed_item_ids(store_filter_kr(), 3, NOW)
    assert ids == ["a0001", "a0003", "a0009"]
    store.close()


def store_filter_kr() -> Any:
    from newsdesk.store import ArticleFilter

    return ArticleFilter(countries=("KR",))


# End to end on the seeds, with the shipped taxonomy --------------------------------------


def test_run_on_the_seeds_builds_every_format_and_topic_level(
    workspace: Path, run_cli: RunCli
) -> None:
    result = run_cli("run")
    assert result.exit_code == 0, result.output
    feeds = workspace / "feeds"
    names = {p.name for p in feeds.iterdir()}
    stems = {n.rsplit(".", 1)[0] for n in names if n.endswith(".json") and not n.startswith(".")}
    assert stems and all(f"{s}.rss" in names and f"{s}.atom" in names for s in stems)
    index = (feeds / "index.html").read_text(encoding="utf-8")
    assert ">Topics</h2>" in index and ">Sub-topics</h2>" in index and ">Languages</h2>" in index
    for path in feeds.iterdir():
        if path.suffix in (".rss", ".atom"):
            assert not feedparser.parse(path.read_bytes()).bozo, path.name
        elif path.suffix == ".json" and not path.name.startswith("."):
            JSON_FEED_SCHEMA.validate(json.loads(path.read_bytes()))
    again = run_cli("build")
    assert again.exit_code == 0 and " 0 files written" in again.output


def test_postgresql_builds_the_same_bytes(
    site: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed queries (tag-driven, ranges, counts, casts) agree across both backends."""
    from conftest import postgres_url

    for url in postgres_url():
        other = tmp_path_factory.mktemp("pg")
        make_workspace(other)
        (other / "newsdesk.db").unlink()  # so the feeds can only come from PostgreSQL
        store = Store.open(url)
        store.save_articles(sample_articles(), NOW - timedelta(hours=40))
        store.close()
        monkeypatch.setenv("NEWSDESK_DATABASE_URL", url)
        mine = {n: b for n, (b, _) in snapshot(site).items() if n != MANIFEST_NAME}
        for _ in ("items rendered", "items read back from PostgreSQL"):
            shutil.rmtree(other / "feeds", ignore_errors=True)
            build(other)
            theirs = {n: b for n, (b, _) in snapshot(other).items() if n != MANIFEST_NAME}
            assert sorted(mine) == sorted(theirs)
            assert mine == theirs

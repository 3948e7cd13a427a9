"""Web sources end to end: fixture feeds and pages from a real loopback server, through the CLI.

Feed fixtures describe themselves (tests/fixtures/web/README.md) and are globbed into the
parametrized format test; the rest drive `newsdesk ingest`, `run` and `sources` against the
server and read the results back from the database, the feeds (feedparser) and the emails.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import re
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import NOW, RunCli, write_config
from webserver import FIXTURES, WebServer

from newsdesk.errors import InputError
from newsdesk.normalize import normalize
from newsdesk.sources.feeds import parse_feed
from newsdesk.store import ArticleFilter, Store

LANGUAGES = ("en", "fr", "de", "es", "it", "pt")
FEED_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".xml", ".rdf", ".json"))
UNSAFE = (
    "<script",
    "javascript:",
    "onclick",
    "onerror",
    "onload",
    "onmouseover",
    "<iframe",
    "<object",
    "<style",
    "alert(",
    "evil.example",
)


def expectations(name: str) -> dict[str, Any]:
    """The Expect object a fixture declares about itself."""
    raw = (FIXTURES / name).read_bytes()
    if name.endswith(".json"):
        return dict(json.loads(raw)["_test"]["expect"])
    match = re.search(rb"^Expect: (\{.*\})$", raw, re.MULTILINE)
    assert match, f"{name} does not say what to expect"
    return dict(json.loads(match.group(1)))


def iso(moment: Any) -> str:
    return str(moment.isoformat())


@pytest.mark.parametrize("name", FEED_FIXTURES)
def test_fixture_feed_reads_as_it_says(name: str, web: WebServer) -> None:
    expect = expectations(name)
    url = web.url(f"/files/{name}")
    body = (FIXTURES / name).read_bytes()
    if "error" in expect:
        with pytest.raises(InputError) as caught:
            parse_feed(body, url, "fixture")
        assert expect["error"] in caught.value.reason
        return
    parsed = parse_feed(body, url, "fixture")
    articles = [normalize(e, NOW, LANGUAGES, "en") for e in parsed.entries]
    assert [a.title for a in articles] == expect["titles"]
    if "links" in expect:
        wanted = [link.replace("{base}", web.base) if link else None for link in expect["links"]]
        got = [a.url if not a.url.startswith("tag:") else None for a in articles]
        assert got == wanted
    if "published" in expect:
        assert iso(articles[0].published) == expect["published"]
    if "language" in expect:
        assert articles[0].language == expect["language"]
    if "warning" in expect:
        assert any(expect["warning"].lower() in p.lower() for p in parsed.problems), parsed.problems
    for article in articles:
        assert "Ã" not in article.title + article.body_text  # no mojibake
        for unsafe in UNSAFE:
            assert unsafe not in article.body_html.lower(), (name, unsafe)
            assert unsafe not in article.title.lower() + article.summary.lower(), (name, unsafe)


def test_ids_are_stable_across_fetches(web: WebServer) -> None:
    body = (FIXTURES / "rss092.xml").read_bytes()  # no guid, no link: the content hash
    first = parse_feed(body, web.url("/a"), "s").entries
    again = parse_feed(body, web.url("/a"), "s").entries
    assert [e.key for e in first] == [e.key for e in again]
    assert first[0].key.startswith("hash:")


# Through the CLI ---------------------------------------------------------------------------


def configure(workspace: Path, gazetteer_cache: Path, web: WebServer, sources: str) -> None:
    """Rewrite the workspace config with these [[sources]] and quick fetch limits."""
    extra = textwrap.dedent(
        """
        [fetch]
        read_timeout_seconds = 1
        total_timeout_seconds = 2
        max_body_bytes = 2000000
        """
    ) + textwrap.dedent(sources).replace("{base}", web.base)
    write_config(workspace, gazetteer_cache, extra)
    for path in (workspace / "seeds").iterdir():
        path.unlink()  # only the web sources, so counts are exact


def source(name: str, path: str, **extra: Any) -> str:
    lines = [f'\n[[sources]]\nname = "{name}"\nurl = "{{base}}{path}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def later(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_store(workspace: Path) -> Store:
    return Store.open(f"sqlite:///{workspace / 'newsdesk.db'}")


def test_every_format_through_ingest_then_304_everywhere(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    names = [
        "rss091.xml",
        "rss092.xml",
        "rss10.rdf",
        "rss20.xml",
        "atom03.xml",
        "atom10.xml",
        "jsonfeed11.json",
    ]
    for name in names:
        web.conditional(
            f"/c/{name}",
            (FIXTURES / name).read_bytes(),
            f'"{name}"',
            "Sun, 22 Nov 2026 08:00:00 GMT",
        )
    configure(workspace, gazetteer_cache, web, "".join(source(n, f"/c/{n}") for n in names))
    first = run_cli("ingest")
    assert first.exit_code == 0, first.output
    assert "ingest: 10 added" in first.output and "sources: 7 read, 0 not modified" in first.output
    # Not due yet: nothing is requested at all.
    assert "ingest: 0 added" in run_cli("ingest", now=later(0.1)).output
    assert sum(len(web.hits(f"/c/{n}")) for n in names) == 7
    # Due again: every source answers 304, and nothing changes.
    again = run_cli("ingest", now=later(1))
    assert again.exit_code == 0, again.output
    assert "ingest: 0 added, 0 updated, 0 unchanged" in again.output
    assert "sources: 7 read, 7 not modified" in again.output
    for name in names:
        assert web.hits(f"/c/{name}")[-1].headers["If-None-Match"] == f'"{name}"'
    listing = run_cli("sources", now=later(1))
    assert listing.output.count("not modified") == 7
    assert "rss20.xml  [config, feed]" in listing.output


def test_redirect_gone_retry_after_and_a_broken_source(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    web.redirect("/old.xml", 301, "/files/atom10.xml")
    web.serve("/gone.xml", b"", status=410)
    web.serve("/busy.xml", b"", status=429, headers={"Retry-After": "3600"})
    web.serve("/broken.xml", b"<html>not a feed", status=500)
    configure(
        workspace,
        gazetteer_cache,
        web,
        "".join(
            [
                source("moved", "/old.xml"),
                source("gone", "/gone.xml"),
                source("busy", "/busy.xml"),
                source("broken", "/broken.xml"),
                source("fine", "/files/rss20.xml"),
            ]
        ),
    )
    result = run_cli("ingest")
    assert result.exit_code == 1  # some sources failed ...
    assert "ingest: 3 added" in result.output  # ... and the others were still ingested
    assert "'broken'" in result.output and "HTTP 500" in result.output
    states = read_states(workspace)
    assert states["moved"].url == web.url("/files/atom10.xml") and states["moved"].status == "ok"
    assert not states["gone"].enabled and states["gone"].status == "gone"
    assert states["busy"].status == "retry later"
    assert states["busy"].next_fetch == NOW + timedelta(hours=1)  # Retry-After: 3600
    assert states["broken"].error_count == 1 and "HTTP 500" in states["broken"].last_error
    assert states["fine"].status == "ok" and states["fine"].items == 2
    listing = run_cli("sources").output
    assert "gone  [config, " in listing and "(disabled)" in listing
    assert "next retry 2026-11-23 13:00 UTC" in listing

    second = run_cli("ingest", now=later(0.75))
    assert second.exit_code == 1
    assert len(web.hits("/old.xml")) == 1  # the stored address moved with the 301
    assert len(web.hits("/files/atom10.xml")) == 2
    assert len(web.hits("/gone.xml")) == 1  # a gone source is never asked again
    assert len(web.hits("/busy.xml")) == 1  # Retry-After is honoured
    assert len(web.hits("/broken.xml")) == 2
    assert read_states(workspace)["broken"].error_count == 2

    run_cli("ingest", now=later(1.1))
    assert len(web.hits("/busy.xml")) == 2


def read_states(workspace: Path) -> dict[str, Any]:
    opened = open_store(workspace)
    try:
        return opened.source_states()
    finally:
        opened.close()


def test_hostile_input_is_refused_or_neutralised(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    web.huge("/huge.xml", 50_000_000, declare_length=False)
    web.trickle("/forever.xml", b'<?xml version="1.0"?><rss version="2.0"><channel>', every=0.1)
    fr = {"countries": ["FR"]}
    configure(
        workspace,
        gazetteer_cache,
        web,
        "".join(
            [
                source("hostile", "/files/hostile_html.xml", **fr),
                source("hostile page", "/files/hostile_page.html", kind="page", **fr),
                source("laughs", "/files/billion_laughs.xml"),
                source("xxe", "/files/external_entity.xml"),
                source("huge", "/huge.xml"),
                source("forever", "/forever.xml"),
                source("latin", "/files/invalid_utf8.xml", **fr),
                source("liar", "/files/wrong_declared_encoding.xml", **fr),
            ]
        ),
    )
    result = run_cli("run")
    assert result.exit_code == 1
    output = result.output
    assert "'laughs'" in output and "'xxe'" in output and "declares XML entities" in output
    assert "'huge'" in output and "limit" in output
    assert "'forever'" in output and "still arriving" in output
    assert "warning source 'latin'" in output and "warning source 'liar'" in output
    states = read_states(workspace)
    for name in ("laughs", "xxe", "huge", "forever"):
        assert states[name].status == "error" and states[name].error_count == 1, name
    assert states["latin"].status == "warning" and states["latin"].last_error

    # Every feed and every email (index.html has its own stylesheet, so it is checked below).
    written = [p for p in (workspace / "feeds").iterdir() if p.suffix in (".rss", ".atom")]
    emails = sorted((workspace / "outbox").glob("*.eml"))
    assert emails, "Camille's digest (Europe) should hold the French-hinted stories"
    feeds_text = b"".join(p.read_bytes() for p in written).decode("utf-8", "replace").lower()
    for unsafe in UNSAFE:
        assert unsafe not in feeds_text, unsafe
    # The digest template carries one <style> of its own (@media rules for small and dark
    # screens); nothing of the hostile page's own stylesheet may join it.
    for email_path in emails:
        message = email.message_from_bytes(email_path.read_bytes(), policy=email.policy.default)
        parts = [
            part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
        ]
        assert len(parts) == 2, email_path.name
        text = "\n".join(parts).lower()  # decoded, so no transfer encoding can hide a marker
        for unsafe in UNSAFE:
            if unsafe != "<style":
                assert unsafe not in text, (email_path.name, unsafe)
        assert text.count("<style") <= 1, email_path.name
        assert "color: red" not in text, email_path.name
    index = (workspace / "feeds" / "index.html").read_text(encoding="utf-8").lower()
    assert "<script" not in index and "javascript:" not in index and "evil.example" not in index
    all_feed = feedparser.parse((workspace / "feeds" / "all.atom").read_bytes())
    titles = {e.title for e in all_feed.entries}
    assert {
        "Museum night draws record crowds",
        "Click here",
        "Orchestra returns to the restored concert hall",
    } <= titles
    assert titles.isdisjoint({"Laughs", "lol"})
    cafe = [e for e in all_feed.entries if e.title.startswith("Caf")]
    assert [e.title for e in cafe] == ["Café owners protest the new terrace rules"]  # merged
    click = next(e for e in all_feed.entries if e.title == "Click here")
    assert click.link.startswith("tag:newsdesk")  # the javascript: link never became the URL


def test_the_same_story_from_three_sources_is_stored_once(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    de = {"countries": ["DE"]}
    configure(
        workspace,
        gazetteer_cache,
        web,
        "".join(
            [
                source("wire-a", "/files/story_a.xml", **de),
                source("wire-b", "/files/story_b.json", **de),
                source("aggregator", "/files/story_c.xml", **de),
            ]
        ),
    )
    result = run_cli("run")
    assert result.exit_code == 0, result.output
    assert "ingest: 1 added" in result.output and "2 merged" in result.output
    opened = open_store(workspace)
    try:
        [article] = opened.articles(ArticleFilter())
        assert article.title == "Solar farm approved on former airfield"
        assert article.url == "http://example.org/story/solar-farm"
        assert sorted(opened.article_sources(article.id)) == ["aggregator", "wire-a", "wire-b"]
    finally:
        opened.close()
    for name in ("all.atom", "all.rss", "region-europe.rss"):
        parsed = feedparser.parse((workspace / "feeds" / name).read_bytes())
        assert [e.title for e in parsed.entries] == ["Solar farm approved on former airfield"]
    camille = next(p for p in (workspace / "outbox").glob("*.eml") if "camille" in p.name)
    message = email.message_from_bytes(camille.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert text.count("Solar farm approved on former airfield") == 1
    assert "go-ahead" not in text
    # Fetching again later changes nothing: the merge is stable.
    again = run_cli("ingest", now=later(1))
    assert "ingest: 0 added" in again.output and "2 merged" in again.output


def test_short_entries_are_completed_from_their_article_page(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    configure(
        workspace,
        gazetteer_cache,
        web,
        source("valley", "/files/short_summary.xml", full_text=True),
    )
    result = run_cli("ingest")
    assert result.exit_code == 0, result.output
    opened = open_store(workspace)
    try:
        [article] = opened.articles(ArticleFilter())
    finally:
        opened.close()
    assert "eight hundred members" in article.body_text
    assert "More turbines planned" in article.body_html  # the page's subheading
    assert "cookies" not in article.body_text and "tracker" not in article.body_text
    assert article.url == web.url("/files/article_page.html")
    [page] = web.hits("/files/article_page.html?utm_source=feed") or web.hits(
        "/files/article_page.html"
    )
    assert page.headers["User-Agent"].startswith("newsdesk/")


def test_without_full_text_the_summary_is_kept(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    configure(workspace, gazetteer_cache, web, source("valley", "/files/short_summary.xml"))
    assert run_cli("ingest").exit_code == 0
    opened = open_store(workspace)
    try:
        [article] = opened.articles(ArticleFilter())
    finally:
        opened.close()
    assert article.body_text == "Six new turbines and a first dividend."
    assert not [s for s in web.log if "article_page" in s.path]


def test_opml_import_adds_sources_once(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    configure(workspace, gazetteer_cache, web, "")
    opml = workspace / "subscriptions.opml"
    opml.write_text(
        (FIXTURES / "subscriptions.opml").read_text(encoding="utf-8").replace("{base}", web.base),
        encoding="utf-8",
    )
    config_before = (workspace / "newsdesk.toml").read_bytes()
    imported = run_cli("sources", "import-opml", str(opml))
    assert imported.exit_code == 0, imported.output
    assert "3 sources added, 0 already known, 1 skipped" in imported.output
    assert "Trap" in imported.output  # the javascript: outline, named in its skip line
    listing = run_cli("sources").output
    for name in ("Metro Daily", "Harbour Office", "Sky and Streets"):
        assert f"{name}  [opml, feed]" in listing
    assert "never fetched" in listing
    ingested = run_cli("ingest")
    assert ingested.exit_code == 0, ingested.output
    assert "sources: 3 read" in ingested.output and "ingest: 5 added" in ingested.output
    again = run_cli("sources", "import-opml", str(opml))
    assert "0 sources added, 3 already known" in again.output
    assert (workspace / "newsdesk.toml").read_bytes() == config_before


def test_ingest_urls_once_without_touching_the_config(
    workspace: Path, gazetteer_cache: Path, web: WebServer, run_cli: RunCli
) -> None:
    configure(workspace, gazetteer_cache, web, "")
    config_before = (workspace / "newsdesk.toml").read_bytes()
    result = run_cli(
        "ingest",
        web.url("/files/rss20.xml"),
        web.url("/files/hostile_page.html"),
        web.url("/missing.xml"),
    )
    assert result.exit_code == 1  # the missing one
    assert "ingest: 3 added" in result.output and "HTTP 404" in result.output
    assert (workspace / "newsdesk.toml").read_bytes() == config_before
    assert read_states(workspace) == {}
    assert "no sources" in run_cli("sources").output


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "x"', "needs exactly one of url"),
        ('name = "x"\nurl = "ftp://example.org/feed"', "absolute http(s) URL"),
        ('name = "x"\nurl = "http://example.org/"\nkind = "podcast"', "kind must be feed"),
        ('name = "x"\nurl = "http://example.org/"\ncountries = ["France"]', "ISO alpha-2"),
        ('name = "x"\nurl = "http://example.org/"\nintervl = 5', "unknown key 'intervl'"),
    ],
)
def test_bad_source_entries_are_clear_errors(
    workspace: Path, gazetteer_cache: Path, run_cli: RunCli, entry: str, message: str
) -> None:
    write_config(workspace, gazetteer_cache, "\n[[sources]]\n" + entry + "\n")
    result = run_cli("sources")
    assert result.exit_code == 1
    assert "[[sources]] #1" in result.output and message in result.output


def test_stories_and_source_state_on_every_backend(store: Store) -> None:
    from test_store import make_article

    first = dataclasses.replace(make_article("a1", 1, ()), url="https://example.org/s?utm_source=x")
    copy = dataclasses.replace(make_article("b2", 1, ()), url="https://EXAMPLE.org/s#top")
    other = make_article("c3", 2, ())
    result = store.save_stories([(first, "one"), (copy, "two"), (other, "two")], NOW)
    assert (result.added, result.merged) == (2, 1)
    assert store.article_sources("a1") == ["one", "two"]
    assert store.article("b2") is None
    assert store.register_source("feed", "config", "https://example.org/f", "", "", NOW)
    store.update_source("feed", {"status": "ok", "etag": '"x"', "next_fetch": NOW}, NOW)
    state = store.source_states()["feed"]
    assert (state.status, state.etag, state.next_fetch) == ("ok", '"x"', NOW)
    # An edited URL in the config resets the fetch state.
    assert not store.register_source("feed", "config", "https://example.org/g", "", "", NOW)
    state = store.source_states()["feed"]
    assert (state.url, state.etag, state.status) == ("https://example.org/g", None, "")

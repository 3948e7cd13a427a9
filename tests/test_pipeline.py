"""End to end on a copy of seeds/: feeds read back by feedparser, digests parsed as email."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import feedparser
from conftest import RunCli

SEED_ID_PREFIX = "La Corée du Nord"


def feed_files(workspace: Path) -> list[Path]:
    return sorted(p for p in (workspace / "feeds").iterdir() if p.suffix in (".rss", ".atom"))


def test_run_writes_feeds_index_opml_and_digests(workspace: Path, run_cli: RunCli) -> None:
    result = run_cli("run")
    assert result.exit_code == 0, result.output
    assert "ingest: 12 added" in result.output
    files = feed_files(workspace)
    names = {p.name for p in files}
    assert {"all.rss", "all.atom", "region-asia.rss", "subregion-eastern-asia.atom"} <= names
    assert "topic-conflict-war-and-peace.rss" in names and "topic-politics.atom" in names
    for path in files:
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (path.name, parsed.get("bozo_exception"))
        assert parsed.entries, path.name
        for entry in parsed.entries:
            assert entry.id.startswith("tag:newsdesk,2026:article:")
            assert entry.title
            assert entry.get("published_parsed") or entry.get("updated_parsed")
            assert entry.get("tags"), (path.name, entry.title)
        dates = [e.get("published_parsed") or e.get("updated_parsed") for e in parsed.entries]
        assert dates == sorted(dates, reverse=True), f"{path.name} is not newest first"
    index = (workspace / "feeds" / "index.html").read_text(encoding="utf-8")
    assert '<link rel="alternate" type="application/atom+xml"' in index
    assert "all.rss" in index
    opml = (workspace / "feeds" / "feeds.opml").read_text(encoding="utf-8")
    assert 'xmlUrl="https://news.example.org/feeds/all.atom"' in opml


def test_seed_tags_in_the_feed(workspace: Path, run_cli: RunCli) -> None:
    assert run_cli("run").exit_code == 0
    parsed = feedparser.parse((workspace / "feeds" / "all.atom").read_bytes())
    [seed] = [e for e in parsed.entries if e.title.startswith(SEED_ID_PREFIX)]
    terms = {t["term"] for t in seed.tags}
    assert {"KP", "RU", "UA", "KR"} <= terms
    labels = {t.get("label") for t in seed.tags}
    assert {"Eastern Asia", "Eastern Europe", "conflict, war and peace", "politics"} <= labels


def test_digest_emails_are_multipart_with_headers(workspace: Path, run_cli: RunCli) -> None:
    assert run_cli("run").exit_code == 0
    outbox = sorted((workspace / "outbox").glob("*.eml"))
    names = [p.name for p in outbox]
    assert any("camille" in n for n in names) and any("sam" in n for n in names)
    assert not any("nobody" in n for n in names), "no email when nothing matches"
    for path in outbox:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for header in ("Subject", "From", "To", "Date", "Message-ID"):
            assert message[header], (path.name, header)
        assert message.get_content_type() == "multipart/alternative"
        plain = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert plain is not None and html is not None
        content = html.get_content()
        assert "<table" in content and "<link" not in content and 'style="' in content
        # CSS is inlined; only @media rules (dark mode, small screens), which cannot be, remain
        styles = re.findall(r"<style[^>]*>(.*?)</style>", content, re.S)
        assert all(block.strip().startswith("@media") for block in styles), styles
    camille = next(p for p in outbox if "camille" in p.name)
    message = email.message_from_bytes(camille.read_bytes(), policy=email.policy.default)
    assert "Bonjour Camille" in message.get_body(preferencelist=("plain",)).get_content()
    assert SEED_ID_PREFIX in message.get_body(preferencelist=("html",)).get_content()


def test_run_twice_is_idempotent_and_byte_identical(workspace: Path, run_cli: RunCli) -> None:
    assert run_cli("run").exit_code == 0
    first = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (workspace / "feeds").iterdir()
    }
    second_run = run_cli("run")
    assert second_run.exit_code == 0
    assert "ingest: 0 added, 0 updated, 12 unchanged" in second_run.output
    assert "digest: 0 delivered, 2 already sent" in second_run.output
    second = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (workspace / "feeds").iterdir()
    }
    assert first == second  # same bytes, and untouched files keep their mtime


def test_edited_seed_updates_its_article(workspace: Path, run_cli: RunCli) -> None:
    assert run_cli("ingest").exit_code == 0
    seed = workspace / "seeds" / "001_brazil-minas-runoff.txt"
    seed.write_text(
        seed.read_text(encoding="utf-8") + "\n\nA late correction paragraph was added.\n",
        encoding="utf-8",
    )
    result = run_cli("ingest")
    assert "0 added, 1 updated, 11 unchanged" in result.output


def test_bad_inputs_are_skipped_and_counted(workspace: Path, run_cli: RunCli) -> None:
    seeds = workspace / "seeds"
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (seeds / "partial.json").write_text('[{"title": "x"}]', encoding="utf-8")
    result = run_cli("ingest")
    assert result.exit_code == 1
    assert "12 added" in result.output and "3 failed" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("skipped ")]
    assert len(lines) == 3
    assert any("empty.txt: file is empty" in line for line in lines)
    assert any("partial.json: item 1: missing required field 'body'" in line for line in lines)

"""`newsdesk subscribers ...` and `newsdesk digest preview` through click, on a real SQLite file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import NOW, NOW_ISO
from digest_support import SECRET, asia_article, europe_article, open_workspace, write_workspace

from newsdesk.cli import cli


@pytest.fixture()
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSDESK_TEST_UNSUBSCRIBE_SECRET", SECRET)
    return write_workspace(tmp_path)


def run(config_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config_path), "--now", NOW_ISO, *args], catch_exceptions=False
    )


def test_add_list_update_remove(config_path: Path) -> None:
    added = run(
        config_path,
        "subscribers",
        "add",
        "Camille@Example.org",
        "--name",
        "Camille",
        "--regions",
        "Europe, Eastern Asia",
        "--countries",
        "fr,jp",
        "--topics",
        "medtop:15000000",
        "--language",
        "fr",
        "--frequency",
        "weekly",
        "--time",
        "06:30",
        "--timezone",
        "Europe/Paris",
    )
    assert added.exit_code == 0, added.output
    assert "added camille@example.org" in added.output
    listed = run(config_path, "subscribers", "list")
    line = listed.output.splitlines()[0]
    assert line.split("\t")[:4] == ["camille@example.org", "active", "fr", "weekly"]
    assert "06:30 Europe/Paris" in line and "countries=FR,JP" in line
    assert "regions=Europe,Eastern Asia" in line and "topics=medtop:15000000" in line
    updated = run(config_path, "subscribers", "add", "camille@example.org", "--time", "08:00")
    assert "updated camille@example.org" in updated.output
    _, store = open_workspace(config_path)
    record = store.subscriber_record("camille@example.org")
    assert record is not None and record.subscriber.time == "08:00"
    store.close()
    removed = run(config_path, "subscribers", "remove", "camille@example.org")
    assert removed.exit_code == 0 and "removed" in removed.output
    missing = run(config_path, "subscribers", "remove", "camille@example.org")
    assert missing.exit_code == 1 and "no subscriber" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-address"], "email 'not-an-address'"),
        (["a@example.org", "--countries", "XX"], "'XX' is not an ISO 3166-1"),
        (["a@example.org", "--regions", "Atlantis"], "unknown region 'Atlantis'"),
        (["a@example.org", "--topics", "sport"], "'sport' is not an IPTC"),
        (["a@example.org", "--time", "7am"], "time must be HH:MM"),
        (["a@example.org", "--timezone", "Mars/Base"], "unknown time zone"),
    ],
)
def test_add_rejects_bad_values_with_a_clear_message(
    config_path: Path, args: list[str], message: str
) -> None:
    result = run(config_path, "subscribers", "add", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_import_reports_bad_rows_by_line_and_takes_the_rest(
    config_path: Path, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(
        "email,name,regions,countries,language,frequency,time,timezone\n"
        "ana@example.org,Ana,Europe,,fr,daily,07:00,Europe/Paris\n"
        "broken-address,Bob,,,en,daily,07:00,UTC\n"
        'cy@example.org,"Cy, Jr.",,FR;DE,en,weekly,09:15,America/New_York\n'
        "dee@example.org,Dee,,,de,daily,07:00,UTC\n"
        "\n"
        "eve@example.org,Eve,,,,,,\n",
        encoding="utf-8",
    )
    result = run(config_path, "subscribers", "import", str(source))
    assert result.exit_code == 1
    assert "people.csv line 3: email 'broken-address'" in result.output
    assert "people.csv line 5: language must be one of en, fr" in result.output
    assert "import: 3 added, 0 updated, 0 unchanged, 2 failed" in result.output
    _, store = open_workspace(config_path)
    emails = [r.subscriber.email for r in store.subscriber_records()]
    assert emails == ["ana@example.org", "cy@example.org", "eve@example.org"]
    cy = store.subscriber_record("cy@example.org")
    assert cy is not None and cy.subscriber.countries == ("FR", "DE")
    assert cy.subscriber.name == "Cy, Jr." and cy.subscriber.time == "09:15"
    store.unsubscribe("ana@example.org", NOW)
    store.close()
    again = run(config_path, "subscribers", "import", str(source))
    assert "0 added" in again.output
    _, store = open_workspace(config_path)
    ana = store.subscriber_record("ana@example.org")
    assert ana is not None and ana.status == "unsubscribed"  # an import never resubscribes
    store.close()


def test_export_then_import_round_trips(config_path: Path, tmp_path: Path) -> None:
    run(config_path, "subscribers", "add", "ana@example.org", "--regions", "Europe;Eastern Asia")
    run(config_path, "subscribers", "add", "bo@example.org", "--language", "fr", "--time", "06:00")
    exported = tmp_path / "out.csv"
    result = run(config_path, "subscribers", "export", str(exported))
    assert result.exit_code == 0 and "exported 2 subscribers" in result.output
    rows = list(csv.DictReader(exported.open(encoding="utf-8")))
    assert rows[0]["regions"] == "Europe; Eastern Asia" and rows[1]["time"] == "06:00"
    other = write_workspace(tmp_path / "other")
    imported = run(other, "subscribers", "import", str(exported))
    assert imported.exit_code == 0 and "2 added" in imported.output
    assert run(other, "subscribers", "export", str(tmp_path / "again.csv")).exit_code == 0
    assert (tmp_path / "again.csv").read_text() == exported.read_text()


def test_digest_preview_writes_files_and_sends_nothing(config_path: Path) -> None:
    run(config_path, "subscribers", "add", "ana@example.org", "--regions", "Europe")
    _, store = open_workspace(config_path)
    store.save_articles([europe_article("e1"), asia_article("a1")], NOW)
    store.close()
    result = run(config_path, "digest", "preview", "ana@example.org")
    assert result.exit_code == 0, result.output
    html_path, text_path = (Path(p) for p in result.output.split())
    assert html_path.suffix == ".html" and "Paris story e1" in html_path.read_text()
    assert "Tokyo" not in text_path.read_text()
    _, store = open_workspace(config_path)
    assert store.delivery("2026-11-23", "ana@example.org") is None
    store.close()
    sent = run(config_path, "digest")  # the group's default is `send`
    assert "digest: 1 delivered" in sent.output
    assert list((config_path.parent / "outbox").glob("*.eml"))
    later = run(config_path, "digest", "preview", "ana@example.org")
    assert "nothing new for ana@example.org" in later.output
    unknown = run(config_path, "digest", "preview", "zed@example.org")
    assert unknown.exit_code == 1 and "no subscriber" in unknown.output

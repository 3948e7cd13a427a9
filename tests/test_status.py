"""`newsdesk status`: read-only, with counts, jobs and sources in error."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import NOW, RunCli

from newsdesk.store import Store


def test_status_without_a_database_says_what_to_do(run_cli: RunCli, workspace: Path) -> None:
    result = run_cli("status")
    assert result.exit_code == 1
    assert "no database at" in result.output and "start the daemon" in result.output
    assert not (workspace / "newsdesk.db").exists()


def test_status_reads_counts_and_jobs_and_writes_nothing(run_cli: RunCli, workspace: Path) -> None:
    assert run_cli("ingest").exit_code == 0
    store = Store.open(f"sqlite:///{workspace / 'newsdesk.db'}")
    run = store.start_job_run("ingest:seeds", None, NOW)
    store.finish_job_run(run, NOW.replace(second=4), "ok", detail="added=12")
    store.close()
    database = workspace / "newsdesk.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    result = run_cli("status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "daemon    not running"
    assert lines[1].startswith("articles  ") and int(lines[1].split()[1]) > 0
    assert lines[3] == "digests   3 pending this period (3 subscribers)"
    assert lines[4] == "sources   none in error"
    row = next(line for line in lines if line.startswith("ingest:seeds"))
    assert "ok" in row.split() and "4.0s" in row.split() and "added=12" in row
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


def test_status_lists_sources_in_error(run_cli: RunCli, workspace: Path) -> None:
    assert run_cli("ingest").exit_code == 0
    store = Store.open(f"sqlite:///{workspace / 'newsdesk.db'}")
    for name in ("lemonde", "bbc"):
        store.register_source(name, "config", f"https://{name}.example/rss", "feed", "", NOW)
    store.update_source("lemonde", {"error_count": 3, "last_error": "HTTP 503"}, NOW)
    store.update_source("bbc", {"error_count": 0, "status": "ok"}, NOW)
    store.close()
    result = run_cli("status")
    assert "sources   1 in error" in result.output
    assert "          lemonde: HTTP 503" in result.output
    assert "bbc" not in result.output

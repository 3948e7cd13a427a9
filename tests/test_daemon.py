"""The daemon as an operator runs it: a real subprocess, real signals, a real SMTP server.

Each test writes a workspace config whose schedule is measured in seconds, starts
`python scheduler.py` on it and watches its key=value log lines, the feeds it writes, the mail
that reaches an aiosmtpd server on loopback, and the database it shares with `newsdesk status`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import feedparser
import pytest
from aiosmtpd.controller import Controller
from conftest import REPO, free_port, postgres_url

from newsdesk.store import Store

SUBSCRIBERS = ("ada@example.org", "ben@example.org", "cleo@example.org")


# A real SMTP server -------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and can hold one message in flight."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.arrivals: list[datetime] = []
        self.hold_after: int | None = None  # hold the message after this many were accepted
        self.hold_reply = "451 4.3.0 try again later"
        self.holding = threading.Event()
        self.release = threading.Event()
        self._held = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.hold_after is not None and not self._held and len(self.messages) >= self.hold_after:
            self._held = True
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            if not self.hold_reply.startswith("250"):
                return self.hold_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        for recipient in envelope.rcpt_tos:
            self.messages.append((recipient, str(message["Message-ID"])))
            self.arrivals.append(datetime.now(UTC))
        return "250 2.0.0 accepted"

    def count(self, recipient: str) -> int:
        return sum(1 for who, _ in self.messages if who == recipient)


@pytest.fixture()
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.release.set()
        controller.stop()


# The daemon as a subprocess ----------------------------------------------------------------


def write_daemon_config(
    workspace: Path,
    cache: Path,
    *,
    smtp_port: int | None = None,
    ingest_every: float = 1.0,
    slot: str = "07:00",
    digest_grace_hours: float = 6.0,
    misfire_grace: float = 600.0,
    stop_timeout: float = 10.0,
    extra: str = "",
) -> None:
    smtp = (
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        "timeout_seconds = 20\nretries = 1\nretry_backoff_seconds = 0.2\n"
        if smtp_port is not None
        else ""
    )
    subscribers = "".join(
        f'[[subscribers]]\nemail = "{email}"\ntimezone = "UTC"\ntime = "{slot}"\n\n'
        for email in SUBSCRIBERS
    )
    (workspace / "newsdesk.toml").write_text(
        textwrap.dedent(
            f"""\
            [tagging]
            cache_dir = "{cache.as_posix()}"

            [feeds]
            base_url = "https://news.example.org/feeds/"
            min_country_articles = 1

            [schedule]
            ingest_every_seconds = {ingest_every}
            timezone = "Europe/Paris"
            digest_grace_hours = {digest_grace_hours}
            misfire_grace_seconds = {misfire_grace}
            stop_timeout_seconds = {stop_timeout}
            lock_stale_seconds = 60

            """
        )
        + smtp
        + "\n"
        + subscribers
        + extra,
        encoding="utf-8",
    )


class DaemonProcess:
    """`python scheduler.py -v` on a workspace, its stderr collected line by line."""

    def __init__(self, workspace: Path, env: dict[str, str] | None = None) -> None:
        self.workspace = workspace
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "scheduler.py"), "-v"],
            cwd=workspace,
            env={
                **os.environ,
                "NEWSDESK_CONFIG": str(workspace / "newsdesk.toml"),
                **(env or {}),
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90.0, after: int = 0) -> int:
        """Wait until a log line (from index `after`) contains `text`; return its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(after, len(self.lines)):
                if text in self.lines[index]:
                    return index
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                if not any(text in line for line in self.lines[after:]):
                    raise AssertionError(f"daemon exited before logging {text!r}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r} after {timeout}s:\n{self.log}")

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0, signum: int = signal.SIGTERM) -> int:
        """SIGTERM (or `signum`), then the exit status, which must come within `timeout` s."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=5)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture()
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.cleanup()


def start(daemons: list[DaemonProcess], workspace: Path, **env: str) -> DaemonProcess:
    daemon = DaemonProcess(workspace, env)
    daemons.append(daemon)
    return daemon


def status(workspace: Path) -> dict[str, Any]:
    """`newsdesk status --json`, run as a separate process beside the daemon."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from newsdesk.cli import main; main()",
            "--config",
            str(workspace / "newsdesk.toml"),
            "status",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def next_slot(lead_seconds: float = 8.0) -> datetime:
    """The first whole minute (UTC) at least `lead_seconds` from now."""
    soon = datetime.now(UTC) + timedelta(seconds=lead_seconds)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def past_slot() -> datetime:
    """A whole minute (UTC) that has just passed."""
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def feed_titles(workspace: Path) -> list[str]:
    path = workspace / "feeds" / "all.rss"
    if not path.exists():
        return []
    parsed = feedparser.parse(path.read_bytes())
    return [entry.title for entry in parsed.entries]


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def drop_article(workspace: Path, name: str, title: str) -> None:
    (workspace / "seeds" / name).write_text(
        f"---\ntitle: {title}\ndate: 2026-11-20T09:00:00Z\nlang: en\n---\n\n"
        "The harbour authority in Lisbon reopened the northern quay on Friday after repairs. "
        "Ferries to the south bank resumed their usual timetable in the afternoon.\n",
        encoding="utf-8",
    )


def job_runs(workspace: Path, job_id: str) -> list[Any]:
    store = Store.open(f"sqlite:///{workspace / 'newsdesk.db'}")
    try:
        return store.job_runs(job_id)
    finally:
        store.close()


# The tests -----------------------------------------------------------------------------------


def test_scheduler_runs_a_first_ingest_and_stops_on_sigterm(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    write_daemon_config(workspace, gazetteer_cache, ingest_every=1)
    daemon = start(daemons, workspace)
    daemon.wait_for("job_done job=ingest:seeds")
    assert (workspace / "feeds" / "index.html").exists()
    # A file dropped into the seeds folder appears in the feeds, without a restart.
    drop_article(workspace, "zz_lisbon_quay.md", "Lisbon reopens its northern quay")
    wait_until(
        lambda: "Lisbon reopens its northern quay" in feed_titles(workspace),
        60,
        "the dropped article in feeds/all.rss",
    )
    assert daemon.stop(timeout=10) == 0, daemon.log
    assert "daemon_stopping signal=SIGTERM" in daemon.log
    assert "daemon_stopped exit=0" in daemon.log


def test_digest_arrives_at_its_time_and_exactly_once_across_a_kill(
    workspace: Path,
    gazetteer_cache: Path,
    inbox: tuple[Inbox, int],
    daemons: list[DaemonProcess],
) -> None:
    server, port = inbox
    slot = next_slot()
    write_daemon_config(
        workspace, gazetteer_cache, smtp_port=port, slot=f"{slot:%H:%M}", ingest_every=3600
    )
    server.hold_after = 1  # the second message is held in flight ...
    first = start(daemons, workspace)
    first.wait_for("job_done job=ingest:seeds")
    job_id = f"digest:daily:{slot:%H:%M}:UTC"

    report = status(workspace)
    assert report["daemon"]["running"] is True
    assert report["daemon"]["pid"] == first.process.pid
    jobs = {job["id"]: job for job in report["jobs"]}
    assert datetime.fromisoformat(jobs[job_id]["next_run"]) == slot
    assert jobs["ingest:seeds"]["last_run"]["result"] == "ok"
    assert report["articles"] > 0 and report["feeds"] > 0
    assert report["pending_digests"] == len(SUBSCRIBERS)

    assert server.holding.wait(timeout=(slot - datetime.now(UTC)).total_seconds() + 60)
    assert len(server.messages) == 1
    assert server.arrivals[0] >= slot, "the first digest went out before its time"
    first.kill()  # ... and the daemon is killed with SIGKILL during that send
    server.release.set()  # the held message is refused: it was never delivered

    second = start(daemons, workspace)  # restarted after the digest time
    second.wait_for(f"digest_catch_up job={job_id}")
    second.wait_for(f"job_done job={job_id}")
    assert sorted(who for who, _ in server.messages) == sorted(SUBSCRIBERS)
    assert second.stop(timeout=10) == 0, second.log

    third = start(daemons, workspace)  # another restart sends nothing more
    third.wait_for("job_done job=ingest:seeds")
    time.sleep(1.5)
    assert "digest_catch_up" not in third.log
    assert third.stop(timeout=10) == 0, third.log
    assert [server.count(email) for email in SUBSCRIBERS] == [1, 1, 1]
    runs = job_runs(workspace, job_id)
    assert [run.result for run in runs] == ["interrupted", "ok"]
    assert all(run.scheduled == slot for run in runs)


def test_a_digest_missed_while_down_is_sent_once_at_start(
    workspace: Path,
    gazetteer_cache: Path,
    inbox: tuple[Inbox, int],
    daemons: list[DaemonProcess],
) -> None:
    server, port = inbox
    slot = past_slot()
    write_daemon_config(workspace, gazetteer_cache, smtp_port=port, slot=f"{slot:%H:%M}")
    daemon = start(daemons, workspace)
    daemon.wait_for(f"job_done job=digest:daily:{slot:%H:%M}:UTC")
    assert daemon.stop() == 0, daemon.log
    again = start(daemons, workspace)
    again.wait_for("job_done job=ingest:seeds")
    time.sleep(1.5)
    assert again.stop(signum=signal.SIGINT) == 0, again.log  # Ctrl-C stops it the same way
    assert "daemon_stopping signal=SIGINT" in again.log
    assert "digest_catch_up" not in again.log
    assert [server.count(email) for email in SUBSCRIBERS] == [1, 1, 1]


def test_a_digest_missed_beyond_the_grace_period_is_not_sent(
    workspace: Path,
    gazetteer_cache: Path,
    inbox: tuple[Inbox, int],
    daemons: list[DaemonProcess],
) -> None:
    server, port = inbox
    slot = past_slot()  # 1 to 2 minutes ago; the grace below is 18 seconds
    write_daemon_config(
        workspace, gazetteer_cache, smtp_port=port, slot=f"{slot:%H:%M}", digest_grace_hours=0.005
    )
    daemon = start(daemons, workspace)
    daemon.wait_for("job_done job=ingest:seeds")
    daemon.wait_for("job_done job=retention")  # the last job queued at start
    assert daemon.stop() == 0, daemon.log
    assert "digest_catch_up" not in daemon.log
    assert server.messages == []


def test_a_failing_job_is_logged_and_recorded_and_the_daemon_goes_on(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    slot = past_slot()
    closed_port = free_port()  # nothing listens there: every send fails
    write_daemon_config(
        workspace, gazetteer_cache, smtp_port=closed_port, slot=f"{slot:%H:%M}", ingest_every=1
    )
    daemon = start(daemons, workspace)
    job_id = f"digest:daily:{slot:%H:%M}:UTC"
    failed_at = daemon.wait_for(f"job_failed job={job_id}")
    daemon.wait_for("job_done job=ingest:seeds", after=failed_at)  # still running its jobs
    report = status(workspace)
    last = {job["id"]: job for job in report["jobs"]}[job_id]["last_run"]
    assert last["result"] == "error"
    assert last["error"].startswith("0 of 3 digests delivered") and "SMTP" in last["error"]
    assert last["duration"] is not None
    assert daemon.stop() == 0, daemon.log


def test_sigterm_lets_the_running_send_finish(
    workspace: Path,
    gazetteer_cache: Path,
    inbox: tuple[Inbox, int],
    daemons: list[DaemonProcess],
) -> None:
    server, port = inbox
    slot = past_slot()
    write_daemon_config(workspace, gazetteer_cache, smtp_port=port, slot=f"{slot:%H:%M}")
    server.hold_after, server.hold_reply = 0, "250 OK"
    daemon = start(daemons, workspace)
    assert server.holding.wait(timeout=90)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait_for("daemon_stopping signal=SIGTERM")
    threading.Timer(1.0, server.release.set).start()
    assert daemon.process.wait(timeout=10) == 0, daemon.log
    daemon._reader.join(timeout=5)
    assert [server.count(email) for email in SUBSCRIBERS] == [1, 1, 1]
    stopping = daemon.wait_for("daemon_stopping")
    assert daemon.wait_for(f"job_done job=digest:daily:{slot:%H:%M}:UTC") > stopping


def test_sigterm_gives_up_on_a_stuck_job_after_the_stop_timeout(
    workspace: Path,
    gazetteer_cache: Path,
    inbox: tuple[Inbox, int],
    daemons: list[DaemonProcess],
) -> None:
    server, port = inbox
    slot = past_slot()
    write_daemon_config(
        workspace, gazetteer_cache, smtp_port=port, slot=f"{slot:%H:%M}", stop_timeout=1
    )
    server.hold_after = 0  # held until the test ends
    daemon = start(daemons, workspace)
    assert server.holding.wait(timeout=90)
    assert daemon.stop(timeout=10) == 0, daemon.log
    assert "stop_timeout job=digest:daily" in daemon.log
    assert "daemon_stopped exit=0" in daemon.log


def test_missed_and_skipped_runs_are_recorded(
    workspace: Path,
    gazetteer_cache: Path,
    inbox: tuple[Inbox, int],
    daemons: list[DaemonProcess],
) -> None:
    server, port = inbox
    slot = past_slot()
    write_daemon_config(
        workspace,
        gazetteer_cache,
        smtp_port=port,
        slot=f"{slot:%H:%M}",
        ingest_every=1,
        misfire_grace=1,
    )
    server.hold_after = 0  # the digest blocks the one worker for a while
    daemon = start(daemons, workspace)
    assert server.holding.wait(timeout=90)
    time.sleep(4)
    server.release.set()
    daemon.wait_for("job_missed job=ingest:seeds")
    results = {run.result for run in job_runs(workspace, "ingest:seeds")}
    assert {"ok", "missed", "skipped"} <= results
    assert daemon.stop() == 0, daemon.log


def test_a_second_daemon_is_refused_and_a_stale_lock_is_taken_over(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    write_daemon_config(workspace, gazetteer_cache)
    first = start(daemons, workspace)
    first.wait_for("daemon_started")
    second = start(daemons, workspace)
    assert second.process.wait(timeout=60) == 1
    second._reader.join(timeout=5)
    assert (
        f"Error: another newsdesk daemon is running on this database: pid {first.process.pid} "
        f"on host {socket.gethostname()}"
    ) in second.log
    first.kill()  # its lock row stays behind
    third = start(daemons, workspace)
    third.wait_for("daemon_started")
    assert f"lock_taken_over previous_pid={first.process.pid}" in third.log
    assert third.stop() == 0, third.log


def test_the_daemon_runs_and_locks_on_postgresql(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    for url in postgres_url():  # skips when no PostgreSQL answers
        write_daemon_config(workspace, gazetteer_cache)
        first = start(daemons, workspace, NEWSDESK_DATABASE_URL=url)
        first.wait_for("job_done job=ingest:seeds")
        second = start(daemons, workspace, NEWSDESK_DATABASE_URL=url)
        assert second.process.wait(timeout=60) == 1
        second._reader.join(timeout=5)
        assert f"running on this database: pid {first.process.pid}" in second.log
        assert first.stop() == 0, first.log
        assert not (workspace / "newsdesk.db").exists()
        store = Store.open(url)
        try:
            assert store.lock_holder() is None  # released on the way out
            assert [run.result for run in store.job_runs("ingest:seeds")][:1] == ["ok"]
        finally:
            store.close()


def test_sources_are_fetched_on_their_own_interval_and_failures_shown(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    (workspace / "wire").mkdir()
    closed_port = free_port()
    sources = (
        '[[sources]]\nname = "wire"\npath = "wire"\nfetch_every_minutes = 0.02\n\n'
        f'[[sources]]\nname = "down"\nurl = "http://127.0.0.1:{closed_port}/feed.xml"\n'
        'kind = "feed"\n'
    )
    write_daemon_config(workspace, gazetteer_cache, ingest_every=3600, extra=sources)
    daemon = start(daemons, workspace)
    daemon.wait_for("job_done job=ingest:sources")
    # The seeds are read hourly, the wire folder every 1.2 s: only the wire's new file shows.
    drop_article(workspace, "zz_seed.md", "A seed that waits an hour")
    (workspace / "wire" / "quay.md").write_text(
        (workspace / "seeds" / "zz_seed.md")
        .read_text(encoding="utf-8")
        .replace("A seed that waits an hour", "Lisbon reopens its northern quay"),
        encoding="utf-8",
    )
    wait_until(
        lambda: "Lisbon reopens its northern quay" in feed_titles(workspace),
        30,
        "the wire folder's article",
    )
    assert "A seed that waits an hour" not in feed_titles(workspace)
    report = status(workspace)
    assert [entry["source"] for entry in report["sources_in_error"]] == ["down"]
    jobs = {job["id"]: job for job in report["jobs"]}
    assert jobs["ingest:sources"]["schedule"] == "every 1.2s"
    assert daemon.stop() == 0, daemon.log


def test_sighup_picks_up_a_changed_interval(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    write_daemon_config(workspace, gazetteer_cache, ingest_every=3600)
    daemon = start(daemons, workspace)
    daemon.wait_for("job_done job=ingest:seeds")
    drop_article(workspace, "zz_lisbon_quay.md", "Lisbon reopens its northern quay")
    time.sleep(3)
    assert "Lisbon reopens its northern quay" not in feed_titles(workspace)  # next run in 1 h
    write_daemon_config(workspace, gazetteer_cache, ingest_every=1)
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_for("job_rescheduled job=ingest:seeds")
    daemon.wait_for("daemon_reloaded")
    wait_until(
        lambda: "Lisbon reopens its northern quay" in feed_titles(workspace),
        30,
        "the dropped article after the reload",
    )
    jobs = {job["id"]: job for job in status(workspace)["jobs"]}
    assert jobs["ingest:seeds"]["schedule"] == "every 1s"
    assert daemon.stop() == 0, daemon.log


def test_systemd_notify_socket_gets_ready_watchdog_and_stopping(
    workspace: Path, gazetteer_cache: Path, daemons: list[DaemonProcess]
) -> None:
    write_daemon_config(workspace, gazetteer_cache)
    folder = Path(tempfile.mkdtemp(prefix="nd-notify-"))  # unix socket paths must be short
    try:
        address = str(folder / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(address)
            sock.settimeout(60)
            daemon = start(daemons, workspace, NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
            received: list[str] = []

            def receive_until(field: str) -> None:
                while not any(field in message.splitlines() for message in received):
                    received.append(sock.recv(4096).decode())

            receive_until("READY=1")
            receive_until("WATCHDOG=1")
            daemon.send_signal(signal.SIGHUP)
            receive_until("RELOADING=1")
            assert daemon.stop() == 0, daemon.log
            receive_until("STOPPING=1")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ready = next(m for m in received if "READY=1" in m.splitlines())
    assert "STATUS=running 3 jobs" in ready.splitlines()

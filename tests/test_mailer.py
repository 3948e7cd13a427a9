"""Delivery through a real SMTP server (aiosmtpd on 127.0.0.1): parts and headers arrive,
4xx is retried, 5xx is recorded, a dropped connection is survived, and a sender killed with
SIGKILL mid-batch then run again leaves exactly one digest per recipient."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import NOW, NOW_ISO
from digest_support import (
    SECRET,
    SmtpServer,
    asia_article,
    europe_article,
    open_workspace,
    smtp_section,
    write_workspace,
)

from newsdesk import pipeline
from newsdesk.models import Subscriber
from newsdesk.pipeline import DigestReport


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_TEST_UNSUBSCRIBE_SECRET", SECRET)


@pytest.fixture()
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


def _people(count: int) -> list[str]:
    return [f"reader{i:02d}@example.org" for i in range(count)]


def _workspace(tmp_path: Path, port: int, people: list[str], retries: int = 3) -> Path:
    config_path = write_workspace(tmp_path, extra=smtp_section(port, retries))
    _, store = open_workspace(config_path)
    for index, address in enumerate(people):
        language = "fr" if index % 2 else "en"
        sub = Subscriber(address, name=f"Reader {index}", regions=("Europe",), language=language)
        store.upsert_subscriber(sub, "cli", NOW, status="active")
    store.save_articles([europe_article("e1"), europe_article("e2"), asia_article("a1")], NOW)
    store.close()
    return config_path


def _digest(config_path: Path, now=NOW) -> DigestReport:  # type: ignore[no-untyped-def]
    config, store = open_workspace(config_path)
    try:
        subscribers = pipeline.load_subscribers(config, store, now)
        return pipeline.digest(
            config, store, pipeline.templates_for(config), subscribers, now, sleep=lambda _: None
        )
    finally:
        store.close()


def _ledger(config_path: Path, email: str) -> dict[str, object]:
    _, store = open_workspace(config_path)
    row = store.delivery("2026-11-23", email)
    store.close()
    assert row is not None
    return row


def test_both_parts_and_all_headers_arrive_over_one_connection(
    tmp_path: Path, server: SmtpServer
) -> None:
    people = _people(4)
    config_path = _workspace(tmp_path, server.port, people)
    report = _digest(config_path)
    assert not report.errors and len(report.delivered) == 4
    assert server.sink.per_recipient() == dict.fromkeys(people, 1)
    assert server.sink.connections == 1  # one session reused for the batch
    first = server.sink.received[0]
    assert first.mail_from == "digest@news.example.org"
    message = first.message
    for header in (
        "From",
        "To",
        "Date",
        "Subject",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ):
        assert message[header], header
    assert message["To"] == "Reader 0 <reader00@example.org>"
    assert message["Subject"] == "newsdesk — 23 Nov 2026 — 2 articles"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and "Paris story e1" in plain.get_content()
    assert html is not None and "Paris story e1" in html.get_content()
    french = server.sink.received[1].message
    assert french["Subject"] == "newsdesk — 23 nov. 2026 — 2 articles"
    assert _ledger(config_path, people[0])["status"] == "sent"
    assert _digest(config_path).already_sent == 4
    assert len(server.sink.received) == 4


def test_a_4xx_answer_is_retried_then_succeeds(tmp_path: Path, server: SmtpServer) -> None:
    people = _people(3)
    server.sink.rcpt_answers[people[1]] = ["451 4.3.0 try again later", "452 4.2.2 still busy"]
    config_path = _workspace(tmp_path, server.port, people)
    report = _digest(config_path)
    assert not report.errors
    assert server.sink.per_recipient() == dict.fromkeys(people, 1)
    assert _ledger(config_path, people[1])["status"] == "sent"


def test_a_4xx_that_never_clears_is_deferred_to_the_next_run(
    tmp_path: Path, server: SmtpServer
) -> None:
    people = _people(2)
    server.sink.rcpt_answers[people[0]] = ["451 4.3.0 later"] * 3
    config_path = _workspace(tmp_path, server.port, people, retries=2)
    report = _digest(config_path)
    assert len(report.errors) == 1 and "deferred" in report.errors[0]
    assert _ledger(config_path, people[0])["status"] == "deferred"
    assert server.sink.per_recipient() == {people[1]: 1}
    again = _digest(config_path)  # the server answers 250 now
    assert not again.errors and again.already_sent == 1
    assert server.sink.per_recipient() == dict.fromkeys(people, 1)


def test_a_5xx_is_recorded_on_the_subscriber_and_not_retried(
    tmp_path: Path, server: SmtpServer
) -> None:
    people = _people(3)
    server.sink.rcpt_answers[people[0]] = ["550 5.1.1 no such user"] * 10
    config_path = _workspace(tmp_path, server.port, people)
    report = _digest(config_path)
    assert len(report.errors) == 1 and "550 5.1.1 no such user" in report.errors[0]
    assert server.sink.per_recipient() == {people[1]: 1, people[2]: 1}
    assert len(server.sink.rcpt_answers[people[0]]) == 9  # asked once, no retry
    ledger = _ledger(config_path, people[0])
    assert ledger["status"] == "failed" and "550" in str(ledger["error"])
    _, store = open_workspace(config_path)
    record = store.subscriber_record(people[0])
    assert record is not None and record.permanent_failures == 1
    assert "no such user" in record.last_error and record.status == "active"
    store.close()
    again = _digest(config_path)
    assert again.failed_before == 1 and len(server.sink.rcpt_answers[people[0]]) == 9
    # Three periods refused in a row: the address is marked bounced and left alone.
    for day in (1, 2):
        _, store = open_workspace(config_path)
        store.save_articles([europe_article(f"d{day}")], NOW + timedelta(days=day))
        store.close()
        _digest(config_path, NOW + timedelta(days=day))
    _, store = open_workspace(config_path)
    record = store.subscriber_record(people[0])
    assert record is not None and record.status == "bounced" and record.permanent_failures == 3
    store.close()


def test_a_connection_dropped_mid_batch_is_reopened_and_nothing_doubles(
    tmp_path: Path, server: SmtpServer
) -> None:
    people = _people(6)
    server.sink.drop_at = {3, 5}
    config_path = _workspace(tmp_path, server.port, people)
    report = _digest(config_path)
    assert not report.errors, report.errors
    assert server.sink.per_recipient() == dict.fromkeys(people, 1)
    assert server.sink.connections == 3


def test_an_unreachable_server_stops_the_batch_and_a_rerun_resumes(tmp_path: Path) -> None:
    people = _people(3)
    with SmtpServer() as probe:
        port = probe.port
    config_path = _workspace(tmp_path, port, people, retries=1)
    report = _digest(config_path)
    assert len(report.errors) == 1 and "cannot connect" in report.errors[0]
    with SmtpServer.on_port(port) as server:
        again = _digest(config_path)
        assert not again.errors and len(again.delivered) == 3
        assert server.sink.per_recipient() == dict.fromkeys(people, 1)


def _sender(config_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NEWSDESK_TEST_UNSUBSCRIBE_SECRET": SECRET}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from newsdesk.cli import main; main()",
            "--config",
            str(config_path),
            "--now",
            NOW_ISO,
            "digest",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("held", [1, 4, 9])
def test_sigkill_mid_batch_then_rerun_sends_exactly_one_each(
    tmp_path: Path, server: SmtpServer, held: int
) -> None:
    people = _people(10)
    config_path = _workspace(tmp_path, server.port, people)
    server.sink.hold_at = held  # stored, but the "250" waits: the message is in flight
    process = _sender(config_path)
    assert server.sink.held.wait(60), process.stderr.read() if process.stderr else ""
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert process.returncode == -signal.SIGKILL
    server.sink.release.set()
    assert len(server.sink.received) == held
    in_flight = server.sink.received[-1]
    rerun = _sender(config_path)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    counts = server.sink.per_recipient()
    assert set(counts) == set(people)
    # Only the message in flight at the kill may arrive twice, and then as the same message.
    repeated = [address for address, count in counts.items() if count > 1]
    assert repeated == in_flight.rcpt_tos and counts[repeated[0]] == 2
    copies = [r.message["Message-ID"] for r in server.sink.received if r.rcpt_tos == repeated]
    assert copies[0] == copies[1]
    assert f"digest: {11 - held} delivered".encode() in out
    third = _sender(config_path)
    out, _ = third.communicate(timeout=120)
    assert b"0 delivered, 10 already sent" in out
    assert sum(server.sink.per_recipient().values()) == 11


def test_sigkill_at_a_random_moment_never_loses_or_doubles(
    tmp_path: Path, server: SmtpServer
) -> None:
    people = _people(30)
    config_path = _workspace(tmp_path, server.port, people)
    process = _sender(config_path)
    deadline = time.monotonic() + 60
    while len(server.sink.received) < 12 and time.monotonic() < deadline:
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    rerun = _sender(config_path)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    counts = server.sink.per_recipient()
    assert set(counts) == set(people)
    assert sum(counts.values()) - len(people) <= 1  # at most the one in flight

"""`newsdesk status`: what the daemon is doing, read from the database without writing to it.

The daemon publishes its schedule (each job's next run) and records every run; this module
only reads those, plus a few counts, so it works while the daemon runs, from any host.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from newsdesk.catalog import define_feeds
from newsdesk.config import Config
from newsdesk.digest import period_key
from newsdesk.feedsite import topic_parents
from newsdesk.lock import stale_reason
from newsdesk.models import Subscriber
from newsdesk.store import JobRun, LockHolder, Store


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_id: str
    name: str
    schedule: str
    next_run: datetime | None
    last: JobRun | None


@dataclass(frozen=True, slots=True)
class Status:
    now: datetime
    daemon: LockHolder | None
    daemon_running: bool
    daemon_note: str  # why a lock row is not a running daemon, or ""
    jobs: tuple[JobStatus, ...]
    articles: int
    feeds: int
    subscribers: int
    pending_digests: int
    sources_in_error: tuple[tuple[str, str], ...]  # (source, last error)


def collect(config: Config, store: Store, now: datetime) -> Status:
    """Everything `newsdesk status` shows, as of `now`."""
    holder = store.lock_holder()
    note = ""
    running = False
    if holder is not None:
        stale_after = timedelta(seconds=config.schedule.lock_stale_seconds)
        reason = stale_reason(holder, now, stale_after, socket.gethostname())
        running = reason is None
        note = reason or ""
    schedule = {job.job_id: job for job in store.job_schedule()}
    last_runs = store.last_job_runs()
    jobs = tuple(
        JobStatus(
            job_id=job_id,
            name=schedule[job_id].name if job_id in schedule else job_id,
            schedule=schedule[job_id].trigger if job_id in schedule else "not scheduled",
            next_run=schedule[job_id].next_run if job_id in schedule and running else None,
            last=last_runs.get(job_id),
        )
        for job_id in sorted(set(schedule) | set(last_runs))
    )
    subscribers = _subscribers(config, store)
    wanted = {(period_key(s, now), s.email) for s in subscribers}
    sent = store.sent_deliveries({period for period, _ in wanted})
    feeds = define_feeds(
        store.tag_counts(),
        store.language_counts(now),
        config.custom_feeds,
        config.feeds.title,
        config.feeds.min_country_articles,
        topic_parents(),
        [region.name for region in config.regions],
    )  # the same call the build makes, so the count is the feeds a build writes
    return Status(
        now=now,
        daemon=holder,
        daemon_running=running,
        daemon_note=note,
        jobs=jobs,
        articles=store.count_articles(),
        feeds=len(feeds),
        subscribers=len(subscribers),
        pending_digests=len(wanted - sent),
        sources_in_error=tuple(store.sources_in_error()),
    )


def _subscribers(config: Config, store: Store) -> list[Subscriber]:
    """Who the daemon sends to: the database's active subscribers, plus config seeds it has
    not stored yet (read here without the upsert `pipeline.load_subscribers` does)."""
    records = store.subscriber_records(None)
    known = {record.subscriber.email.lower() for record in records}
    active = [record.subscriber for record in records if record.status == "active"]
    return active + [s for s in config.subscribers if s.email.lower() not in known]


def render_text(status: Status) -> str:
    """The status as a few aligned lines for a terminal."""
    lines = [f"daemon    {_daemon_line(status)}"]
    lines.append(f"articles  {status.articles}")
    lines.append(f"feeds     {status.feeds}")
    lines.append(
        f"digests   {status.pending_digests} pending this period ({status.subscribers} subscribers)"
    )
    if not status.sources_in_error:
        lines.append("sources   none in error")
    else:
        lines.append(f"sources   {len(status.sources_in_error)} in error")
        lines.extend(f"          {name}: {error}" for name, error in status.sources_in_error)
    lines.append("")
    header = ("JOB", "NEXT RUN", "LAST RUN", "RESULT", "DURATION", "DETAIL")
    rows = [header] + [_job_row(job, status.now) for job in status.jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    if not status.jobs:
        lines.append("(no jobs yet: start the daemon with `newsdesk daemon`)")
    return "\n".join(lines)


def to_json(status: Status) -> dict[str, Any]:
    """The status as plain JSON-ready data (`newsdesk status --json`)."""
    return {
        "now": _iso(status.now),
        "daemon": None
        if status.daemon is None
        else {
            "running": status.daemon_running,
            "pid": status.daemon.pid,
            "host": status.daemon.host,
            "started": _iso(status.daemon.started),
            "heartbeat": _iso(status.daemon.heartbeat),
            "note": status.daemon_note,
        },
        "articles": status.articles,
        "feeds": status.feeds,
        "subscribers": status.subscribers,
        "pending_digests": status.pending_digests,
        "sources_in_error": [
            {"source": name, "error": error} for name, error in status.sources_in_error
        ],
        "jobs": [
            {
                "id": job.job_id,
                "name": job.name,
                "schedule": job.schedule,
                "next_run": _iso(job.next_run),
                "last_run": None
                if job.last is None
                else {
                    "started": _iso(job.last.started),
                    "scheduled": _iso(job.last.scheduled),
                    "finished": _iso(job.last.finished),
                    "duration": job.last.duration,
                    "result": job.last.result,
                    "error": job.last.error,
                    "detail": job.last.detail,
                },
            }
            for job in status.jobs
        ],
    }


def _daemon_line(status: Status) -> str:
    holder = status.daemon
    if holder is None:
        return "not running"
    if not status.daemon_running:
        return (
            f"not running (stale lock of pid {holder.pid} on {holder.host}: {status.daemon_note})"
        )
    return (
        f"running: pid {holder.pid} on {holder.host}, since {_when(holder.started, status.now)}, "
        f"heartbeat {_ago(holder.heartbeat, status.now)}"
    )


def _job_row(job: JobStatus, now: datetime) -> tuple[str, str, str, str, str, str]:
    last = job.last
    detail = ""
    if last is not None:
        detail = last.error or last.detail
    return (
        job.job_id,
        _when(job.next_run, now) if job.next_run else "-",
        _when(last.started, now) if last else "never",
        last.result if last else "-",
        f"{last.duration:.1f}s" if last and last.duration is not None else "-",
        detail,
    )


def _when(moment: datetime, now: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}Z ({_ago(moment, now)})"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = round((now - moment).total_seconds())
    span = _span(abs(seconds))
    return f"{span} ago" if seconds >= 0 else f"in {span}"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None

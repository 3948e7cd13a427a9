"""The scheduler daemon: ingest and build on an interval, the digest on a cron schedule."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import UTC, datetime
from types import FrameType

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsdesk import pipeline
from newsdesk.config import Config
from newsdesk.store import Store

log = logging.getLogger(__name__)
MISFIRE_GRACE_SECONDS = 6 * 3600


def _now() -> datetime:
    return datetime.now(UTC)


def build_scheduler(config: Config, store: Store) -> BlockingScheduler:
    """The scheduler with its jobs; nothing runs until `start()`."""
    tagger = pipeline.make_tagger(config)
    templates = pipeline.templates_for(config)

    def ingest_and_build() -> None:
        now = _now()
        report = pipeline.ingest_all(config, store, tagger, [config.seeds_dir], now)
        if report.added or report.updated or not config.feeds_dir.joinpath("index.html").exists():
            pipeline.build(config, store, templates, now)

    def send_digests() -> None:
        subscribers = pipeline.load_subscribers(config, store)
        pipeline.digest(config, store, templates, subscribers, _now())

    scheduler = BlockingScheduler(
        timezone=config.schedule.timezone,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
    )
    scheduler.add_job(
        ingest_and_build,
        IntervalTrigger(
            minutes=config.schedule.ingest_every_minutes, timezone=config.schedule.timezone
        ),
        id="ingest_build",
        name="ingest and build",
        next_run_time=datetime.now(UTC),
    )
    hour, minute = config.schedule.digest_time.split(":")
    scheduler.add_job(
        send_digests,
        CronTrigger(
            # Day names, never numbers: APScheduler 3 counts Monday as 0, cron as 1.
            day_of_week=config.schedule.digest_days,
            hour=int(hour),
            minute=int(minute),
            timezone=config.schedule.timezone,
        ),
        id="digest",
        name="digest",
    )
    scheduler.add_listener(_log_job_problem, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


def _log_job_problem(event: JobExecutionEvent) -> None:
    if event.exception is not None:
        log.error("job_failed job=%s error=%s", event.job_id, event.exception)
    else:
        log.warning("job_missed job=%s scheduled=%s", event.job_id, event.scheduled_run_time)


def run(config: Config) -> int:
    """Run until SIGTERM or SIGINT, then stop cleanly and return 0."""
    store = Store.open(config.database_url())
    scheduler = build_scheduler(config, store)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("daemon_stopping signal=%s", signal.Signals(signum).name)
        if scheduler.running:
            scheduler.shutdown(wait=True)  # let a running job finish

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("daemon_started config=%s", config.source_name)
    print("newsdesk daemon running; stop with Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
    scheduler.start()
    store.close()
    log.info("daemon_stopped")
    return 0

"""What the daemon runs and when: ingest targets, digest send slots, retention.

Planning is pure (config, subscribers and `now` in; job specs and fire times out). The job
bodies call the pipeline and return a one-line detail for the job history; a body raises
JobError when it ran but something in it failed (the daemon records that and goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsdesk import pipeline
from newsdesk.config import Config
from newsdesk.digest import period_key
from newsdesk.models import Subscriber
from newsdesk.store import Store
from newsdesk.tagging.tagger import Tagger

log = logging.getLogger(__name__)

RETENTION_JOB = "retention"
SOURCES_TARGET = "sources"  # the ingest target for [[sources]] and OPML-imported sources
JOB_HISTORY = timedelta(days=30)  # job_runs rows older than this are pruned by retention


class JobError(Exception):
    """A job ran but part of it failed (e.g. some digests were not delivered)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


# Planning -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Inputs ingested together on one interval; the job id is `ingest:<name>`."""

    name: str
    paths: tuple[Path, ...]
    every_seconds: float

    @property
    def job_id(self) -> str:
        return f"ingest:{self.name}"


def ingest_targets(config: Config, imported_sources: bool = False) -> list[IngestTarget]:
    """Everything the daemon ingests on an interval.

    The seeds folder, on `[schedule] ingest_every_seconds`. Then, when there are `[[sources]]`
    (or sources imported from OPML), one `ingest:sources` job that ticks as often as the most
    frequent source wants: each source's own interval and its back-off live in the sources
    table (next fetch), so a tick fetches just the sources that are due, concurrently.
    """
    default = config.schedule.ingest_every_seconds
    targets = [IngestTarget("seeds", (config.seeds_dir,), default)]
    enabled = [source for source in config.sources if source.enabled]
    if enabled or imported_sources:
        wanted = [s.fetch_every_minutes * 60 for s in enabled if s.fetch_every_minutes > 0]
        if imported_sources or any(s.fetch_every_minutes <= 0 for s in enabled):
            wanted.append(default)
        targets.append(IngestTarget(SOURCES_TARGET, (), min(wanted)))
    return targets


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """Subscribers who get their digest at the same local time, zone and frequency."""

    frequency: str
    time: str  # HH:MM
    timezone: str

    @property
    def job_id(self) -> str:
        return f"digest:{self.frequency}:{self.time}:{self.timezone}"

    def days(self, config: Config) -> str:
        # Day names, never numbers: APScheduler 3 counts Monday as 0, cron as 1.
        return (
            config.schedule.weekly_day
            if self.frequency == "weekly"
            else config.schedule.digest_days
        )

    def trigger(self, config: Config) -> CronTrigger:
        hour, minute = self.time.split(":")
        return CronTrigger(
            day_of_week=self.days(config).lower(),
            hour=int(hour),
            minute=int(minute),
            second=0,
            timezone=ZoneInfo(self.timezone),
        )


def slot_of(subscriber: Subscriber) -> Slot:
    return Slot(subscriber.frequency, subscriber.time, subscriber.timezone)


def slots_for(subscribers: Iterable[Subscriber]) -> dict[Slot, list[Subscriber]]:
    """Subscribers grouped into send slots: one cron job per distinct slot."""
    slots: dict[Slot, list[Subscriber]] = {}
    for subscriber in subscribers:
        slots.setdefault(slot_of(subscriber), []).append(subscriber)
    return dict(sorted(slots.items()))


def digest_window(config: Config) -> timedelta:
    """How late a digest may still go out for its slot (also the digest jobs' misfire grace)."""
    return timedelta(
        seconds=max(
            config.schedule.digest_grace_hours * 3600, config.schedule.misfire_grace_seconds
        )
    )


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every time `trigger` fires in [start, end]."""
    times: list[datetime] = []
    moment: datetime | None = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end:
        times.append(moment)
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return times


def last_fire(trigger: BaseTrigger, now: datetime, window: timedelta) -> datetime | None:
    """The latest time `trigger` fired in the `window` before `now`, or None."""
    times = fire_times(trigger, now - window, now)
    return times[-1] if times else None


def missed_digest(
    slot: Slot,
    subscribers: Sequence[Subscriber],
    config: Config,
    store: Store,
    now: datetime,
) -> datetime | None:
    """The slot time to catch up at start-up, or None.

    A slot needs catching up when it fired within `[schedule] digest_grace_hours` before `now`,
    no run for that time finished cleanly (job history), and the send ledger still lacks a
    sent digest for someone in the slot. Sending goes through the ledger, so nobody gets two.
    """
    grace = timedelta(hours=config.schedule.digest_grace_hours)
    if grace <= timedelta(0) or not subscribers:
        return None
    fire = last_fire(slot.trigger(config), now, grace)
    if fire is None or store.job_completed(slot.job_id, fire):
        return None
    wanted = {(period_key(s, fire), s.email) for s in subscribers}
    if wanted <= store.sent_deliveries({period for period, _ in wanted}):
        return None
    return fire


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: what to call, on which trigger, with which misfire grace."""

    job_id: str
    name: str
    trigger: BaseTrigger
    key: str  # equal keys mean an equal schedule (a reload leaves such a job alone)
    misfire_grace_seconds: float
    body: Callable[[datetime, datetime | None], str]
    scheduled: Callable[[datetime], datetime | None] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def plan(
    config: Config,
    subscribers: Sequence[Subscriber],
    jobs: Jobs,
    imported_sources: bool = False,
) -> list[JobSpec]:
    """Every job the config, the subscribers and the imported sources call for."""
    zone = ZoneInfo(config.schedule.timezone)
    grace = config.schedule.misfire_grace_seconds
    specs = [
        JobSpec(
            job_id=target.job_id,
            name=f"ingest {target.name}",
            trigger=IntervalTrigger(seconds=target.every_seconds, timezone=zone),
            key=f"every {target.every_seconds:g}s",
            misfire_grace_seconds=grace,
            body=_bind_ingest(jobs, target.name),
        )
        for target in ingest_targets(config, imported_sources)
    ]
    for slot in slots_for(subscribers):
        specs.append(
            JobSpec(
                job_id=slot.job_id,
                name=f"digest {slot.frequency} {slot.time} {slot.timezone}",
                trigger=slot.trigger(config),
                key=f"{slot.days(config)} {slot.time} {slot.timezone}",
                misfire_grace_seconds=digest_window(config).total_seconds(),
                body=_bind_digest(jobs, slot),
                scheduled=_bind_fire(slot, config),
            )
        )
    hour, minute = config.retention.run_at.split(":")
    specs.append(
        JobSpec(
            job_id=RETENTION_JOB,
            name="retention cleanup",
            trigger=CronTrigger(hour=int(hour), minute=int(minute), timezone=zone),
            key=f"daily {config.retention.run_at} {config.schedule.timezone}",
            misfire_grace_seconds=max(grace, 3600.0),
            body=jobs.retention,
        )
    )
    return specs


def _bind_ingest(jobs: Jobs, name: str) -> Callable[[datetime, datetime | None], str]:
    return lambda now, _scheduled: jobs.ingest(name, now)


def _bind_digest(jobs: Jobs, slot: Slot) -> Callable[[datetime, datetime | None], str]:
    return lambda now, scheduled: jobs.digest(slot, now, scheduled)


def _bind_fire(slot: Slot, config: Config) -> Callable[[datetime], datetime | None]:
    trigger, window = slot.trigger(config), digest_window(config)
    return lambda now: last_fire(trigger, now, window)


# Job bodies -------------------------------------------------------------------------------


class Jobs:
    """The job bodies, over one store and the current config (swapped on reload)."""

    def __init__(self, config: Config, store: Store) -> None:
        self.store = store
        self.config = config
        self.templates = pipeline.templates_for(config)
        self._tagger: Tagger | None = None

    def reconfigure(self, config: Config) -> None:
        if config.tagging != self.config.tagging:
            self._tagger = None  # rebuilt (from the gazetteer cache) on the next ingest
        self.config = config
        self.templates = pipeline.templates_for(config)

    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = pipeline.make_tagger(self.config)
        return self._tagger

    def ingest(self, name: str, now: datetime) -> str:
        """Ingest one target; rebuild the feeds when that changed something."""
        config = self.config
        if name == SOURCES_TARGET:
            report = pipeline.ingest_sources(config, self.store, self.tagger, now)
        else:
            target = next((t for t in ingest_targets(config) if t.name == name), None)
            if target is None:
                return "target no longer configured"
            report = pipeline.ingest(config, self.store, self.tagger, target.paths, now)
        changed = bool(report.added or report.updated or report.merged)
        built = changed or not (config.feeds_dir / "index.html").exists()
        if built:
            pipeline.build(config, self.store, self.templates, now)
        # Rejected inputs and failing sources are recorded on themselves (and counted here),
        # not failures of the job.
        return (
            f"added={report.added} updated={report.updated} unchanged={report.unchanged} "
            f"merged={report.merged} sources={report.sources} rejected={len(report.errors)} "
            f"built={'yes' if built else 'no'}"
        )

    def imported_sources(self) -> bool:
        """Whether sources were imported from OPML (they live in the database only)."""
        return any(state.origin == "opml" for state in self.store.source_states().values())

    def digest(self, slot: Slot, now: datetime, scheduled: datetime | None) -> str:
        """Deliver the digests of one send slot, once per subscriber and period (the ledger)."""
        config = self.config
        subscribers = [
            s for s in pipeline.load_subscribers(config, self.store, now) if slot_of(s) == slot
        ]
        if not subscribers:
            return "subscribers=0"
        when = now
        if scheduled is not None and period_key(subscribers[0], scheduled) != period_key(
            subscribers[0], now
        ):
            # Sent late, after the slot's period ended (say 23:30 sent at 00:10): it is still
            # that period's digest, so it is made as of the slot time.
            when = scheduled
        report = pipeline.digest(config, self.store, self.templates, subscribers, when)
        detail = (
            f"subscribers={len(subscribers)} delivered={len(report.delivered)} "
            f"already_sent={report.already_sent} nothing_new={report.nothing_new} "
            f"failed={len(report.errors)}"
        )
        if report.errors:
            raise JobError(
                f"{len(report.delivered)} of {len(subscribers)} digests delivered, "
                f"{len(report.errors)} errors; first: {report.errors[0]}",
                detail,
            )
        return detail

    def retention(self, now: datetime, _scheduled: datetime | None = None) -> str:
        """Drop articles older than `[retention] days`, prune the job history, rebuild."""
        config = self.config
        deleted = 0
        if config.retention.days > 0:
            deleted = self.store.delete_articles_older_than(
                now - timedelta(days=config.retention.days)
            )
        pruned = self.store.prune_job_runs(now - JOB_HISTORY)
        if deleted:
            pipeline.build(config, self.store, self.templates, now)
        return f"articles_deleted={deleted} job_runs_pruned={pruned}"

"""The scheduler daemon: one per database, jobs from config, stop and reload by signal.

Lifecycle: take the database's daemon lock (newsdesk.lock), plan the jobs (newsdesk.jobs),
catch up on what a downtime missed, start APScheduler, tell systemd we are ready, then loop on
the main thread: heartbeat the lock, ping the watchdog, publish the schedule for
`newsdesk status`, and act on SIGHUP (reload), SIGTERM and SIGINT (finish the running job,
exit 0).

Jobs run one at a time on a single worker thread: they share the database (SQLite has one
writer) and the feeds folder, and a stop only ever has to wait for one job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ADDED,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_MODIFIED,
    EVENT_JOB_REMOVED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from newsdesk import pipeline
from newsdesk.config import Config, load_config
from newsdesk.errors import NewsdeskError
from newsdesk.jobs import (
    RETENTION_JOB,
    JobError,
    Jobs,
    JobSpec,
    ingest_targets,
    missed_digest,
    plan,
    slots_for,
)
from newsdesk.lock import DaemonLock, acquire
from newsdesk.logs import quote
from newsdesk.store import ScheduledJob, Store
from newsdesk.systemd import Notifier

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SLOT_REFRESH_SECONDS = 60.0  # how often subscribers are re-read for new or vanished send slots
MAX_TICK_SECONDS = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class JobFailed(Exception):
    """Raised out of a job so the scheduler's listener can log and record the failure."""

    def __init__(self, run_id: int, job_id: str, cause: BaseException, detail: str) -> None:
        super().__init__(str(cause))
        self.run_id = run_id
        self.job_id = job_id
        self.cause = cause
        self.detail = detail


class Signals:
    """SIGTERM/SIGINT ask to stop, SIGHUP to reload; a pipe wakes the main loop at once."""

    def __init__(self) -> None:
        self.stop: str | None = None
        self.reload = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop = signal.Signals(signum).name
        self.wake()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload = True
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe: the loop is due to wake
            os.write(self._write, b"\0")

    def sleep(self, seconds: float) -> None:
        """Sleep until the timeout or a wake-up, whichever comes first."""
        ready, _, _ = select.select([self._read], [], [], seconds)
        if ready:
            os.read(self._read, 4096)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Runner:
    """Runs job bodies: records each start, refuses new runs once stopping, knows when idle."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._guard = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self.current: str | None = None

    def run(self, spec: JobSpec) -> str:
        with self._guard:
            if self._stopping:
                log.info("job_skipped job=%s reason=stopping", spec.job_id)
                return "skipped"
            self._idle.clear()
            self.current = spec.job_id
        now = self._clock()
        scheduled = spec.scheduled(now) if spec.scheduled is not None else None
        run_id = self._store.start_job_run(spec.job_id, scheduled, now)
        log.info("job_started job=%s", spec.job_id)
        try:
            detail = spec.body(now, scheduled)
        except Exception as error:
            if not isinstance(error, JobError | NewsdeskError):
                log.error("job_crashed job=%s", spec.job_id, exc_info=True)  # a bug: keep the trace
            raise JobFailed(run_id, spec.job_id, error, getattr(error, "detail", "")) from error
        finished = self._clock()
        self._store.finish_job_run(run_id, finished, "ok", detail=detail)
        log.info(
            "job_done job=%s duration=%.3f %s",
            spec.job_id,
            (finished - now).total_seconds(),
            detail,
        )
        return detail

    def ended(self) -> None:
        """Called by the listener once the run's outcome is recorded."""
        with self._guard:
            self.current = None
            self._idle.set()

    def stop_accepting(self) -> None:
        with self._guard:
            self._stopping = True

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)


class Daemon:
    def __init__(
        self,
        config: Config,
        config_path: Path | None,
        store: Store,
        lock: DaemonLock,
        notifier: Notifier,
        signals: Signals,
        clock: Clock = _now,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.store = store
        self.lock = lock
        self.notifier = notifier
        self.signals = signals
        self.clock = clock
        self.jobs = Jobs(config, store)
        self.runner = Runner(store, clock)
        self.specs: dict[str, JobSpec] = {}
        self.scheduler = BackgroundScheduler(
            timezone=ZoneInfo(config.schedule.timezone),
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": _grace(config.schedule.misfire_grace_seconds),
            },
        )
        self.scheduler.add_listener(self._on_event)
        self._dirty = True
        self.exit_code = 0
        self.abandoned = False  # the stop timeout passed with a job still running

    def _wake(self) -> None:
        self.signals.wake()

    def _sleep(self, seconds: float) -> None:
        self.signals.sleep(seconds)

    # Jobs ------------------------------------------------------------------------------

    def _run_job(self, job_id: str) -> str:
        spec = self.specs.get(job_id)
        if spec is None:
            return "job no longer configured"
        return self.runner.run(spec)

    def _apply(self, specs: list[JobSpec], first_runs: dict[str, datetime] | None = None) -> None:
        """Make the scheduler's jobs match `specs`; jobs whose schedule is unchanged keep
        their next run."""
        wanted = {spec.job_id: spec for spec in specs}
        previous, self.specs = self.specs, wanted
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                self.scheduler.remove_job(job.id)
                log.info("job_unscheduled job=%s", job.id)
        for spec in specs:
            old = previous.get(spec.job_id)
            grace = _grace(spec.misfire_grace_seconds)
            if old is None or self.scheduler.get_job(spec.job_id) is None:
                extra: dict[str, Any] = {}
                if first_runs and spec.job_id in first_runs:
                    extra["next_run_time"] = first_runs[spec.job_id]
                self.scheduler.add_job(
                    self._run_job,
                    trigger=spec.trigger,
                    args=[spec.job_id],
                    id=spec.job_id,
                    name=spec.name,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=grace,
                    replace_existing=True,
                    **extra,
                )
                log.info("job_scheduled job=%s schedule=%s", spec.job_id, quote(spec.key))
            elif old.key != spec.key:
                self.scheduler.reschedule_job(spec.job_id, trigger=spec.trigger)
                self.scheduler.modify_job(spec.job_id, misfire_grace_time=grace)
                log.info("job_rescheduled job=%s schedule=%s", spec.job_id, quote(spec.key))
            elif old.misfire_grace_seconds != spec.misfire_grace_seconds:
                self.scheduler.modify_job(spec.job_id, misfire_grace_time=grace)
        self._dirty = True

    def _first_runs(self, now: datetime) -> dict[str, datetime]:
        """What runs at once on start: every ingest (missed runs coalesce into this one), then
        digests a downtime made us miss, then a retention cleanup overdue by a day."""
        first: dict[str, datetime] = {
            t.job_id: now for t in ingest_targets(self.config, self.jobs.imported_sources())
        }
        step = timedelta(milliseconds=1)  # ordering: one worker runs due jobs oldest first
        later = now + step
        subscribers = pipeline.load_subscribers(self.config, self.store, now)
        for slot, members in slots_for(subscribers).items():
            missed = missed_digest(slot, members, self.config, self.store, now)
            if missed is not None:
                log.info(
                    "digest_catch_up job=%s slot_time=%s subscribers=%d",
                    slot.job_id,
                    missed.isoformat(),
                    len(members),
                )
                first[slot.job_id] = later
                later += step
        last = self.store.last_job_runs().get(RETENTION_JOB)
        if last is None or last.result != "ok" or now - last.started > timedelta(days=1):
            first[RETENTION_JOB] = later
        return first

    def _on_event(self, event: JobEvent) -> None:
        """Log and record every failed, missed or skipped run; track when the worker is idle."""
        code = event.code
        try:
            if code == EVENT_JOB_ERROR:
                self._record_failure(event)
            elif code == EVENT_JOB_MISSED:
                scheduled: datetime = event.scheduled_run_time
                log.warning("job_missed job=%s scheduled=%s", event.job_id, scheduled.isoformat())
                self.store.record_job_run(
                    event.job_id,
                    None,
                    self.clock(),
                    "missed",
                    error=f"due at {scheduled.isoformat()}, started too late (misfire grace)",
                )
            elif code == EVENT_JOB_MAX_INSTANCES:
                log.warning("job_skipped job=%s reason=previous_run_still_running", event.job_id)
                self.store.record_job_run(
                    event.job_id, None, self.clock(), "skipped", error="previous run still running"
                )
        except (SQLAlchemyError, NewsdeskError) as error:
            log.error("job_event_not_recorded job=%s error=%s", event.job_id, quote(error))
        finally:
            if code in (EVENT_JOB_EXECUTED, EVENT_JOB_ERROR):
                self.runner.ended()
            if code & (
                EVENT_JOB_EXECUTED
                | EVENT_JOB_ERROR
                | EVENT_JOB_MISSED
                | EVENT_JOB_SUBMITTED
                | EVENT_JOB_ADDED
                | EVENT_JOB_REMOVED
                | EVENT_JOB_MODIFIED
            ):
                self._dirty = True
            if code in (EVENT_JOB_EXECUTED, EVENT_JOB_ERROR, EVENT_JOB_MISSED):
                self._wake()  # publish the job's new next run now, not at the next tick

    def _record_failure(self, event: Any) -> None:
        failure = event.exception
        if isinstance(failure, JobFailed):
            log.error("job_failed job=%s error=%s", failure.job_id, quote(failure.cause))
            self.store.finish_job_run(
                failure.run_id, self.clock(), "error", str(failure.cause), failure.detail
            )
        else:  # failed before its run was recorded (e.g. the database was down)
            log.error("job_failed job=%s error=%s", event.job_id, quote(failure))
            self.store.record_job_run(event.job_id, None, self.clock(), "error", str(failure))

    def _publish_schedule(self) -> None:
        """Write each job's next run where `newsdesk status` (another process) reads it."""
        now = self.clock()
        rows = [
            ScheduledJob(
                job.id,
                job.name,
                self.specs[job.id].key if job.id in self.specs else str(job.trigger),
                getattr(job, "next_run_time", None),
                now,
            )
            for job in self.scheduler.get_jobs()
        ]
        self.store.save_job_schedule(rows)

    # Life ------------------------------------------------------------------------------

    def serve(self) -> int:
        """Start the jobs and loop until a stop signal; return the exit status."""
        now = self.clock()
        interrupted = self.store.interrupt_unfinished_runs(now)
        if interrupted:
            log.warning("job_runs_interrupted count=%d", interrupted)
        subscribers = pipeline.load_subscribers(self.config, self.store, now)
        specs = plan(self.config, subscribers, self.jobs, self.jobs.imported_sources())
        self._apply(specs, self._first_runs(now))
        self.scheduler.start()
        try:
            self._publish_schedule()
            log.info(
                "daemon_started pid=%d host=%s jobs=%d config=%s",
                os.getpid(),
                socket.gethostname(),
                len(self.specs),
                quote(self.config.source_name),
            )
            self.notifier.ready(f"running {len(self.specs)} jobs")
            self._loop()
        finally:
            self._stop()
        return self.exit_code

    def _loop(self) -> None:
        beat_next = watchdog_next = 0.0
        slots_next = time.monotonic() + SLOT_REFRESH_SECONDS
        while self.signals.stop is None:
            if self.signals.reload:
                self.signals.reload = False
                self._reload()
            beat_every = min(15.0, self.config.schedule.lock_stale_seconds / 4)
            moment = time.monotonic()
            if moment >= beat_next:
                beat_next = moment + beat_every
                if not self._heartbeat():
                    self.exit_code = 1
                    return
                # Wake the scheduler to look at the wall clock again, so a clock jump forward
                # makes due jobs run within a beat rather than after the old wait.
                self.scheduler.wakeup()
                self._dirty = True
            if moment >= slots_next:
                slots_next = moment + SLOT_REFRESH_SECONDS
                self._refresh_slots()
            if self._dirty:
                self._dirty = False
                try:
                    self._publish_schedule()
                except SQLAlchemyError as error:
                    log.warning("schedule_not_published error=%s", quote(error))
            watchdog_every = self.notifier.watchdog_interval
            if watchdog_every is not None and moment >= watchdog_next and self.scheduler.running:
                self.notifier.watchdog()
                watchdog_next = moment + watchdog_every
            self._sleep(min(beat_every, watchdog_every or MAX_TICK_SECONDS, MAX_TICK_SECONDS))

    def _heartbeat(self) -> bool:
        try:
            held = self.lock.heartbeat(self.clock())
        except SQLAlchemyError as error:
            log.warning("lock_heartbeat_failed error=%s", quote(error))
            return True  # the database may come back; losing the lock is detected then
        if not held:
            log.error(
                "lock_lost reason=another_daemon_took_over_the_database action=stopping "
                "hint=check_that_only_one_daemon_runs_per_database"
            )
        return held

    def _refresh_slots(self) -> None:
        """Subscribers added or changed in the database may need a new send slot."""
        try:
            subscribers = pipeline.load_subscribers(self.config, self.store, self.clock())
            specs = plan(self.config, subscribers, self.jobs, self.jobs.imported_sources())
        except (SQLAlchemyError, NewsdeskError) as error:
            log.warning("slots_not_refreshed error=%s", quote(error))
            return
        if {s.job_id: s.key for s in specs} != {k: s.key for k, s in self.specs.items()}:
            self._apply(specs)

    def _reload(self) -> None:
        """SIGHUP: read the config again and reschedule; a bad config keeps the old one."""
        self.notifier.reloading()
        if self.config_path is None:
            log.warning("reload_ignored reason=no_config_file")
            self.notifier.ready("running")
            return
        try:
            config = load_config(self.config_path)
            if config.database_url() != self.config.database_url():
                log.warning("reload_kept_database reason=restart_the_daemon_to_change_databases")
            subscribers = pipeline.load_subscribers(config, self.store, self.clock())
            specs = plan(config, subscribers, self.jobs, self.jobs.imported_sources())
        except (NewsdeskError, SQLAlchemyError) as error:
            log.error("reload_failed error=%s action=kept_previous_config", quote(error))
            self.notifier.ready("running (reload failed)")
            return
        self.config = config
        self.jobs.reconfigure(config)
        self._apply(specs)
        log.info("daemon_reloaded jobs=%d", len(self.specs))
        self.notifier.ready(f"running {len(self.specs)} jobs")

    def _stop(self) -> None:
        """Let the running job finish (up to [schedule] stop_timeout_seconds), start no more."""
        self.notifier.stopping()
        log.info("daemon_stopping signal=%s", self.signals.stop or "none")
        self.runner.stop_accepting()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        timeout = self.config.schedule.stop_timeout_seconds
        if not self.runner.wait_idle(timeout):
            log.warning(
                "stop_timeout job=%s timeout=%g action=abandoned", self.runner.current, timeout
            )
            self.abandoned = True


def _grace(seconds: float) -> int:
    """APScheduler wants a positive whole number of seconds."""
    return max(1, round(seconds))


def run(config: Config, config_path: Path | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT, then stop cleanly; return the exit status."""
    signals = Signals()
    signals.install()  # first, so a stop during start-up is still a clean stop
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a daemon reports what it does; -vv still gives debug
    # Our own job_* lines say what APScheduler would, as key=value: keep its errors only.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
    store = Store.open(config.database_url())
    try:
        lock = acquire(store, _now(), timedelta(seconds=config.schedule.lock_stale_seconds))
    except NewsdeskError:
        store.close()
        raise
    daemon = Daemon(config, config_path, store, lock, Notifier(), signals)
    try:
        code = daemon.serve()
    finally:
        try:
            lock.release()
        except SQLAlchemyError as error:
            log.warning("lock_not_released error=%s", quote(error))
        store.close()
    log.info("daemon_stopped exit=%d", code)
    if daemon.abandoned:
        # The running job did not finish in time; its worker thread would hold up the exit.
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(code)
    signals.close()
    return code

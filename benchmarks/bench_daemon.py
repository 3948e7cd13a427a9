"""Daemon start-up and status figures for many subscribers: slot planning, catch-up, status.

    python benchmarks/bench_daemon.py [--subscribers N]

Makes N subscribers spread over send times and time zones, a send ledger where half of them
already got today's digest, and times what the daemon does at start (plan the jobs, decide the
catch-ups from the job history and the ledger) and what `newsdesk status` does. Real SQLite in
a temp folder; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk.config import parse_config  # noqa: E402
from newsdesk.digest import period_key  # noqa: E402
from newsdesk.jobs import Jobs, missed_digest, plan, slots_for  # noqa: E402
from newsdesk.lock import acquire  # noqa: E402
from newsdesk.models import Subscriber  # noqa: E402
from newsdesk.status import collect  # noqa: E402
from newsdesk.store import Store  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
TIMES = tuple(f"{hour:02d}:{minute:02d}" for hour in range(5, 10) for minute in (0, 30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    args = parser.parse_args()
    subscribers = [
        Subscriber(
            f"reader{i}@example.org",
            timezone=ZONES[i % len(ZONES)],
            time=TIMES[(i // len(ZONES)) % len(TIMES)],
            frequency="weekly" if i % 10 == 0 else "daily",
        )
        for i in range(args.subscribers)
    ]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "templates").symlink_to(REPO / "templates")
        config = parse_config({}, root=root)
        config = replace(config, subscribers=tuple(subscribers))
        store = Store.open(f"sqlite:///{root / 'newsdesk.db'}")
        for subscriber in subscribers[::2]:
            store.record_delivery(
                period_key(subscriber, NOW), subscriber.email, "sent", "<id@x>", 5, NOW
            )

        started = time.perf_counter()
        slots = slots_for(subscribers)
        specs = plan(config, subscribers, Jobs(config, store))
        planned = time.perf_counter() - started

        started = time.perf_counter()
        caught = [
            slot
            for slot, members in slots.items()
            if missed_digest(slot, members, config, store, NOW) is not None
        ]
        catch_up = time.perf_counter() - started

        acquire(store, NOW, timedelta(seconds=60))
        started = time.perf_counter()
        report = collect(config, store, NOW)
        status_time = time.perf_counter() - started
        store.close()

    print(f"subscribers: {args.subscribers}, send slots: {len(slots)}, jobs: {len(specs)}")
    print(f"plan jobs: {planned * 1000:.1f} ms")
    print(f"catch-up decision at start: {catch_up * 1000:.1f} ms ({len(caught)} slots to send)")
    print(
        f"status: {status_time * 1000:.1f} ms "
        f"({report.pending_digests} digests pending this period)"
    )


if __name__ == "__main__":
    main()

"""Planning the daemon's jobs: send slots, fire times across DST, catch-up, retention."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from test_store import make_article

from newsdesk.config import Config, load_config, parse_config
from newsdesk.jobs import (
    Jobs,
    Slot,
    fire_times,
    last_fire,
    missed_digest,
    plan,
    slot_of,
    slots_for,
)
from newsdesk.models import Subscriber
from newsdesk.store import ArticleFilter, Store

ADA = Subscriber("ada@example.org", timezone="Europe/Paris", time="07:00")
BEN = Subscriber("ben@example.org", timezone="Europe/Paris", time="07:00")
CLEO = Subscriber("cleo@example.org", timezone="America/New_York", time="07:00")
DAN = Subscriber("dan@example.org", timezone="Europe/Paris", time="07:00", frequency="weekly")


def config(schedule: dict[str, Any] | None = None) -> Config:
    return parse_config({"schedule": schedule or {}}, root=Path("."))


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'test.db'}")
    yield opened
    opened.close()


def test_subscribers_are_grouped_into_one_slot_per_time_zone_and_frequency() -> None:
    slots = slots_for([ADA, CLEO, BEN, DAN])
    assert [slot.job_id for slot in slots] == [
        "digest:daily:07:00:America/New_York",
        "digest:daily:07:00:Europe/Paris",
        "digest:weekly:07:00:Europe/Paris",
    ]
    assert slots[slot_of(ADA)] == [ADA, BEN]


def test_a_slot_fires_at_local_time_across_the_dst_change() -> None:
    trigger = slot_of(ADA).trigger(config())
    times = fire_times(
        trigger, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, 23, tzinfo=UTC)
    )
    # Paris moves from UTC+1 to UTC+2 on Sunday 29 March 2026: 07:00 stays 07:00 locally.
    assert [t.astimezone(UTC).hour for t in times] == [6, 5, 5]
    assert all(t.hour == 7 for t in times)


def test_daily_slots_keep_to_digest_days_and_weekly_ones_to_weekly_day() -> None:
    cfg = config({"digest_days": "mon-fri", "weekly_day": "sun"})
    week = (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))  # Mon-Mon
    daily = fire_times(slot_of(ADA).trigger(cfg), *week)
    assert [t.strftime("%a") for t in daily] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    weekly = fire_times(slot_of(DAN).trigger(cfg), *week)
    assert [t.strftime("%a %d") for t in weekly] == ["Sun 29"]


def test_last_fire_looks_back_only_as_far_as_the_window() -> None:
    trigger = Slot("daily", "07:00", "UTC").trigger(config())
    now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert last_fire(trigger, now, timedelta(hours=6)) == datetime(2026, 11, 23, 7, tzinfo=UTC)
    assert last_fire(trigger, now, timedelta(hours=2)) is None


def test_the_plan_has_an_ingest_a_digest_per_slot_and_retention(store: Store) -> None:
    cfg = config({"ingest_every_seconds": 90})
    specs = plan(cfg, [ADA, BEN, CLEO], Jobs(cfg, store))
    assert [(s.job_id, s.key) for s in specs] == [
        ("ingest:seeds", "every 90s"),
        ("digest:daily:07:00:America/New_York", "mon-sun 07:00 America/New_York"),
        ("digest:daily:07:00:Europe/Paris", "mon-sun 07:00 Europe/Paris"),
        ("retention", "daily 03:30 UTC"),
    ]
    digest = specs[1]
    assert digest.misfire_grace_seconds == 6 * 3600
    assert digest.scheduled is not None
    assert digest.scheduled(datetime(2026, 11, 23, 13, tzinfo=UTC)) == datetime(
        2026, 11, 23, 12, tzinfo=UTC
    )  # 07:00 in New York


class TestCatchUp:
    slot = Slot("daily", "07:00", "UTC")
    members = (Subscriber("ada@example.org", time="07:00"), Subscriber("ben@example.org"))
    now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    fire = datetime(2026, 11, 23, 7, tzinfo=UTC)

    def missed(self, store: Store, cfg: Config | None = None, now: datetime | None = None) -> Any:
        return missed_digest(self.slot, self.members, cfg or config(), store, now or self.now)

    def test_a_slot_missed_within_the_grace_period_is_caught_up(self, store: Store) -> None:
        assert self.missed(store) == self.fire

    def test_not_beyond_the_grace_period_nor_with_grace_zero(self, store: Store) -> None:
        assert self.missed(store, now=self.fire + timedelta(hours=6, seconds=1)) is None
        assert self.missed(store, cfg=config({"digest_grace_hours": 0})) is None

    def test_not_when_the_ledger_shows_everyone_served(self, store: Store) -> None:
        store.record_delivery("2026-11-23", "ada@example.org", "sent", "<a@x>", 3, self.fire)
        assert self.missed(store) == self.fire  # ben still waits
        store.record_delivery("2026-11-23", "ben@example.org", "sending", "<b@x>", 3, self.fire)
        assert self.missed(store) == self.fire  # in flight when the daemon died
        store.record_delivery("2026-11-23", "ben@example.org", "sent", "<b@x>", 3, self.fire)
        assert self.missed(store) is None

    def test_not_when_the_slot_run_finished_cleanly(self, store: Store) -> None:
        run = store.start_job_run(self.slot.job_id, self.fire, self.fire)
        assert self.missed(store) == self.fire  # started, never finished: killed
        store.finish_job_run(run, self.fire + timedelta(seconds=3), "ok")
        assert self.missed(store) is None


def test_retention_drops_old_articles_and_rebuilds(workspace: Path, store: Store) -> None:
    cfg = load_config(workspace / "newsdesk.toml")
    old = replace(make_article("old", 24 * 100, ()), published=NOW - timedelta(days=100))
    fresh_import = replace(make_article("archive", 0, ()), published=NOW - timedelta(days=200))
    recent = make_article("recent", 2, ())
    store.save_articles([old], NOW - timedelta(days=100))
    store.save_articles([fresh_import, recent], NOW)
    detail = Jobs(cfg, store).retention(NOW)
    assert detail.startswith("articles_deleted=1 ")
    # An old article ingested today is kept for the retention period before it goes.
    assert {a.id for a in store.articles(ArticleFilter())} == {"archive", "recent"}
    assert (workspace / "feeds" / "all.rss").exists()

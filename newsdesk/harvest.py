"""Web sources: which are due, fetching them, reading what came back, and their next state.

The network work is `fetch.fetch_all`; the reading is `sources.feeds`. This module decides what
to ask for (conditional GET from the stored state, only sources that are due), turns each
response into raw entries or an error, completes short entries from their article pages when
the source asks for it, and computes the state each source is left in. It never touches the
database: the pipeline passes states in and writes the new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from newsdesk.errors import InputError
from newsdesk.fetch import Fetched, Limits, Request, fetch_all, retry_time
from newsdesk.models import RawEntry
from newsdesk.sources.feeds import (
    detect_kind,
    is_short,
    page_blocks,
    parse_article_page,
    parse_feed,
)
from newsdesk.store import SourceState

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class WebSource:
    """A feed or page to ingest: from the config, an OPML import, or the command line."""

    name: str
    url: str
    kind: str = ""  # feed | page | "" (detect)
    language: str | None = None
    countries: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    interval: timedelta = timedelta(minutes=30)
    full_text: bool = False


@dataclass
class Harvest:
    """What one source yielded this run."""

    source: WebSource
    fetched: Fetched | None
    kind: str = ""
    title: str = ""
    entries: list[RawEntry] = field(default_factory=list)
    error: str = ""  # why nothing could be read; "" when the fetch worked (or had nothing new)
    problems: list[str] = field(default_factory=list)  # forgiven: the entries were still read


def is_due(state: SourceState | None, now: datetime) -> bool:
    """Never fetched, or its next fetch (or retry) time has come; a gone source never is."""
    if state is None:
        return True
    if not state.enabled:
        return False
    return state.next_fetch is None or state.next_fetch <= now


def collect(
    sources: Sequence[WebSource],
    states: Mapping[str, SourceState],
    limits: Limits,
) -> Iterator[Harvest]:
    """Fetch and read every source; one Harvest per source, in the order fetches finish."""
    by_name = {source.name: source for source in sources}
    requests = []
    for source in sources:
        state = states.get(source.name)
        url = state.url if state is not None and state.url else source.url
        requests.append(
            Request(
                key=source.name,
                url=url,
                etag=state.etag if state is not None else None,
                last_modified=state.last_modified if state is not None else None,
            )
        )
    wanting_pages: list[Harvest] = []
    for fetched in fetch_all(requests, limits):
        harvest = read(by_name[fetched.request.key], fetched)
        if harvest.source.full_text and any(is_short(e) for e in harvest.entries):
            wanting_pages.append(harvest)
        else:
            yield harvest
    if wanting_pages:
        yield from complete_from_pages(wanting_pages, limits)


def read(source: WebSource, fetched: Fetched) -> Harvest:
    """A fetch result turned into entries (or the error that prevented it)."""
    harvest = Harvest(source=source, fetched=fetched, kind=source.kind)
    if fetched.outcome != "ok":
        harvest.error = fetched.error if fetched.outcome != "not_modified" else ""
        return harvest
    kind = source.kind or detect_kind(fetched.body, fetched.content_type)
    harvest.kind = kind
    try:
        if kind == "feed":
            parsed = parse_feed(
                fetched.body, fetched.url, source.name, fetched.content_type, source.language
            )
            harvest.title = parsed.title
            harvest.entries = list(parsed.entries)
            harvest.problems.extend(parsed.problems)
        else:
            entry, problem = parse_article_page(
                fetched.body, fetched.url, source.name, fetched.content_type, source.language
            )
            harvest.title = entry.title or ""
            harvest.entries = [entry]
            if problem:
                harvest.problems.append(problem)
    except InputError as error:
        harvest.error = error.reason
    return harvest


def complete_from_pages(harvests: Sequence[Harvest], limits: Limits) -> Iterator[Harvest]:
    """Fetch the article page of every short entry and use its text when it has more."""
    requests: list[Request] = []
    seen: set[str] = set()
    for harvest in harvests:
        for entry in harvest.entries:
            if is_short(entry) and entry.url and entry.url not in seen:
                seen.add(entry.url)
                requests.append(Request(key=entry.url, url=entry.url))
    pages: dict[str, Fetched] = {f.request.key: f for f in fetch_all(requests, limits)}
    for harvest in harvests:
        completed: list[RawEntry] = []
        failures = 0
        for entry in harvest.entries:
            page = pages.get(entry.url or "") if is_short(entry) else None
            if page is None:
                completed.append(entry)
                continue
            blocks = page_blocks(page.body, page.url, page.content_type) if page.body else ()
            if page.outcome != "ok" or not blocks:
                failures += 1
                completed.append(entry)
                continue
            if sum(len(b.text) for b in blocks) > sum(len(b.text) for b in entry.blocks):
                entry = replace(entry, blocks=blocks)
            completed.append(entry)
        if failures:
            harvest.problems.append(
                f"{failures} article pages could not be read; kept the feed's summary"
            )
        harvest.entries = completed
        yield harvest


def backoff(error_count: int, interval: timedelta, ceiling: timedelta) -> timedelta:
    """How long a failing source rests: doubling from 5 minutes, never less than its interval."""
    doubling: timedelta = BACKOFF_BASE * (2 ** min(max(error_count - 1, 0), 20))
    return max(interval, min(doubling, ceiling))


def next_state(
    harvest: Harvest,
    previous: SourceState | None,
    items: int,
    now: datetime,
    max_backoff: timedelta,
) -> dict[str, Any]:
    """The `sources` row changes after this harvest (`items`: entries that became articles)."""
    fetched = harvest.fetched
    errors = previous.error_count if previous is not None else 0
    interval = harvest.source.interval
    changes: dict[str, Any] = {"last_fetch": now}
    if fetched is not None:
        changes["http_status"] = fetched.status
        if fetched.moved_to:
            changes["url"] = fetched.moved_to
            log.info("source_moved source=%s url=%s", harvest.source.name, fetched.moved_to)
    if harvest.kind:
        changes["kind"] = harvest.kind
    if harvest.title:
        changes["title"] = harvest.title[:300]
    outcome = fetched.outcome if fetched is not None else "ok"
    if outcome == "gone":
        changes.update(enabled=False, status="gone", last_error=harvest.error, next_fetch=None)
        changes["error_count"] = errors + 1
    elif outcome == "retry_later":
        errors += 1
        wait_until = retry_time(fetched.retry_after if fetched else None, now)
        changes.update(
            status="retry later",
            error_count=errors,
            last_error=harvest.error,
            next_fetch=wait_until or now + backoff(errors, interval, max_backoff),
        )
    elif harvest.error:
        errors += 1
        changes.update(
            status="error",
            error_count=errors,
            last_error=harvest.error,
            next_fetch=now + backoff(errors, interval, max_backoff),
        )
    elif outcome == "not_modified":
        changes.update(status="not modified", error_count=0, next_fetch=now + interval)
    else:
        changes.update(
            status="warning" if harvest.problems else "ok",
            items=items,
            error_count=0,
            last_error="; ".join(harvest.problems)[:2000],
            next_fetch=now + interval,
        )
        if fetched is not None:
            changes["etag"] = fetched.etag
            changes["last_modified"] = fetched.last_modified
    return changes

"""The recipe: ingest, build, digest. Orchestration only; the modules it calls do the work."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

from jinja2 import Environment

from newsdesk import feedsite, websub
from newsdesk.config import Config, SourceConfig
from newsdesk.digest import (
    LOOKBACK,
    DigestSettings,
    period_key,
    render_digest,
    settings_from_config,
    subscriber_filter,
    template_environment,
)
from newsdesk.errors import DeliveryError, InputError
from newsdesk.fetch import Limits
from newsdesk.harvest import Harvest, WebSource, collect, is_due, next_state
from newsdesk.mailer import Outbox, Outcome, SmtpBatch, outbox_path
from newsdesk.models import Article, Subscriber
from newsdesk.normalize import normalize
from newsdesk.signing import signer_from_config
from newsdesk.sources.feeds import source_name_for
from newsdesk.sources.files import discover, read_file
from newsdesk.sources.opml import read_opml
from newsdesk.store import SourceState, Store, StoryResult
from newsdesk.subscribers import SubscriberInvalid, make_subscriber
from newsdesk.tagging.hints import apply_hints
from newsdesk.tagging.tagger import Tagger
from newsdesk.tokens import unsubscribe_secret

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)
    merged: int = 0  # stories already stored from another source: linked, not stored twice
    sources: int = 0  # web sources and folders fetched
    not_modified: int = 0  # of which answered 304 (nothing new)
    warnings: list[str] = field(default_factory=list)  # read, but something was forgiven

    def absorb(self, other: IngestReport) -> None:
        """Add another report's counts to this one."""
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.merged += other.merged
        self.sources += other.sources
        self.not_modified += other.not_modified
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)


@dataclass
class BuildReport:
    feeds: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    directory: Path = Path()
    files_removed: int = 0
    hub_notified: bool | None = None  # None: no hub configured, or nothing changed


@dataclass
class DigestReport:
    delivered: list[str] = field(default_factory=list)  # outbox paths or "smtp:<address>"
    already_sent: int = 0
    failed_before: int = 0
    nothing_new: int = 0
    errors: list[str] = field(default_factory=list)


def make_tagger(config: Config) -> Tagger:
    return Tagger(
        config.tagging.min_city_population,
        config.cache_dir,
        custom_regions=config.regions,
        custom_topics=config.topics,
    )


def ingest(
    config: Config,
    store: Store,
    tagger: Tagger,
    paths: Iterable[Path],
    now: datetime,
    source: SourceConfig | None = None,
) -> IngestReport:
    """Read, normalize, tag and store every input; a bad input is reported and skipped."""
    report = IngestReport()
    articles: dict[str, Article] = {}
    for path in discover(paths):
        for result in read_file(path, config.root, config.ingest.max_file_bytes):
            if isinstance(result, InputError):
                report.errors.append(result)
                log.warning("input_rejected origin=%s reason=%s", result.origin, result.reason)
                continue
            try:
                article = normalize(
                    result, now, config.ingest.languages, config.ingest.default_language
                )
            except InputError as error:
                report.errors.append(error)
                log.warning("input_rejected origin=%s reason=%s", error.origin, error.reason)
                continue
            tagged = tagger.tag(article)
            if source is not None:
                tagged = apply_hints(tagged, source.name, source.countries, source.topics)
            articles[article.id] = tagged
    label = source.name if source is not None else None
    saved = store.save_stories([(a, label or a.source) for a in articles.values()], now)
    report.added, report.updated, report.unchanged = saved.added, saved.updated, saved.unchanged
    report.merged = saved.merged
    log.info(
        "ingest_done added=%d updated=%d unchanged=%d merged=%d failed=%d",
        saved.added,
        saved.updated,
        saved.unchanged,
        saved.merged,
        len(report.errors),
    )
    return report


def ingest_all(
    config: Config, store: Store, tagger: Tagger, paths: Iterable[Path], now: datetime
) -> IngestReport:
    """The files and folders in `paths`, then every configured source that is due."""
    report = ingest(config, store, tagger, paths, now)
    report.absorb(ingest_sources(config, store, tagger, now))
    return report


def fetch_limits(config: Config) -> Limits:
    fetch = config.fetch
    return Limits(
        connect_timeout=fetch.connect_timeout_seconds,
        read_timeout=fetch.read_timeout_seconds,
        total_timeout=fetch.total_timeout_seconds,
        max_bytes=fetch.max_body_bytes,
        max_redirects=fetch.max_redirects,
        concurrency=fetch.concurrency,
        per_host=fetch.per_host,
    )


def web_sources(config: Config, store: Store, now: datetime) -> list[WebSource]:
    """The enabled web sources of the config, then those imported from OPML, registered."""
    default_interval = timedelta(seconds=config.schedule.ingest_every_seconds)
    found: list[WebSource] = []
    for entry in config.sources:
        if not entry.url:
            continue
        store.register_source(entry.name, "config", entry.url, entry.kind, "", now)
        if not entry.enabled:
            continue
        minutes = entry.fetch_every_minutes
        found.append(
            WebSource(
                name=entry.name,
                url=entry.url,
                kind=entry.kind,
                language=entry.language or None,
                countries=entry.countries,
                topics=entry.topics,
                interval=timedelta(minutes=minutes) if minutes else default_interval,
                full_text=entry.full_text,
            )
        )
    configured = {entry.name for entry in config.sources}
    for state in store.source_states().values():
        if state.origin == "opml" and state.name not in configured:
            found.append(
                WebSource(
                    name=state.name,
                    url=state.configured_url,
                    kind=state.kind,
                    interval=default_interval,
                )
            )
    return found


def ingest_sources(
    config: Config, store: Store, tagger: Tagger, now: datetime, due_only: bool = True
) -> IngestReport:
    """Fetch every due web source and read every due folder source; each records its state."""
    report = IngestReport()
    for folder in config.sources:
        if folder.path and folder.enabled:
            report.absorb(_ingest_folder(config, store, tagger, folder, now, due_only))
    sources = web_sources(config, store, now)
    states = store.source_states()
    due = [s for s in sources if not due_only or is_due(states.get(s.name), now)]
    if not due:
        return report
    harvests, saved = _fetch_and_save(config, store, tagger, due, states, now, report)
    max_backoff = timedelta(hours=config.fetch.max_backoff_hours)
    for harvest, articles in harvests:
        name = harvest.source.name
        changes = next_state(harvest, states.get(name), len(articles), now, max_backoff)
        store.update_source(name, changes, now)
    log.info(
        "sources_done fetched=%d not_modified=%d added=%d merged=%d failed=%d",
        report.sources,
        report.not_modified,
        saved.added,
        saved.merged,
        len(report.errors),
    )
    return report


def ingest_urls(
    config: Config, store: Store, tagger: Tagger, urls: Sequence[str], now: datetime
) -> IngestReport:
    """Ingest feed or page URLs once, as given on the command line; no source state is kept."""
    report = IngestReport()
    names: list[str] = []
    sources: list[WebSource] = []
    for url in urls:
        name = source_name_for(url, names)
        names.append(name)
        sources.append(WebSource(name=name, url=url))
    _fetch_and_save(config, store, tagger, sources, {}, now, report)
    return report


def _fetch_and_save(
    config: Config,
    store: Store,
    tagger: Tagger,
    sources: Sequence[WebSource],
    states: Mapping[str, SourceState],
    now: datetime,
    report: IngestReport,
) -> tuple[list[tuple[Harvest, list[Article]]], StoryResult]:
    """Fetch `sources`, normalize and tag what came back, and store each story once."""
    harvests = [
        (harvest, _harvest_articles(config, tagger, harvest, now, report))
        for harvest in collect(sources, states, fetch_limits(config))
    ]
    # Fetches finish in any order; save in config order so the same source always wins a merge.
    order = {source.name: index for index, source in enumerate(sources)}
    harvests.sort(key=lambda pair: order[pair[0].source.name])
    stories = [(a, harvest.source.name) for harvest, articles in harvests for a in articles]
    saved = store.save_stories(stories, now)
    report.added += saved.added
    report.updated += saved.updated
    report.unchanged += saved.unchanged
    report.merged += saved.merged
    return harvests, saved


def _harvest_articles(
    config: Config, tagger: Tagger, harvest: Harvest, now: datetime, report: IngestReport
) -> list[Article]:
    """Normalize and tag one source's entries; record its error or what was forgiven."""
    source = harvest.source
    report.sources += 1
    if harvest.fetched is not None and harvest.fetched.outcome == "not_modified":
        report.not_modified += 1
    if harvest.error:
        report.errors.append(InputError(f"source {source.name!r} ({source.url})", harvest.error))
        log.warning("source_failed source=%s error=%s", source.name, harvest.error)
        return []
    articles: dict[str, Article] = {}
    for entry in harvest.entries:
        try:
            article = normalize(entry, now, config.ingest.languages, config.ingest.default_language)
        except InputError as error:
            harvest.problems.append(f"{error.origin}: {error.reason}")
            continue
        tagged = apply_hints(tagger.tag(article), source.name, source.countries, source.topics)
        articles.setdefault(tagged.id, tagged)
    for problem in harvest.problems:
        report.warnings.append(f"source {source.name!r}: {problem}")
        log.warning("source_problem source=%s problem=%s", source.name, problem)
    return list(articles.values())


def _ingest_folder(
    config: Config,
    store: Store,
    tagger: Tagger,
    folder: SourceConfig,
    now: datetime,
    due_only: bool,
) -> IngestReport:
    path = config.path(folder.path)
    store.register_source(folder.name, "config", str(folder.path), "folder", "", now)
    state = store.source_states().get(folder.name)
    if due_only and not is_due(state, now):
        return IngestReport()
    report = ingest(config, store, tagger, [path], now, source=folder)
    report.sources = 1
    every = (
        timedelta(minutes=folder.fetch_every_minutes)
        if folder.fetch_every_minutes
        else timedelta(seconds=config.schedule.ingest_every_seconds)
    )
    failed = not path.is_dir()
    store.update_source(
        folder.name,
        {
            "last_fetch": now,
            "kind": "folder",
            "status": "error" if failed else ("warning" if report.errors else "ok"),
            "items": report.added + report.updated + report.unchanged + report.merged,
            "error_count": (state.error_count + 1 if state and failed else 0),
            "last_error": f"folder {path} not found"
            if failed
            else "; ".join(str(e) for e in report.errors[:5])[:2000],
            "next_fetch": now + every,
        },
        now,
    )
    if failed:
        report.errors.append(
            InputError(f"source {folder.name!r}", f"folder {path} not found; fix its path")
        )
    return report


def build(config: Config, store: Store, templates: Environment, now: datetime) -> BuildReport:
    """Bring feeds/ up to date (every feed in RSS, Atom and JSON Feed, the index, the OPML),
    rewriting only what changed; then tell the WebSub hub, if any, which feeds changed."""
    site = feedsite.build_site(config, store, templates, now)
    report = BuildReport(
        feeds=site.feeds,
        files_written=len(site.written),
        files_unchanged=site.unchanged,
        directory=site.directory,
        files_removed=len(site.removed),
    )
    if config.feeds.websub_hub and site.changed_urls:
        report.hub_notified = websub.publish(config.feeds.websub_hub, site.changed_urls)
    return report


def load_subscribers(config: Config, store: Store, now: datetime | None = None) -> list[Subscriber]:
    """Everyone who gets a digest: the database's active subscribers.

    The config's [[subscribers]] are a seed list, upserted first; a subscriber changed through
    the CLI or an import keeps those changes, and nobody who unsubscribed is resubscribed.
    """
    moment = now or datetime.now(UTC)  # callers with a clock of their own pass it
    for index, seed in enumerate(config.subscribers, start=1):
        try:
            checked = make_subscriber(
                seed.email,
                name=seed.name,
                regions=seed.regions,
                countries=seed.countries,
                topics=seed.topics,
                language=seed.language,
                frequency=seed.frequency,
                time=seed.time,
                timezone=seed.timezone,
                custom_regions=[region.name for region in config.regions],
            )
        except SubscriberInvalid as error:
            log.warning(
                "subscriber_seed_skipped source=%s index=%d error=%s",
                config.source_name,
                index,
                error,
            )
            continue
        store.upsert_subscriber(checked, "config", moment, keep_if_edited=True)
    return [record.subscriber for record in store.subscriber_records("active")]


@dataclass(frozen=True, slots=True)
class PendingDigest:
    """A rendered digest waiting for its turn; the bytes are compressed (10,000 fit in memory)."""

    subscriber: Subscriber
    period: str
    message_id: str
    article_ids: tuple[str, ...]
    compressed: bytes

    @property
    def raw(self) -> bytes:
        return zlib.decompress(self.compressed)


def digest_settings(config: Config, store: Store) -> DigestSettings:
    return settings_from_config(
        config, unsubscribe_secret(config, store), signer_from_config(config)
    )


def select_articles(
    store: Store, subscriber: Subscriber, period: str, now: datetime
) -> list[Article]:
    """Matching articles new since the subscriber's previous digest and in none of their others."""
    since = store.last_delivered(subscriber.email) or now - LOOKBACK[subscriber.frequency]
    return store.digest_articles(subscriber_filter(subscriber, since), subscriber.email, period)


def render_pending(
    store: Store,
    templates: Environment,
    settings: DigestSettings,
    subscribers: Iterable[Subscriber],
    now: datetime,
    report: DigestReport,
) -> list[PendingDigest]:
    """Render every due digest before anything is sent: a template error sends nothing."""
    pending: list[PendingDigest] = []
    for subscriber in subscribers:
        period = period_key(subscriber, now)
        entry = store.delivery(period, subscriber.email)
        if entry is not None and entry["status"] == "sent":
            report.already_sent += 1
            continue
        if entry is not None and entry["status"] == "failed":
            report.failed_before += 1  # a 5xx this period: not retried until the next one
            continue
        articles = select_articles(store, subscriber, period, now)
        if not articles:
            report.nothing_new += 1
            continue
        rendered = render_digest(articles, subscriber, templates, settings, now)
        pending.append(
            PendingDigest(
                subscriber,
                period,
                rendered.message_id,
                rendered.article_ids,
                zlib.compress(rendered.raw, 1),
            )
        )
    return pending


def digest(
    config: Config,
    store: Store,
    templates: Environment,
    subscribers: Iterable[Subscriber],
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
) -> DigestReport:
    """One digest per subscriber and period: render them all, then send through the ledger.

    The ledger row says "sending" (committed) before a message leaves and "sent" after the
    server accepted it, so after a crash only that one in-flight message can go out twice,
    with the same Message-ID; everything else is sent exactly once.
    """
    report = DigestReport()
    settings = digest_settings(config, store)
    pending = render_pending(store, templates, settings, subscribers, now, report)
    send_pending(config, store, pending, now, report, sleep)
    return report


def send_pending(
    config: Config,
    store: Store,
    pending: Sequence[PendingDigest],
    now: datetime,
    report: DigestReport,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Deliver rendered digests in order over one SMTP session (or into the outbox)."""
    if not pending:
        return
    envelope_sender = parseaddr(config.digest.sender)[1]
    transport: SmtpBatch | Outbox = (
        SmtpBatch(
            config.smtp,
            sleep,
            ca_file=config.path(config.smtp.ca_file) if config.smtp.ca_file else None,
        )
        if config.smtp is not None
        else Outbox(config.outbox_dir)
    )
    try:
        for item in pending:
            email = item.subscriber.email
            store.begin_delivery(item.period, email, item.message_id, item.article_ids, now)
            name = outbox_path(config.outbox_dir, item.period, email).name
            outcome = transport.deliver(item.raw, envelope_sender, email, name)
            _record_outcome(config, store, item, outcome, now, report)
    except DeliveryError as error:
        report.errors.append(str(error))
        log.error("digest_batch_stopped error=%s", error)
    finally:
        transport.close()


def _record_outcome(
    config: Config,
    store: Store,
    item: PendingDigest,
    outcome: Outcome,
    now: datetime,
    report: DigestReport,
) -> None:
    email = item.subscriber.email
    if outcome.status == "sent":
        store.finish_delivery(item.period, email, "sent", now)
        report.delivered.append(outcome.where)
        log.info(
            "digest_delivered email=%s period=%s articles=%d",
            email,
            item.period,
            len(item.article_ids),
        )
        return
    status = "failed" if outcome.status == "permanent" else "deferred"
    store.finish_delivery(
        item.period,
        email,
        status,
        now,
        outcome.detail,
        config.digest.max_permanent_failures,
    )
    kind = "refused" if status == "failed" else "deferred, will retry on the next run"
    report.errors.append(f"{email}: {kind}: {outcome.detail}")
    log.error("digest_failed email=%s status=%s error=%s", email, status, outcome.detail)


def templates_for(config: Config) -> Environment:
    return template_environment(config.templates_dir)


@dataclass
class OpmlReport:
    added: list[str] = field(default_factory=list)
    already_known: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def import_opml(config: Config, store: Store, path: Path, now: datetime) -> OpmlReport:
    """Add the feeds of an OPML subscription list as sources (kept in the database)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(str(path), f"cannot read file: {error.strerror}") from None
    subscriptions, problems = read_opml(data, str(path))
    report = OpmlReport(problems=problems)
    states = store.source_states()
    names = {*states, *(entry.name for entry in config.sources)}
    urls = {s.configured_url for s in states.values()} | {s.url for s in states.values()}
    urls |= {entry.url for entry in config.sources if entry.url}
    for subscription in subscriptions:
        if subscription.url in urls:
            report.already_known.append(subscription.url)
            continue
        name = source_name_for(subscription.url, names) if subscription.name in names else None
        name = name or subscription.name
        store.register_source(name, "opml", subscription.url, "feed", subscription.title, now)
        names.add(name)
        urls.add(subscription.url)
        report.added.append(name)
    log.info(
        "opml_imported file=%s added=%d known=%d problems=%d",
        path.name,
        len(report.added),
        len(report.already_known),
        len(report.problems),
    )
    return report


@dataclass(frozen=True)
class SourceRow:
    """One line of `newsdesk sources`: what the source is, and its state if it has one."""

    name: str
    origin: str
    kind: str
    url: str
    enabled: bool
    state: SourceState | None


def source_rows(config: Config, store: Store) -> list[SourceRow]:
    """Configured sources in config order, then imported ones by name."""
    states = store.source_states()
    rows: list[SourceRow] = []
    for entry in config.sources:
        state = states.get(entry.name)
        rows.append(
            SourceRow(
                name=entry.name,
                origin="config",
                kind=(state.kind if state and state.kind else entry.kind)
                or ("folder" if entry.path else ""),
                url=(state.url if state and entry.url else "") or entry.url or entry.path,
                enabled=entry.enabled and (state is None or state.enabled),
                state=state,
            )
        )
    configured = {entry.name for entry in config.sources}
    for state in states.values():
        if state.origin == "opml" and state.name not in configured:
            rows.append(SourceRow(state.name, "opml", state.kind, state.url, state.enabled, state))
    return rows

"""The recipe: ingest, build, digest. Orchestration only; the modules it calls do the work."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

from jinja2 import Environment

from newsdesk import feeds as feedlib
from newsdesk.config import Config
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
from newsdesk.mailer import Outbox, Outcome, SmtpBatch, outbox_path
from newsdesk.models import Article, Subscriber
from newsdesk.normalize import normalize
from newsdesk.publish import write_if_changed
from newsdesk.signing import signer_from_config
from newsdesk.sources.files import discover, read_file
from newsdesk.store import Store
from newsdesk.subscribers import SubscriberInvalid, make_subscriber
from newsdesk.tagging.tagger import Tagger
from newsdesk.tokens import unsubscribe_secret

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)


@dataclass
class BuildReport:
    feeds: int = 0
    files_written: int = 0
    files_unchanged: int = 0
    directory: Path = Path()


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
    config: Config, store: Store, tagger: Tagger, paths: Iterable[Path], now: datetime
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
            articles[article.id] = tagger.tag(article)
    saved = store.save_articles(list(articles.values()), now)
    report.added, report.updated, report.unchanged = saved.added, saved.updated, saved.unchanged
    log.info(
        "ingest_done added=%d updated=%d unchanged=%d failed=%d",
        saved.added,
        saved.updated,
        saved.unchanged,
        len(report.errors),
    )
    return report


def build(config: Config, store: Store, templates: Environment, now: datetime) -> BuildReport:
    """Write every feed in every format, the OPML list and the index; unchanged files stay."""
    out = config.feeds_dir
    base_url = config.feeds.base_url
    definitions = feedlib.feed_definitions(
        store.tag_counts(), config.feeds.title, config.feeds.min_country_articles
    )
    report = BuildReport(feeds=len(definitions), directory=out)
    rows: dict[str, list[dict[str, object]]] = {}
    for feed in definitions:
        articles = store.articles(feed.wanted, limit=config.feeds.item_limit)
        for fmt, extension in feedlib.FORMATS.items():
            content = feedlib.render(feed, articles, fmt, base_url, now)
            _count_write(report, write_if_changed(out / f"{feed.slug}.{extension}", content))
        rows.setdefault(feed.kind, []).append(
            {
                "title": feed.title,
                "rss": f"{feed.slug}.rss",
                "atom": f"{feed.slug}.atom",
                "count": len(articles),
                "latest": articles[0].title if articles else "",
            }
        )
    groups = [
        {"heading": feedlib.KIND_HEADINGS[kind], "rows": rows[kind]}
        for kind in feedlib.KIND_ORDER
        if kind in rows
    ]
    index = templates.get_template("index.html").render(
        title=config.feeds.title,
        description=config.feeds.description,
        groups=groups,
        discovery=[
            {"title": feed.title, "rss": f"{feed.slug}.rss", "atom": f"{feed.slug}.atom"}
            for feed in definitions
            if feed.kind in ("all", "region")
        ],
    )
    _count_write(report, write_if_changed(out / "index.html", index.encode("utf-8")))
    opml = feedlib.render_opml(definitions, base_url, config.feeds.title)
    _count_write(report, write_if_changed(out / "feeds.opml", opml))
    log.info(
        "build_done feeds=%d written=%d unchanged=%d",
        report.feeds,
        report.files_written,
        report.files_unchanged,
    )
    return report


def _count_write(report: BuildReport, written: bool) -> None:
    if written:
        report.files_written += 1
    else:
        report.files_unchanged += 1


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
        SmtpBatch(config.smtp, sleep) if config.smtp is not None else Outbox(config.outbox_dir)
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

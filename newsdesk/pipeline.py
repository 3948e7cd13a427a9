"""The recipe: ingest, build, digest. Orchestration only; the modules it calls do the work."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin

from jinja2 import Environment

from newsdesk import feedsite, websub
from newsdesk.config import Config
from newsdesk.digest import (
    LOOKBACK,
    period_key,
    render_digest,
    subscriber_filter,
    template_environment,
)
from newsdesk.errors import DeliveryError, InputError
from newsdesk.mailer import send_smtp, write_outbox
from newsdesk.models import Article, Subscriber
from newsdesk.normalize import normalize
from newsdesk.sources.files import discover, read_file
from newsdesk.store import Store
from newsdesk.tagging.tagger import Tagger

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
    files_removed: int = 0
    hub_notified: bool | None = None  # None: no hub configured, or nothing changed


@dataclass
class DigestReport:
    delivered: list[str] = field(default_factory=list)  # outbox paths or "smtp:<address>"
    already_sent: int = 0
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


def load_subscribers(config: Config, store: Store) -> list[Subscriber]:
    """Everyone who gets a digest: the subscribers declared in the config."""
    del store  # the database will hold subscribers too; config ones are the seed list
    return list(config.subscribers)


def digest(
    config: Config,
    store: Store,
    templates: Environment,
    subscribers: Iterable[Subscriber],
    now: datetime,
) -> DigestReport:
    """One digest per subscriber and period, recorded in the ledger so none goes out twice."""
    report = DigestReport()
    feeds_url = urljoin(config.feeds.base_url, "index.html")
    for subscriber in subscribers:
        period = period_key(subscriber, now)
        entry = store.delivery(period, subscriber.email)
        if entry is not None and entry["status"] == "sent":
            report.already_sent += 1
            continue
        since = store.last_delivered(subscriber.email) or now - LOOKBACK[subscriber.frequency]
        articles = store.articles(subscriber_filter(subscriber, since))
        if not articles:
            report.nothing_new += 1
            continue
        rendered = render_digest(
            articles,
            subscriber,
            templates,
            sender=config.digest.sender,
            site_title=config.feeds.title,
            feeds_url=feeds_url,
            max_articles=config.digest.max_articles,
            now=now,
        )
        store.record_delivery(
            period, subscriber.email, "sending", rendered.message_id, rendered.article_count, now
        )
        try:
            if config.smtp is not None:
                send_smtp(rendered.message, config.smtp)
                where = f"smtp:{subscriber.email}"
            else:
                where = str(
                    write_outbox(rendered.message, config.outbox_dir, period, subscriber.email)
                )
        except DeliveryError as error:
            store.record_delivery(
                period,
                subscriber.email,
                "failed",
                rendered.message_id,
                rendered.article_count,
                now,
                str(error),
            )
            report.errors.append(f"{subscriber.email}: {error}")
            log.error("digest_failed email=%s error=%s", subscriber.email, error)
            continue
        store.record_delivery(
            period, subscriber.email, "sent", rendered.message_id, rendered.article_count, now
        )
        report.delivered.append(where)
        log.info(
            "digest_delivered email=%s period=%s articles=%d",
            subscriber.email,
            period,
            rendered.article_count,
        )
    return report


def templates_for(config: Config) -> Environment:
    return template_environment(config.templates_dir)

"""The recipe: ingest, build, digest. Orchestration only; the modules it calls do the work."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin

from jinja2 import Environment

from newsdesk import feeds as feedlib
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
from newsdesk.publish import write_if_changed
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

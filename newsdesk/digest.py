"""Articles + a subscriber + templates -> one multipart email. Pure: nothing is sent here."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
from babel.dates import format_date
from babel.dates import format_datetime as babel_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from newsdesk.i18n import messages
from newsdesk.models import Article, Subscriber
from newsdesk.store import ArticleFilter
from newsdesk.tagging.custom import custom_code
from newsdesk.tagging.geography import countries
from newsdesk.tagging.taxonomy import top_level, topics

LOOKBACK = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class TopicGroup:
    label: str
    articles: tuple[Article, ...]


@dataclass(frozen=True, slots=True)
class RegionGroup:
    label: str
    topics: tuple[TopicGroup, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    period: str
    message_id: str
    subject: str
    html: str
    text: str
    message: EmailMessage
    article_count: int


def period_key(subscriber: Subscriber, now: datetime) -> str:
    """The digest period `now` falls in, in the subscriber's time zone: 2026-11-23 or 2026-W48."""
    local = now.astimezone(ZoneInfo(subscriber.timezone))
    if subscriber.frequency == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


def subscriber_filter(subscriber: Subscriber, ingested_after: datetime | None) -> ArticleFilter:
    """What the subscriber asked for; a region may be named by its M49 name or code."""
    table = countries().values()
    region_codes = {c.region_code: c.region for c in table} | {
        c.region: c.region_code for c in table
    }
    subregion_codes = {c.subregion: c.subregion_code for c in table}
    regions: list[str] = []
    subregions: list[str] = []
    for wanted in subscriber.regions:
        if wanted in subregion_codes:
            subregions.append(subregion_codes[wanted])
        elif wanted in subregion_codes.values():
            subregions.append(wanted)
        elif wanted in region_codes:
            regions.append(wanted if wanted.isdigit() else region_codes[wanted])
        else:  # not an M49 name: one of the operator's [[regions]]
            regions.append(custom_code(wanted))
    return ArticleFilter(
        countries=tuple(c.upper() for c in subscriber.countries),
        subregions=tuple(subregions),
        regions=tuple(regions),
        topics=subscriber.topics,
        ingested_after=ingested_after,
    )


def group_articles(articles: Sequence[Article], language: str) -> tuple[RegionGroup, ...]:
    """Region, then topic; each article once, under its strongest region and its primary topic."""
    words = messages(language)
    table = topics()
    buckets: dict[str, dict[str, list[Article]]] = {}
    for article in articles:
        region_tags = article.tags_of("region")
        region = region_tags[0].label if region_tags else words["elsewhere"]
        topic_tags = [
            t for t in article.tags_of("topic") if t.code in table and top_level(t.code) == t.code
        ]
        topic = (
            table[topic_tags[0].code].label(language)
            if topic_tags and topic_tags[0].code in table
            else words["other_topics"]
        )
        buckets.setdefault(region, {}).setdefault(topic, []).append(article)
    return tuple(
        RegionGroup(
            region, tuple(TopicGroup(t, tuple(items)) for t, items in sorted(by_topic.items()))
        )
        for region, by_topic in sorted(
            buckets.items(), key=lambda item: (item[0] == words["elsewhere"], item[0])
        )
    )


def message_id(subscriber: Subscriber, period: str, sender: str) -> str:
    """Stable per subscriber and period, so a resent digest is recognisably the same message."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "newsdesk.invalid"
    digest = hashlib.sha256(f"{subscriber.email.lower()}\x1f{period}".encode()).hexdigest()[:24]
    return f"<digest.{period}.{digest}@{domain}>"


def header_safe(value: str) -> str:
    """No control characters (CR/LF above all) can reach a header."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value).split())


def template_environment(templates_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(["html", "xml"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_digest(
    articles: Sequence[Article],
    subscriber: Subscriber,
    environment: Environment,
    *,
    sender: str,
    site_title: str,
    feeds_url: str,
    max_articles: int,
    now: datetime,
) -> RenderedDigest:
    """Render the HTML and text parts and assemble the email (the caller decides to send it)."""
    language = subscriber.language
    words = messages(language)
    period = period_key(subscriber, now)
    shown = list(articles[:max_articles])
    count = len(articles)
    local_now = now.astimezone(ZoneInfo(subscriber.timezone))
    date_label = format_date(local_now, format="medium", locale=language)
    noun = words["articles_one"] if count == 1 else words["articles_many"]
    subject = header_safe(f"{site_title} — {date_label} — {count} {noun}")
    name = subscriber.name or subscriber.email.split("@")[0]
    context = {
        "language": language,
        "words": words,
        "subject": subject,
        "preheader": words["preheader"].format(count=count, articles=noun, name=name),
        "greeting": words["greeting"].format(name=name),
        "groups": group_articles(shown, language),
        "more": count - len(shown),
        "and_more": words["and_more"].format(count=count - len(shown)),
        "feeds_url": feeds_url,
        "site_title": site_title,
        "format_when": lambda moment: babel_datetime(
            moment.astimezone(ZoneInfo(subscriber.timezone)), format="medium", locale=language
        ),
    }
    html = css_inline.inline(environment.get_template("digest.html").render(context))
    text = environment.get_template("digest.txt").render(context)
    identifier = message_id(subscriber, period, sender)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = header_safe(sender)
    message["To"] = Address(display_name=header_safe(subscriber.name), addr_spec=subscriber.email)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = identifier
    message["Content-Language"] = language
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return RenderedDigest(period, identifier, subject, html, text, message, count)

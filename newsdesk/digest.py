"""Articles + a subscriber + templates -> one multipart email as bytes. Pure: nothing is sent here.

The MIME is assembled by hand rather than through `email.message.EmailMessage`: the email
package folds long List-Unsubscribe values into RFC 2047 gibberish, picks random boundaries
(so the bytes are not reproducible) and is ten times slower than this for 10,000 digests.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import css_inline
from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from newsdesk.config import Config
from newsdesk.i18n import messages
from newsdesk.models import Article, Subscriber
from newsdesk.store import ArticleFilter
from newsdesk.tagging.custom import custom_code
from newsdesk.tagging.geography import countries
from newsdesk.tagging.taxonomy import top_level, topics
from newsdesk.tokens import make_token

log = logging.getLogger(__name__)
LOOKBACK = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_INLINER = css_inline.CSSInliner(
    keep_at_rules=True,  # the dark-mode and small-screen @media rules cannot be inlined
    load_remote_stylesheets=False,
)


@dataclass(frozen=True, slots=True)
class TopicGroup:
    label: str
    articles: tuple[Article, ...]


@dataclass(frozen=True, slots=True)
class RegionGroup:
    label: str
    topics: tuple[TopicGroup, ...] = field(default=())


class Signer(Protocol):
    """Something that signs a finished message (DKIM); see newsdesk.signing."""

    def sign(self, raw: bytes) -> bytes: ...


@dataclass(frozen=True)
class DigestSettings:
    """Everything a digest needs besides the articles and the subscriber, fixed for a run."""

    sender: str
    site_title: str
    feeds_url: str
    unsubscribe_url: str
    unsubscribe_mailto: str  # an address
    list_id: str  # the whole List-Id value: `newsdesk <digest.example.org>`
    secret: bytes
    max_articles: int = 40
    max_html_bytes: int = 100_000
    signer: Signer | None = None


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    period: str
    message_id: str
    subject: str
    html: str
    text: str
    raw: bytes  # the whole message, CRLF line ends, ready for SMTP or an .eml file
    article_count: int  # every matching article, shown or counted in "and N more"
    shown: int
    article_ids: tuple[str, ...]  # every matching article: the digest holds them all
    recipient: str

    def message(self) -> EmailMessage:
        """The message parsed back (for tests and previews; sending uses `raw`)."""
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def settings_from_config(
    config: Config, secret: bytes, signer: Signer | None = None
) -> DigestSettings:
    """The run's settings, with the defaults that derive from the sender's domain."""
    digest = config.digest
    domain = sender_domain(digest.sender)
    list_label = digest.list_id or f"digest.{domain}"
    return DigestSettings(
        sender=digest.sender,
        site_title=config.feeds.title,
        feeds_url=_join(config.feeds.base_url, "index.html"),
        unsubscribe_url=digest.unsubscribe_url,
        unsubscribe_mailto=digest.unsubscribe_mailto or f"unsubscribe@{domain}",
        list_id=f"{header_safe(config.feeds.title)} <{list_label}>",
        secret=secret,
        max_articles=digest.max_articles,
        max_html_bytes=digest.max_html_bytes,
        signer=signer,
    )


def _join(base: str, name: str) -> str:
    return base if base.endswith(name) else base.rstrip("/") + "/" + name


def period_key(subscriber: Subscriber, now: datetime) -> str:
    """The digest period `now` falls in, in the subscriber's time zone: 2026-11-23 or 2026-W48."""
    local = now.astimezone(ZoneInfo(subscriber.timezone))
    if subscriber.frequency == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


def due_at(subscriber: Subscriber, now: datetime) -> datetime:
    """When this period's digest is due: the subscriber's `time` on the period's first day."""
    local = now.astimezone(ZoneInfo(subscriber.timezone))
    day = local.date()
    if subscriber.frequency == "weekly":
        day -= timedelta(days=local.weekday())  # ISO weeks start on Monday
    hour, minute = (int(part) for part in subscriber.time.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=local.tzinfo)


def is_due(subscriber: Subscriber, now: datetime) -> bool:
    """True once the subscriber's send time for the current period has come."""
    return now >= due_at(subscriber, now)


@lru_cache(maxsize=1)
def _place_codes() -> tuple[dict[str, str], dict[str, str], set[str]]:
    table = countries().values()
    region_codes = {c.region: c.region_code for c in table if c.region}
    subregion_codes = {c.subregion: c.subregion_code for c in table if c.subregion}
    return region_codes, subregion_codes, set(region_codes.values())


def subscriber_filter(subscriber: Subscriber, ingested_after: datetime | None) -> ArticleFilter:
    """What the subscriber asked for; a region may be named by its M49 name or code."""
    region_codes, subregion_codes, region_code_set = _place_codes()
    regions: list[str] = []
    subregions: list[str] = []
    for wanted in subscriber.regions:
        if wanted in subregion_codes:
            subregions.append(subregion_codes[wanted])
        elif wanted in subregion_codes.values():
            subregions.append(wanted)
        elif wanted in region_codes:
            regions.append(region_codes[wanted])
        elif wanted in region_code_set:
            regions.append(wanted)
        else:  # not an M49 name: one of the operator's [[regions]]
            regions.append(custom_code(wanted))
    return ArticleFilter(
        countries=tuple(c.upper() for c in subscriber.countries),
        subregions=tuple(subregions),
        regions=tuple(regions),
        topics=subscriber.topics,
        ingested_after=ingested_after,
    )


@lru_cache(maxsize=64)
def _region_label(code: str, fallback: str, language: str) -> str:
    """M49 region names in the reader's language: CLDR knows them as territories."""
    try:
        label = Locale.parse(language).territories.get(code)
    except (ValueError, TypeError):
        label = None
    return str(label) if label else fallback


@lru_cache(maxsize=4096)
def _topic_label(code: str, fallback: str, language: str) -> str:
    """The label of the topic's top-level ancestor in `language`; "" for a non-IPTC topic."""
    try:
        table = topics()
    except FileNotFoundError:  # no taxonomy shipped yet: the tag's own label will do
        return fallback if code.startswith("medtop:") else ""
    return table[top_level(code)].label(language) if code in table else ""


def preferred_regions(subscriber: Subscriber) -> frozenset[str]:
    """The M49 region codes the subscriber asked for, directly or through sub-regions/countries."""
    return _preferred_regions(subscriber.regions, subscriber.countries)


@lru_cache(maxsize=1024)
def _preferred_regions(
    regions: tuple[str, ...], wanted_countries: tuple[str, ...]
) -> frozenset[str]:
    wanted = subscriber_filter(Subscriber("", regions=regions, countries=wanted_countries), None)
    codes = set(wanted.regions)
    for country in countries().values():
        if country.subregion_code in wanted.subregions or country.iso2 in wanted.countries:
            codes.add(country.region_code)
    return frozenset(codes)


def group_articles(
    articles: Sequence[Article], language: str, preferred: frozenset[str] = frozenset()
) -> tuple[RegionGroup, ...]:
    """Region, then topic; each article once, under its primary topic and its strongest region,
    preferring a region the reader asked for (a French story about Tunisia files under Europe
    for someone who follows Europe)."""
    words = messages(language)
    buckets: dict[str, dict[str, list[Article]]] = {}
    for article in articles:
        region_tags = sorted(article.tags_of("region"), key=lambda t: t.code not in preferred)
        region = (
            _region_label(region_tags[0].code, region_tags[0].label, language)
            if region_tags
            else words["elsewhere"]
        )
        # the strongest IPTC topic, under its top-level label; custom topics do not group
        topic = next(
            (
                label
                for tag in article.tags_of("topic")
                if (label := _topic_label(tag.code, tag.label, language))
            ),
            words["other_topics"],
        )
        buckets.setdefault(region, {}).setdefault(topic, []).append(article)
    return tuple(
        RegionGroup(
            region,
            tuple(
                TopicGroup(t, tuple(items))
                for t, items in sorted(
                    by_topic.items(), key=lambda item: (item[0] == words["other_topics"], item[0])
                )
            ),
        )
        for region, by_topic in sorted(
            buckets.items(), key=lambda item: (item[0] == words["elsewhere"], item[0])
        )
    )


def message_id(subscriber: Subscriber, period: str, sender: str) -> str:
    """Stable per subscriber and period, so a resent digest is recognisably the same message."""
    digest = hashlib.sha256(f"{subscriber.email.lower()}\x1f{period}".encode()).hexdigest()[:24]
    return f"<digest.{period}.{digest}@{sender_domain(sender)}>"


def header_safe(value: str) -> str:
    """No control characters (CR/LF above all) can reach a header."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value).split())


def unsubscribe_link(settings: DigestSettings, email_address: str) -> str:
    """The https URL that unsubscribes `email_address` (a POST does it; a GET asks first)."""
    token = make_token(settings.secret, email_address)
    parts = urlsplit(settings.unsubscribe_url)
    query = "&".join(q for q in (parts.query, urlencode({"token": token})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def unsubscribe_mailto(settings: DigestSettings, email_address: str) -> str:
    token = make_token(settings.secret, email_address)
    return f"mailto:{settings.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"


def template_environment(templates_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(["html", "xml"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=20_000)
def _when(moment: datetime, timezone: str, language: str) -> str:
    # Babel formatting costs ~50 µs; the same article appears in thousands of digests.
    local = moment.astimezone(ZoneInfo(timezone))
    # Medium date, short time: "23 Nov 2026, 14:20"; seconds mean nothing to a reader.
    date_part = format_date(local, format="medium", locale=language)
    return f"{date_part}, {format_time(local, format='short', locale=language)}"


def _count_words(count: int, language: str) -> tuple[str, str]:
    words = messages(language)
    form = Locale.parse(language).plural_form(count)
    noun = words["articles_one"] if form == "one" else words["articles_many"]
    return str(format_decimal(count, locale=language)), noun


def render_digest(
    articles: Sequence[Article],
    subscriber: Subscriber,
    environment: Environment,
    settings: DigestSettings,
    now: datetime,
) -> RenderedDigest:
    """Render the HTML and text parts and assemble the message bytes (nothing is sent)."""
    language = subscriber.language
    words = messages(language)
    period = period_key(subscriber, now)
    count = len(articles)
    local_now = now.astimezone(ZoneInfo(subscriber.timezone))
    number, noun = _count_words(count, language)
    date_label = format_date(local_now, format=words["subject_date"], locale=language)
    subject = header_safe(f"{settings.site_title} — {date_label} — {number} {noun}")
    name = subscriber.name or subscriber.email.split("@")[0]
    unsubscribe_url = unsubscribe_link(settings, subscriber.email)
    lead = articles[0].title if articles else ""
    context: dict[str, Any] = {
        "language": language,
        "words": words,
        "subject": subject,
        "preheader": header_safe(
            words["preheader"].format(count=number, articles=noun, name=name)
            + (f" — {lead}" if lead else "")
        ),
        "greeting": words["greeting"].format(name=name),
        "feeds_url": settings.feeds_url,
        "site_title": settings.site_title,
        "unsubscribe_url": unsubscribe_url,
        "sent_to": words["sent_to"].format(email=subscriber.email),
        "preferred_regions": preferred_regions(subscriber),
        "format_when": lambda moment: _when(moment, subscriber.timezone, language),
    }
    html, text, shown = _render_parts(environment, context, articles, settings, language)
    identifier = message_id(subscriber, period, settings.sender)
    headers = [
        ("From", _address_header(settings.sender)),
        ("To", _address_header(formataddr((subscriber.name, subscriber.email)))),
        ("Subject", _encoded(subject)),
        ("Date", format_datetime(now)),
        ("Message-ID", identifier),
        ("List-Id", settings.list_id),
        (
            "List-Unsubscribe",
            f"<{unsubscribe_url}>, <{unsubscribe_mailto(settings, subscriber.email)}>",
        ),
        # RFC 8058: a POST to the https URL unsubscribes at once, without a confirmation page.
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Auto-Submitted", "auto-generated"),
        ("Content-Language", language),
    ]
    raw = assemble(headers, text, html, boundary_seed=identifier)
    if settings.signer is not None:
        raw = settings.signer.sign(raw)
    return RenderedDigest(
        period=period,
        message_id=identifier,
        subject=subject,
        html=html,
        text=text,
        raw=raw,
        article_count=count,
        shown=shown,
        article_ids=tuple(a.id for a in articles),
        recipient=subscriber.email,
    )


def _render_parts(
    environment: Environment,
    context: dict[str, Any],
    articles: Sequence[Article],
    settings: DigestSettings,
    language: str,
) -> tuple[str, str, int]:
    """HTML and text with as many articles as fit under max_html_bytes (Gmail clips beyond).

    The footer comes after the articles, so dropping articles is what keeps it visible.
    """
    words = context["words"]
    preferred = context["preferred_regions"]
    shown = min(len(articles), settings.max_articles)
    while True:
        more = len(articles) - shown
        context["groups"] = group_articles(articles[:shown], language, preferred)
        context["more"] = more
        context["and_more"] = words["and_more"].format(count=format_decimal(more, locale=language))
        html = _INLINER.inline(environment.get_template("digest.html").render(context))
        size = len(html.encode("utf-8"))
        if size <= settings.max_html_bytes or shown == 0:
            break
        smaller = min(shown - 1, int(shown * settings.max_html_bytes / size * 0.95))
        log.info("digest_trimmed bytes=%d shown=%d next=%d", size, shown, max(smaller, 0))
        shown = max(smaller, 0)
    text = environment.get_template("digest.txt").render(context)
    return html, text, shown


def _address_header(value: str) -> str:
    name, address = parseaddr(header_safe(value))
    return formataddr((name, address), "utf-8")


def _encoded(value: str) -> str:
    """RFC 2047 encoded words for a non-ASCII header value (the email package's Header)."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _fold(name: str, value: str) -> bytes:
    """`Name: value` folded at spaces near 78 columns (RFC 5322 2.2.3); ASCII only.

    Values reaching here are ASCII already (encoded words, addresses, URLs), so folding is
    only splitting at spaces; email.header would cost 30 us a header for the same result.
    """
    line = f"{name}: "
    lines: list[str] = []
    for word in header_safe(value).split(" "):
        if len(line) + len(word) > 78 and line.strip() and not line.endswith(": "):
            lines.append(line.rstrip())
            line = " "
        line += word + " "
    lines.append(line.rstrip())
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _qp(content: str) -> bytes:
    data = content.replace("\r\n", "\n").encode("utf-8")
    # binascii's quoted-printable is C; "=" is always escaped, so "=_" boundaries never clash
    return binascii.b2a_qp(data, quotetabs=False, istext=True).replace(b"\n", b"\r\n")


def assemble(headers: Iterable[tuple[str, str]], text: str, html: str, boundary_seed: str) -> bytes:
    """A multipart/alternative message (text first, HTML preferred) with CRLF line ends."""
    boundary = "=_newsdesk_" + hashlib.sha256(boundary_seed.encode()).hexdigest()[:24]
    head = b"".join(_fold(name, value) for name, value in headers)
    head += _fold("MIME-Version", "1.0")
    head += _fold("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    delimiter = f"--{boundary}\r\n".encode()
    part_head = (
        'Content-Type: text/{}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return b"".join(
        [
            head,
            b"\r\n",
            delimiter,
            part_head.format("plain").encode(),
            _qp(text),
            b"\r\n",
            delimiter,
            part_head.format("html").encode(),
            _qp(html),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )

"""Storage behind SQLAlchemy Core: schema, migrations and every query (SQLite or PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
    cast,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from newsdesk.errors import StoreError
from newsdesk.models import Article, FeedItem, Subscriber, Tag
from newsdesk.urls import canonical_url, is_web_url

log = logging.getLogger(__name__)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every backend, read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = MetaData()

meta_table = Table(
    "newsdesk_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

articles_table = Table(
    "articles",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("language", String(16), nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("url", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("tag_signature", String(64), nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_articles_published", "published", "id"),
    Index("ix_articles_ingested", "ingested_at"),
    Index("ix_articles_language", "language", "published", "id"),
    Index("ix_articles_updated", "updated_at"),
)

tags_table = Table(
    "article_tags",
    metadata,
    Column(
        "article_id", String(32), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("kind", String(16), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("label", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON list of the words that produced the tag
    # The article's published time, copied here so a feed's newest items are one index range.
    Column("published", UTCDateTime, nullable=True),
    Index("ix_article_tags_kind_code", "kind", "code"),
    Index("ix_article_tags_feed", "kind", "code", "published", "article_id"),
)

deliveries_table = Table(
    "deliveries",
    metadata,
    Column("period", String(32), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("status", String(16), nullable=False),  # sending | sent | failed
    Column("message_id", Text, nullable=False),
    Column("articles", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
)


subscribers_table = Table(
    "subscribers",
    metadata,
    Column("email", String(320), primary_key=True),  # normalized, lower-cased
    Column("name", Text, nullable=False),
    Column("regions", Text, nullable=False),  # JSON lists
    Column("countries", Text, nullable=False),
    Column("topics", Text, nullable=False),
    Column("language", String(16), nullable=False),
    Column("frequency", String(16), nullable=False),
    Column("send_time", String(5), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # active | unsubscribed | bounced
    Column("origin", String(16), nullable=False),  # config | cli | import
    Column("permanent_failures", Integer, nullable=False),  # consecutive 5xx answers
    Column("last_error", Text, nullable=False),
    Column("last_error_at", UTCDateTime, nullable=True),
    Column("unsubscribed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_subscribers_status", "status"),
)

# Which articles each digest held: a subscriber never gets the same article twice.
digest_articles_table = Table(
    "digest_articles",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("period", String(32), primary_key=True),
    Column("article_id", String(32), primary_key=True),
)


def _migration_1(connection: Connection) -> None:
    for table in (meta_table, articles_table, tags_table, deliveries_table):
        table.create(connection, checkfirst=True)


sources_table = Table(
    "sources",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("origin", String(16), nullable=False),  # config | opml
    Column("configured_url", Text, nullable=False),  # as written in the config or OPML file
    Column("url", Text, nullable=False),  # what is fetched; a 301/308 moves it
    Column("kind", String(16), nullable=False, default=""),  # feed | page | folder | "" unknown
    Column("title", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),  # false once a 410 says gone
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("last_fetch", UTCDateTime, nullable=True),
    Column("status", String(32), nullable=False, default=""),
    Column("http_status", Integer, nullable=True),
    Column("items", Integer, nullable=False, default=0),
    Column("error_count", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("next_fetch", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

article_sources_table = Table(
    "article_sources",
    metadata,
    Column(
        "article_id", String(32), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("source", String(200), primary_key=True),
    Column("url", Text, nullable=False),  # canonical URL of the story at this source, or ""
    Column("fingerprint", String(64), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Index("ix_article_sources_url", "url"),
    Index("ix_article_sources_fingerprint", "fingerprint"),
)


def _migration_sources(connection: Connection) -> None:
    """Web sources with their fetch state, and which sources carried each story."""
    sources_table.create(connection, checkfirst=True)
    if not inspect(connection).has_table("article_sources"):
        article_sources_table.create(connection)
        # Stories stored before this migration count as seen at their own source.
        rows = connection.execute(
            select(
                articles_table.c.id,
                articles_table.c.source,
                articles_table.c.url,
                articles_table.c.fingerprint,
                articles_table.c.ingested_at,
            )
        ).all()
        if rows:
            connection.execute(
                insert(article_sources_table),
                [
                    {
                        "article_id": r.id,
                        "source": r.source,
                        "url": canonical_url(r.url) if is_web_url(r.url) else "",
                        "fingerprint": r.fingerprint,
                        "first_seen": r.ingested_at,
                    }
                    for r in rows
                ],
            )


job_runs_table = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(200), nullable=False),
    Column("scheduled", UTCDateTime, nullable=True),  # the slot a digest run belongs to
    Column("started", UTCDateTime, nullable=False),
    Column("finished", UTCDateTime, nullable=True),
    Column("duration", Float, nullable=True),  # seconds
    Column("result", String(16), nullable=False),  # running | ok | error | missed | interrupted
    Column("error", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_job_runs_job_started", "job_id", "started"),
)

daemon_lock_table = Table(
    "daemon_lock",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("token", String(64), nullable=False),  # unique per daemon start
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("started", UTCDateTime, nullable=False),
    Column("heartbeat", UTCDateTime, nullable=False),
)

daemon_jobs_table = Table(
    "daemon_jobs",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("next_run", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)


def _migration_daemon(connection: Connection) -> None:
    for table in (job_runs_table, daemon_lock_table, daemon_jobs_table):
        table.create(connection, checkfirst=True)


def _migration_feeds(connection: Connection) -> None:
    """article_tags.published (backfilled) and the indexes that make feed queries ranges."""
    columns = {c["name"] for c in inspect(connection).get_columns("article_tags")}
    if "published" not in columns:
        column_type = tags_table.c.published.type.compile(dialect=connection.dialect)
        connection.execute(text(f"ALTER TABLE article_tags ADD COLUMN published {column_type}"))
        connection.execute(
            update(tags_table)
            .where(tags_table.c.published.is_(None))
            .values(
                published=select(articles_table.c.published)
                .where(articles_table.c.id == tags_table.c.article_id)
                .scalar_subquery()
            )
        )
    for index in (*tags_table.indexes, *articles_table.indexes):
        if index.name in ("ix_article_tags_feed", "ix_articles_language", "ix_articles_updated"):
            index.create(connection, checkfirst=True)


# Append-only: each function moves the schema from version N to N+1.
def _migration_subscribers(connection: Connection) -> None:
    for table in (subscribers_table, digest_articles_table):
        table.create(connection, checkfirst=True)


# Each article as the feeds show it, serialized once and reused by every build until the
# article or the rendering changes (`key` says which version of both the bytes are). Only the
# articles some feed carries are kept: a build prunes the rest.
feed_items_table = Table(
    "feed_items",
    metadata,
    Column(
        "article_id", String(32), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", Text, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("language", String(16), nullable=False),
    Column("rss", LargeBinary, nullable=False),
    Column("atom", LargeBinary, nullable=False),
    Column("json", LargeBinary, nullable=False),
)


def _migration_feed_items(connection: Connection) -> None:
    feed_items_table.create(connection, checkfirst=True)


# Append-only: each function moves the schema from version N to N+1.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _migration_1,
    _migration_sources,
    _migration_subscribers,
    _migration_feeds,
    _migration_daemon,
    _migration_feed_items,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    """Which articles a feed or digest wants. Places OR together; topics and languages AND."""

    countries: tuple[str, ...] = ()
    subregions: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    ingested_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A subscriber as the database keeps them: preferences plus delivery state."""

    subscriber: Subscriber
    status: str
    origin: str
    permanent_failures: int
    last_error: str


@dataclass(frozen=True, slots=True)
class SaveResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class StoryResult:
    added: int
    updated: int
    unchanged: int
    merged: int  # the same story already stored from another source: linked, not stored again


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source's row in the `sources` table: where it is fetched from and how that went."""

    name: str
    origin: str
    configured_url: str
    url: str
    kind: str
    title: str
    enabled: bool
    etag: str | None
    last_modified: str | None
    last_fetch: datetime | None
    status: str
    http_status: int | None
    items: int
    error_count: int
    last_error: str
    next_fetch: datetime | None


# Texts shorter than this are too thin for "same fingerprint" to mean "same story".
MIN_FINGERPRINT_CHARS = 200


@dataclass(frozen=True, slots=True)
class TagCount:
    kind: str
    code: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The daemon that holds (or last held) the database's lock row."""

    token: str
    pid: int
    host: str
    started: datetime
    heartbeat: datetime


@dataclass(frozen=True, slots=True)
class JobRun:
    job_id: str
    scheduled: datetime | None
    started: datetime
    finished: datetime | None
    duration: float | None
    result: str
    error: str
    detail: str


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    job_id: str
    name: str
    trigger: str
    next_run: datetime | None
    updated_at: datetime


def tag_signature(tags: Iterable[Tag]) -> str:
    """A hash of an article's tags, so a retag that changes nothing writes nothing."""
    canonical = sorted((t.kind, t.code, round(t.score, 3), t.evidence) for t in tags)
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()[:32]


class Store:
    """The database: open it with `Store.open(url)`; every query newsdesk makes lives here."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect, then create or migrate the schema to the current version."""
        try:
            engine = create_engine(url, future=True)
        except (SQLAlchemyError, ImportError, ValueError) as error:
            raise StoreError(f"cannot use database URL {_redact(url)}: {error}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            store.migrate()
        except SQLAlchemyError as error:
            raise StoreError(
                f"cannot open database {_redact(url)}: {error.__class__.__name__}: "
                f"{str(error).splitlines()[0]}; check [store] path or the database URL"
            ) from None
        return store

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        with self.engine.begin() as connection:
            meta_table.create(connection, checkfirst=True)
            row = connection.execute(
                select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).first()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {current} is newer than this newsdesk "
                    f"({SCHEMA_VERSION}); upgrade newsdesk"
                )
            for version_index in range(current, SCHEMA_VERSION):
                MIGRATIONS[version_index](connection)
                log.info("schema_migrated version=%d", version_index + 1)
            if current != SCHEMA_VERSION:
                values = {"key": "schema_version", "value": str(SCHEMA_VERSION)}
                if row:
                    connection.execute(
                        update(meta_table)
                        .where(meta_table.c.key == "schema_version")
                        .values(value=values["value"])
                    )
                else:
                    connection.execute(insert(meta_table).values(**values))

    def schema_version(self) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).scalar_one()
        return int(value)

    # Articles ---------------------------------------------------------------------------

    def save_articles(self, articles: Sequence[Article], now: datetime) -> SaveResult:
        """Insert new articles, update changed ones (same id), leave identical ones alone."""
        with self.engine.begin() as connection:
            return self._save_articles(connection, articles, now)

    def _save_articles(
        self, connection: Connection, articles: Sequence[Article], now: datetime
    ) -> SaveResult:
        added = updated = unchanged = 0
        existing = self._existing_signatures(connection, [a.id for a in articles])
        # New rows go in as one executemany each (articles, then tags): far fewer round trips.
        new_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        for article in articles:
            signature = tag_signature(article.tags)
            row = _article_row(article, signature)
            previous = existing.get(article.id)
            if previous is None:
                new_rows.append({**row, "ingested_at": now, "updated_at": now})
                added += 1
            elif previous != (article.fingerprint, signature):
                connection.execute(
                    update(articles_table)
                    .where(articles_table.c.id == article.id)
                    .values(**row, updated_at=now)
                )
                connection.execute(delete(tags_table).where(tags_table.c.article_id == article.id))
                updated += 1
            else:
                unchanged += 1
                continue
            existing[article.id] = (article.fingerprint, signature)
            tag_rows.extend(_tag_row(article.id, t, article.published) for t in article.tags)
        if new_rows:
            connection.execute(insert(articles_table), new_rows)
        if tag_rows:
            connection.execute(insert(tags_table), tag_rows)
        return SaveResult(added=added, updated=updated, unchanged=unchanged)

    def _existing_signatures(
        self, connection: Connection, ids: list[str]
    ) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = connection.execute(
                select(
                    articles_table.c.id,
                    articles_table.c.fingerprint,
                    articles_table.c.tag_signature,
                ).where(articles_table.c.id.in_(chunk))
            )
            found.update({r.id: (r.fingerprint, r.tag_signature) for r in rows})
        return found

    def articles(self, wanted: ArticleFilter, limit: int | None = None) -> list[Article]:
        """Articles matching `wanted`, newest first (then by id, so the order is total)."""
        query = select(articles_table).where(*self._conditions(wanted))
        query = query.order_by(articles_table.c.published.desc(), articles_table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            tags = self._tags_for(connection, [r.id for r in rows])
        return [_article_from_row(r, tags.get(r.id, ())) for r in rows]

    def article(self, article_id: str) -> Article | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(articles_table).where(articles_table.c.id == article_id)
            ).first()
            if row is None:
                return None
            tags = self._tags_for(connection, [article_id])
        return _article_from_row(row, tags.get(article_id, ()))

    def _conditions(self, wanted: ArticleFilter) -> list[Any]:
        conditions: list[Any] = []
        places = [
            select(tags_table.c.article_id).where(
                tags_table.c.kind == kind, tags_table.c.code.in_(codes)
            )
            for kind, codes in (
                ("country", wanted.countries),
                ("subregion", wanted.subregions),
                ("region", wanted.regions),
            )
            if codes
        ]
        if places:
            conditions.append(or_(*(articles_table.c.id.in_(q) for q in places)))
        if wanted.topics:
            conditions.append(
                articles_table.c.id.in_(
                    select(tags_table.c.article_id).where(
                        tags_table.c.kind == "topic", tags_table.c.code.in_(wanted.topics)
                    )
                )
            )
        if wanted.languages:
            conditions.append(articles_table.c.language.in_(wanted.languages))
        if wanted.ingested_after is not None:
            conditions.append(articles_table.c.ingested_at > wanted.ingested_after)
        return conditions

    def _tags_for(self, connection: Connection, ids: list[str]) -> dict[str, tuple[Tag, ...]]:
        found: dict[str, list[Tag]] = {}
        for start in range(0, len(ids), 500):
            rows = connection.execute(
                select(tags_table).where(tags_table.c.article_id.in_(ids[start : start + 500]))
            )
            for r in rows:
                tag = Tag(r.kind, r.code, r.label, r.score, tuple(json.loads(r.evidence)))
                found.setdefault(r.article_id, []).append(tag)
        return {
            key: tuple(sorted(value, key=lambda t: (t.kind, -t.score, t.code)))
            for key, value in found.items()
        }

    def tag_counts(self) -> list[TagCount]:
        """How many articles carry each tag."""
        # The label comes from one row per tag (a correlated lookup on the (kind, code) index):
        # aggregating labels would read every tag row instead of the covering index alone.
        other = tags_table.alias("other")
        label = (
            select(other.c.label)
            .where(other.c.kind == tags_table.c.kind, other.c.code == tags_table.c.code)
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(tags_table.c.kind, tags_table.c.code, label, func.count())
            .group_by(tags_table.c.kind, tags_table.c.code)
            .order_by(tags_table.c.kind, tags_table.c.code)
        )
        with self.engine.connect() as connection:
            return [
                TagCount(kind, code, label, count)
                for kind, code, label, count in connection.execute(query)
            ]

    def count_articles(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(articles_table)).scalar_one()
            )

    # Digest ledger ----------------------------------------------------------------------

    def delivery(self, period: str, email: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(deliveries_table).where(
                    deliveries_table.c.period == period, deliveries_table.c.email == email
                )
            ).first()
        return dict(row._mapping) if row else None

    def last_delivered(self, email: str) -> datetime | None:
        """When this subscriber's last digest was sent, or None if never."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(func.max(deliveries_table.c.updated_at)).where(
                    deliveries_table.c.email == email, deliveries_table.c.status == "sent"
                )
            ).scalar_one()
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    def record_delivery(
        self,
        period: str,
        email: str,
        status: str,
        message_id: str,
        articles: int,
        now: datetime,
        error: str = "",
    ) -> None:
        """Create or update the ledger row for one subscriber and period."""
        with self.engine.begin() as connection:
            exists = connection.execute(
                select(deliveries_table.c.attempts).where(
                    deliveries_table.c.period == period, deliveries_table.c.email == email
                )
            ).first()
            values = {
                "status": status,
                "message_id": message_id,
                "articles": articles,
                "error": error,
                "updated_at": now,
            }
            if exists is None:
                connection.execute(
                    insert(deliveries_table).values(
                        period=period, email=email, attempts=1, **values
                    )
                )
            else:
                connection.execute(
                    update(deliveries_table)
                    .where(deliveries_table.c.period == period, deliveries_table.c.email == email)
                    .values(attempts=deliveries_table.c.attempts + 1, **values)
                )

    # Feeds ------------------------------------------------------------------------------

    def feed_state(self, now: datetime) -> tuple[int, str, str]:
        """What a feed rebuild depends on: the article count, the last change, the next release.

        Any save that changes an article moves `updated_at`; an article dated in the future
        enters the feeds when `now` passes it, so the earliest such date is part of the state.
        """
        with self.engine.connect() as connection:
            count, last_change = connection.execute(
                select(func.count(), func.max(articles_table.c.updated_at))
            ).one()
            next_release = connection.execute(
                select(func.min(articles_table.c.published)).where(articles_table.c.published > now)
            ).scalar_one()
        return int(count), _stamp(last_change), _stamp(next_release)

    def language_counts(self, now: datetime) -> dict[str, int]:
        """How many articles published by `now` each language has."""
        query = (
            select(articles_table.c.language, func.count())
            .where(articles_table.c.published <= now)
            .group_by(articles_table.c.language)
        )
        with self.engine.connect() as connection:
            return {language: int(count) for language, count in connection.execute(query)}

    def feed_item_ids(self, wanted: ArticleFilter, limit: int, now: datetime) -> list[str]:
        """The ids of a feed's items: published by `now`, newest first, then by id.

        A feed of one tag reads one range of ix_article_tags_feed; anything else falls back to
        the general filter.
        """
        single = _single_tag(wanted)
        places = [
            (kind, codes)
            for kind, codes in (
                ("country", wanted.countries),
                ("subregion", wanted.subregions),
                ("region", wanted.regions),
            )
            if codes
        ]
        query: Any
        if single is not None:
            kind, code = single
            query = (
                select(tags_table.c.article_id)
                .where(
                    tags_table.c.kind == kind,
                    tags_table.c.code == code,
                    tags_table.c.published <= now,
                )
                .order_by(tags_table.c.published.desc(), tags_table.c.article_id.desc())
            )
        elif (places or wanted.topics) and wanted.ingested_after is None:
            query = _tag_driven(places or [("topic", wanted.topics)], wanted, now)
        else:
            query = (
                select(articles_table.c.id)
                .where(*self._conditions(wanted), articles_table.c.published <= now)
                .order_by(articles_table.c.published.desc(), articles_table.c.id.desc())
            )
        with self.engine.connect() as connection:
            return list(connection.execute(query.limit(limit)).scalars())

    def item_keys(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """id -> (a key that changes whenever the stored article does, its title)."""
        a = articles_table.c
        # updated_at as text: the key only needs to change, and parsing ten thousand
        # datetimes is most of this query's cost.
        query = select(a.id, a.title, a.fingerprint, a.tag_signature, cast(a.updated_at, String))
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                rows = connection.execute(query.where(a.id.in_(ids[start : start + 500])))
                for ident, title, fingerprint, signature, updated in rows:
                    found[ident] = (f"{fingerprint}:{signature}:{updated}", title)
        return found

    def feed_articles(self, ids: Sequence[str]) -> dict[str, Article]:
        """The stored articles with these ids, as feeds need them.

        Lean on purpose: no plain-text body and no tag evidence (feeds never show them), and
        rows unpacked as tuples: a full build reads ten thousand articles and their tags.
        """
        a = articles_table.c
        t = tags_table.c
        # published as text, parsed by fromisoformat (C): the generic DateTime result
        # processing costs more than the rest of the row.
        article_query = select(
            a.id, a.title, a.summary, a.body_html, a.language, cast(a.published, String),
            a.url, a.source, a.fingerprint,
        )  # fmt: skip
        found: dict[str, Article] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                tags: dict[str, list[Tag]] = {}
                tag_rows = connection.execute(
                    select(t.article_id, t.kind, t.code, t.label, t.score).where(
                        t.article_id.in_(chunk)
                    )
                ).all()  # one fetchall: much cheaper than iterating row by row
                for article_id, kind, code, label, score in tag_rows:
                    tags.setdefault(article_id, []).append(Tag(kind, code, label, score))
                for row in connection.execute(article_query.where(a.id.in_(chunk))).all():
                    ident, title, summary, html, language, published, url, source, print_ = row
                    mine = tags.get(ident, [])
                    mine.sort(key=_tag_order)
                    found[ident] = Article(
                        ident, title, summary, "", html, language, _parse_utc(published), url,
                        source, print_, tuple(mine),
                    )  # fmt: skip
        return found

    def feed_items(self, keys: Mapping[str, str]) -> dict[str, FeedItem]:
        """The rendered items stored for these article ids, where the stored key is the one
        given (anything else was rendered from another version of the article or the code)."""
        f = feed_items_table.c
        query = select(
            f.article_id, f.key, cast(f.published, String), f.language, f.rss, f.atom, f.json
        )
        ids = list(keys)
        found: dict[str, FeedItem] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                rows = connection.execute(query.where(f.article_id.in_(ids[start : start + 500])))
                for ident, key, published, language, rss, atom, json_item in rows.all():
                    if keys[ident] == key:
                        found[ident] = FeedItem(
                            ident, _parse_utc(published), language, rss, atom, json_item
                        )
        return found

    def save_feed_items(self, items: Sequence[tuple[str, FeedItem]]) -> None:
        """Store (key, item) pairs, replacing what was stored for the same articles."""
        f = feed_items_table.c
        with self.engine.begin() as connection:
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                connection.execute(
                    delete(feed_items_table).where(f.article_id.in_([i.id for _, i in chunk]))
                )
                connection.execute(
                    insert(feed_items_table),
                    [
                        {
                            "article_id": item.id,
                            "key": key,
                            "published": item.published,
                            "language": item.language,
                            "rss": item.rss,
                            "atom": item.atom,
                            "json": item.json,
                        }
                        for key, item in chunk
                    ],
                )

    def prune_feed_items(self, keep: Iterable[str]) -> int:
        """Drop the stored items of every article not in `keep`; how many went."""
        kept = set(keep)
        f = feed_items_table.c
        with self.engine.begin() as connection:
            stale = [i for i in connection.execute(select(f.article_id)).scalars() if i not in kept]
            for start in range(0, len(stale), 500):
                connection.execute(
                    delete(feed_items_table).where(f.article_id.in_(stale[start : start + 500]))
                )
        return len(stale)

    # Stories and their sources -------------------------------------------------------------

    def save_stories(self, stories: Sequence[tuple[Article, str]], now: datetime) -> StoryResult:
        """Save (article, source name) pairs, storing each story once.

        A story already stored under another id (same canonical URL, or the same text by
        fingerprint) is not stored again: the new source is linked to the stored article.
        """
        with self.engine.begin() as connection:
            keys = [_story_keys(article) for article, _ in stories]
            known_ids = set(self._existing_signatures(connection, [a.id for a, _ in stories]))
            by_url = self._story_lookup(
                connection, article_sources_table.c.url, {u for u, _ in keys if u}
            )
            by_print = self._story_lookup(
                connection, article_sources_table.c.fingerprint, {f for _, f in keys if f}
            )
            chosen: dict[str, Article] = {}
            links: dict[tuple[str, str], tuple[str, str]] = {}
            merged = 0
            for (article, source), (url, printed) in zip(stories, keys, strict=True):
                if article.id in known_ids or article.id in chosen:
                    target = article.id
                else:
                    target = by_url.get(url, "") or by_print.get(printed, "") or article.id
                if target == article.id:
                    chosen.setdefault(article.id, article)
                else:
                    merged += 1
                    log.debug("story_merged id=%s into=%s source=%s", article.id, target, source)
                if url:
                    by_url.setdefault(url, target)
                if printed:
                    by_print.setdefault(printed, target)
                links.setdefault((target, source), (url, article.fingerprint))
            saved = self._save_articles(connection, list(chosen.values()), now)
            self._link_sources(connection, links, now)
        return StoryResult(saved.added, saved.updated, saved.unchanged, merged)

    def _story_lookup(
        self, connection: Connection, column: Any, values: set[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        ordered = sorted(values)
        for start in range(0, len(ordered), 500):
            rows = connection.execute(
                select(column, article_sources_table.c.article_id)
                .where(column.in_(ordered[start : start + 500]))
                .order_by(article_sources_table.c.first_seen, article_sources_table.c.article_id)
            )
            for value, article_id in rows:
                found.setdefault(value, article_id)
        return found

    def _link_sources(
        self,
        connection: Connection,
        links: dict[tuple[str, str], tuple[str, str]],
        now: datetime,
    ) -> None:
        ids = sorted({article_id for article_id, _ in links})
        present: set[tuple[str, str]] = set()
        for start in range(0, len(ids), 500):
            rows = connection.execute(
                select(article_sources_table.c.article_id, article_sources_table.c.source).where(
                    article_sources_table.c.article_id.in_(ids[start : start + 500])
                )
            )
            present.update((r.article_id, r.source) for r in rows)
        missing = [
            {
                "article_id": article_id,
                "source": source,
                "url": url,
                "fingerprint": printed,
                "first_seen": now,
            }
            for (article_id, source), (url, printed) in links.items()
            if (article_id, source) not in present
        ]
        if missing:
            connection.execute(insert(article_sources_table), missing)

    def article_sources(self, article_id: str) -> list[str]:
        """The names of every source that carried this story, first seen first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(article_sources_table.c.source)
                .where(article_sources_table.c.article_id == article_id)
                .order_by(article_sources_table.c.first_seen, article_sources_table.c.source)
            )
            return [r.source for r in rows]

    # Sources ----------------------------------------------------------------------------

    def source_states(self) -> dict[str, SourceState]:
        """Every known source by name."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(sources_table).order_by(sources_table.c.name))
            return {r.name: _source_from_row(r) for r in rows}

    def register_source(
        self, name: str, origin: str, url: str, kind: str, title: str, now: datetime
    ) -> bool:
        """Make sure a source has a row; an edited URL resets its fetch state. True if new."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(sources_table).where(sources_table.c.name == name)
            ).first()
            if row is None:
                connection.execute(
                    insert(sources_table).values(
                        name=name,
                        origin=origin,
                        configured_url=url,
                        url=url,
                        kind=kind,
                        title=title,
                        enabled=True,
                        status="",
                        items=0,
                        error_count=0,
                        last_error="",
                        updated_at=now,
                    )
                )
                return True
            changes: dict[str, Any] = {}
            if row.configured_url != url:
                changes.update(
                    configured_url=url,
                    url=url,
                    kind=kind,
                    enabled=True,
                    etag=None,
                    last_modified=None,
                    status="",
                    http_status=None,
                    error_count=0,
                    last_error="",
                    next_fetch=None,
                )
            elif kind and row.kind != kind:
                changes["kind"] = kind
            if row.origin != origin:
                changes["origin"] = origin
            if changes:
                connection.execute(
                    update(sources_table)
                    .where(sources_table.c.name == name)
                    .values(**changes, updated_at=now)
                )
            return False

    def update_source(self, name: str, changes: dict[str, Any], now: datetime) -> None:
        """Record the outcome of a fetch (or any state change) for one source."""
        with self.engine.begin() as connection:
            connection.execute(
                update(sources_table)
                .where(sources_table.c.name == name)
                .values(**changes, updated_at=now)
            )

    # Subscribers ----------------------------------------------------------------------

    def upsert_subscriber(
        self,
        sub: Subscriber,
        origin: str,
        now: datetime,
        *,
        status: str | None = None,
        keep_if_edited: bool = False,
    ) -> str:
        """Insert or update one subscriber; "added", "updated" or "unchanged".

        `status` None leaves an existing subscriber's status alone (an import or the config seed
        list never resubscribes someone who left); `keep_if_edited` leaves rows that someone changed
        through the CLI or an import as they are (the config is only a seed list).
        """
        values = _subscriber_values(sub)
        with self.engine.begin() as connection:
            row = connection.execute(
                select(subscribers_table).where(subscribers_table.c.email == sub.email)
            ).first()
            if row is None:
                connection.execute(
                    insert(subscribers_table).values(
                        email=sub.email,
                        status=status or "active",
                        origin=origin,
                        permanent_failures=0,
                        last_error="",
                        created_at=now,
                        updated_at=now,
                        **values,
                    )
                )
                return "added"
            if keep_if_edited and row.origin != origin:
                return "unchanged"
            changes = {k: v for k, v in values.items() if getattr(row, k) != v}
            if status is not None and status != row.status:
                changes["status"] = status
                if status == "active":
                    changes.update(permanent_failures=0, unsubscribed_at=None)
            if not changes:
                return "unchanged"
            connection.execute(
                update(subscribers_table)
                .where(subscribers_table.c.email == sub.email)
                .values(origin=origin, updated_at=now, **changes)
            )
            return "updated"

    def subscriber_records(self, status: str | None = "active") -> list[SubscriberRecord]:
        """Subscribers by address; only those with `status` unless it is None."""
        query = select(subscribers_table).order_by(subscribers_table.c.email)
        if status is not None:
            query = query.where(subscribers_table.c.status == status)
        with self.engine.connect() as connection:
            return [_record_from_row(row) for row in connection.execute(query)]

    def subscriber_record(self, email: str) -> SubscriberRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscribers_table).where(subscribers_table.c.email == email.lower())
            ).first()
        return _record_from_row(row) if row else None

    def remove_subscriber(self, email: str) -> bool:
        """Delete a subscriber (the ledger keeps its history); False if there was none."""
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(subscribers_table).where(subscribers_table.c.email == email.lower())
            )
        return bool(result.rowcount)

    def unsubscribe(self, email: str, now: datetime) -> bool:
        """Stop sending to `email`; True if a subscriber by that address exists."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(subscribers_table)
                .where(subscribers_table.c.email == email.lower())
                .values(status="unsubscribed", unsubscribed_at=now, updated_at=now)
            )
        return bool(result.rowcount)

    def digest_articles(
        self, wanted: ArticleFilter, email: str, period: str, limit: int | None = None
    ) -> list[Article]:
        """Articles for a subscriber's digest: matching, and in none of their other digests."""
        earlier = (
            select(digest_articles_table.c.article_id)
            .join(
                deliveries_table,
                (deliveries_table.c.email == digest_articles_table.c.email)
                & (deliveries_table.c.period == digest_articles_table.c.period),
            )
            .where(
                digest_articles_table.c.email == email,
                digest_articles_table.c.period != period,
                # a digest in flight at a crash may have arrived: count it as delivered
                deliveries_table.c.status.in_(("sending", "sent")),
            )
        )
        query = (
            select(articles_table)
            .where(*self._conditions(wanted), articles_table.c.id.not_in(earlier))
            .order_by(articles_table.c.published.desc(), articles_table.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            tags = self._tags_for(connection, [r.id for r in rows])
        return [_article_from_row(r, tags.get(r.id, ())) for r in rows]

    def digest_article_ids(self, email: str, period: str) -> set[str]:
        with self.engine.connect() as connection:
            return set(
                connection.execute(
                    select(digest_articles_table.c.article_id).where(
                        digest_articles_table.c.email == email,
                        digest_articles_table.c.period == period,
                    )
                ).scalars()
            )

    def begin_delivery(
        self,
        period: str,
        email: str,
        message_id: str,
        article_ids: Sequence[str],
        now: datetime,
    ) -> None:
        """Mark one digest in flight and record what it holds, in one transaction."""
        with self.engine.begin() as connection:
            key = (deliveries_table.c.period == period) & (deliveries_table.c.email == email)
            values = {
                "status": "sending",
                "message_id": message_id,
                "articles": len(article_ids),
                "error": "",
                "updated_at": now,
            }
            if connection.execute(select(deliveries_table.c.attempts).where(key)).first() is None:
                connection.execute(
                    insert(deliveries_table).values(
                        period=period, email=email, attempts=1, **values
                    )
                )
            else:
                connection.execute(
                    update(deliveries_table)
                    .where(key)
                    .values(attempts=deliveries_table.c.attempts + 1, **values)
                )
            connection.execute(
                delete(digest_articles_table).where(
                    digest_articles_table.c.email == email, digest_articles_table.c.period == period
                )
            )
            if article_ids:
                connection.execute(
                    insert(digest_articles_table),
                    [{"email": email, "period": period, "article_id": a} for a in article_ids],
                )

    def finish_delivery(
        self,
        period: str,
        email: str,
        status: str,
        now: datetime,
        error: str = "",
        max_permanent_failures: int = 3,
    ) -> None:
        """Record how a delivery ended: sent, failed (permanent 5xx) or deferred (transient).

        A permanent failure counts against the subscriber, who stops getting digests after
        `max_permanent_failures` in a row; a success clears the count.
        """
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries_table)
                .where(deliveries_table.c.period == period, deliveries_table.c.email == email)
                .values(status=status, error=error, updated_at=now)
            )
            subscriber = subscribers_table.c.email == email
            if status == "sent":
                connection.execute(
                    update(subscribers_table)
                    .where(subscriber, subscribers_table.c.permanent_failures != 0)
                    .values(permanent_failures=0)
                )
            elif status == "failed":
                connection.execute(
                    update(subscribers_table)
                    .where(subscriber)
                    .values(
                        permanent_failures=subscribers_table.c.permanent_failures + 1,
                        last_error=error,
                        last_error_at=now,
                        updated_at=now,
                    )
                )
                connection.execute(
                    update(subscribers_table)
                    .where(
                        subscriber,
                        subscribers_table.c.status == "active",
                        subscribers_table.c.permanent_failures >= max_permanent_failures,
                    )
                    .values(status="bounced")
                )

    def meta_value(self, key: str) -> str | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(meta_table.c.value).where(meta_table.c.key == key)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def set_meta_value_once(self, key: str, value: str) -> str:
        """Store `value` under `key` unless one is there already; return the value kept."""
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(meta_table).values(key=key, value=value))
        except SQLAlchemyError:
            pass  # another process stored it first: theirs wins
        kept = self.meta_value(key)
        if kept is None:
            raise StoreError(f"cannot store {key} in the database")
        return kept

    def delete_articles_older_than(self, cutoff: datetime) -> int:
        """Drop articles published and ingested before `cutoff` (with their tags)."""
        old = select(articles_table.c.id).where(
            articles_table.c.published < cutoff, articles_table.c.ingested_at < cutoff
        )
        with self.engine.begin() as connection:
            ids = [row[0] for row in connection.execute(old)]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for dependent in (
                    tags_table.c.article_id,
                    article_sources_table.c.article_id,
                    feed_items_table.c.article_id,
                ):
                    connection.execute(delete(dependent.table).where(dependent.in_(chunk)))
                connection.execute(delete(articles_table).where(articles_table.c.id.in_(chunk)))
        return len(ids)

    # Daemon: lock, job history, schedule ----------------------------------------------

    def lock_holder(self, name: str = "daemon") -> LockHolder | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(daemon_lock_table).where(daemon_lock_table.c.name == name)
            ).first()
        if row is None:
            return None
        return LockHolder(row.token, row.pid, row.host, row.started, row.heartbeat)

    def claim_lock(
        self,
        holder: LockHolder,
        replacing: str | None,
        name: str = "daemon",
    ) -> bool:
        """Take the lock row: insert it, or replace the holder whose token is `replacing`.

        Compare-and-swap on the token, so of two daemons racing for a stale lock one wins.
        """
        values = {
            "token": holder.token,
            "pid": holder.pid,
            "host": holder.host,
            "started": holder.started,
            "heartbeat": holder.heartbeat,
        }
        try:
            with self.engine.begin() as connection:
                if replacing is None:
                    connection.execute(insert(daemon_lock_table).values(name=name, **values))
                    return True
                result = connection.execute(
                    update(daemon_lock_table)
                    .where(
                        daemon_lock_table.c.name == name,
                        daemon_lock_table.c.token == replacing,
                    )
                    .values(**values)
                )
                return result.rowcount == 1
        except IntegrityError:
            return False  # another daemon inserted the row first

    def heartbeat_lock(self, token: str, now: datetime, name: str = "daemon") -> bool:
        """Refresh the lock's heartbeat; False when this daemon no longer holds it."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(daemon_lock_table)
                .where(daemon_lock_table.c.name == name, daemon_lock_table.c.token == token)
                .values(heartbeat=now)
            )
        return result.rowcount == 1

    def release_lock(self, token: str, name: str = "daemon") -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(daemon_lock_table).where(
                    daemon_lock_table.c.name == name, daemon_lock_table.c.token == token
                )
            )

    def start_job_run(self, job_id: str, scheduled: datetime | None, started: datetime) -> int:
        """Record that a job started; returns the run's id for `finish_job_run`."""
        with self.engine.begin() as connection:
            result = connection.execute(
                insert(job_runs_table).values(
                    job_id=job_id,
                    scheduled=scheduled,
                    started=started,
                    result="running",
                    error="",
                    detail="",
                )
            )
            key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def set_job_run_scheduled(self, run_id: int, scheduled: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(job_runs_table)
                .where(job_runs_table.c.id == run_id)
                .values(scheduled=scheduled)
            )

    def finish_job_run(
        self, run_id: int, finished: datetime, result: str, error: str = "", detail: str = ""
    ) -> None:
        with self.engine.begin() as connection:
            started = connection.execute(
                select(job_runs_table.c.started).where(job_runs_table.c.id == run_id)
            ).scalar_one()
            connection.execute(
                update(job_runs_table)
                .where(job_runs_table.c.id == run_id)
                .values(
                    finished=finished,
                    duration=max(0.0, (finished - started).total_seconds()),
                    result=result,
                    error=error,
                    detail=detail,
                )
            )

    def record_job_run(
        self,
        job_id: str,
        scheduled: datetime | None,
        started: datetime,
        result: str,
        error: str = "",
        detail: str = "",
    ) -> None:
        """A run that never ran (missed, refused): one row, finished when it was decided."""
        with self.engine.begin() as connection:
            connection.execute(
                insert(job_runs_table).values(
                    job_id=job_id,
                    scheduled=scheduled,
                    started=started,
                    finished=started,
                    duration=0.0,
                    result=result,
                    error=error,
                    detail=detail,
                )
            )

    def interrupt_unfinished_runs(self, now: datetime) -> int:
        """Mark runs a killed daemon left `running` as interrupted (call holding the lock)."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(job_runs_table)
                .where(job_runs_table.c.result == "running")
                .values(result="interrupted", finished=now, error="the daemon stopped mid-run")
            )
        return int(result.rowcount)

    def job_completed(self, job_id: str, scheduled: datetime) -> bool:
        """Whether a run of `job_id` for the slot `scheduled` finished without error."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(job_runs_table.c.id)
                .where(
                    job_runs_table.c.job_id == job_id,
                    job_runs_table.c.scheduled == scheduled,
                    job_runs_table.c.result == "ok",
                )
                .limit(1)
            ).first()
        return found is not None

    def last_job_runs(self) -> dict[str, JobRun]:
        """The latest run of every job, by job id."""
        latest = (
            select(job_runs_table.c.job_id, func.max(job_runs_table.c.id).label("id"))
            .group_by(job_runs_table.c.job_id)
            .subquery()
        )
        query = select(job_runs_table).join(latest, job_runs_table.c.id == latest.c.id)
        with self.engine.connect() as connection:
            return {row.job_id: _job_run_from_row(row) for row in connection.execute(query)}

    def job_runs(self, job_id: str | None = None) -> list[JobRun]:
        """Every recorded run (of one job, or all), oldest first."""
        query = select(job_runs_table).order_by(job_runs_table.c.id)
        if job_id is not None:
            query = query.where(job_runs_table.c.job_id == job_id)
        with self.engine.connect() as connection:
            return [_job_run_from_row(row) for row in connection.execute(query)]

    def prune_job_runs(self, before: datetime) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(job_runs_table).where(
                    job_runs_table.c.started < before, job_runs_table.c.result != "running"
                )
            )
        return int(result.rowcount)

    def save_job_schedule(self, jobs: Sequence[ScheduledJob]) -> None:
        """Replace the published schedule (what `newsdesk status` shows as next runs)."""
        with self.engine.begin() as connection:
            connection.execute(delete(daemon_jobs_table))
            if jobs:
                connection.execute(
                    insert(daemon_jobs_table),
                    [
                        {
                            "job_id": job.job_id,
                            "name": job.name,
                            "trigger": job.trigger,
                            "next_run": job.next_run,
                            "updated_at": job.updated_at,
                        }
                        for job in jobs
                    ],
                )

    def job_schedule(self) -> list[ScheduledJob]:
        with self.engine.connect() as connection:
            query = select(daemon_jobs_table).order_by(daemon_jobs_table.c.job_id)
            rows = connection.execute(query)
            return [
                ScheduledJob(row.job_id, row.name, row.trigger, row.next_run, row.updated_at)
                for row in rows
            ]

    def sent_deliveries(self, periods: Iterable[str]) -> set[tuple[str, str]]:
        """(period, email) pairs of the ledger marked sent, for the given periods."""
        wanted = sorted(set(periods))
        found: set[tuple[str, str]] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    select(deliveries_table.c.period, deliveries_table.c.email).where(
                        deliveries_table.c.period.in_(wanted[start : start + 500]),
                        deliveries_table.c.status == "sent",
                    )
                )
                found.update((row.period, row.email) for row in rows)
        return found

    def sources_in_error(self) -> list[tuple[str, str]]:
        """(source, last error) for every source whose last fetch or read failed."""
        query = (
            select(sources_table.c.name, sources_table.c.last_error)
            .where(sources_table.c.error_count > 0)
            .order_by(sources_table.c.name)
        )
        with self.engine.connect() as connection:
            return [(str(name), str(error)) for name, error in connection.execute(query)]


def _story_keys(article: Article) -> tuple[str, str]:
    url = canonical_url(article.url) if is_web_url(article.url) else ""
    printed = article.fingerprint if len(article.body_text) >= MIN_FINGERPRINT_CHARS else ""
    return url, printed


def _source_from_row(row: Any) -> SourceState:
    return SourceState(
        name=row.name,
        origin=row.origin,
        configured_url=row.configured_url,
        url=row.url,
        kind=row.kind,
        title=row.title,
        enabled=bool(row.enabled),
        etag=row.etag,
        last_modified=row.last_modified,
        last_fetch=row.last_fetch,
        status=row.status,
        http_status=row.http_status,
        items=row.items,
        error_count=row.error_count,
        last_error=row.last_error,
        next_fetch=row.next_fetch,
    )


def _tag_driven(
    drivers: list[tuple[str, tuple[str, ...]]], wanted: ArticleFilter, now: datetime
) -> Any:
    """Ids of a combined filter, read from the tag rows of its places (or topics), newest first.

    Walking a few thousand tag rows beats walking the articles by date and testing each.
    """
    driver = tags_table.alias("driver")
    query = select(driver.c.article_id, driver.c.published).where(
        or_(*(and_(driver.c.kind == kind, driver.c.code.in_(codes)) for kind, codes in drivers)),
        driver.c.published <= now,
    )
    if wanted.topics and drivers[0][0] != "topic":
        query = query.where(
            exists().where(
                tags_table.c.article_id == driver.c.article_id,
                tags_table.c.kind == "topic",
                tags_table.c.code.in_(wanted.topics),
            )
        )
    if wanted.languages:
        query = query.where(
            exists().where(
                articles_table.c.id == driver.c.article_id,
                articles_table.c.language.in_(wanted.languages),
            )
        )
    return query.distinct().order_by(driver.c.published.desc(), driver.c.article_id.desc())


def _parse_utc(stamp: str | datetime) -> datetime:
    """A stored naive-UTC time, as text ("2026-11-23 11:00:00.000000") or as a datetime."""
    moment = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp)
    return moment.replace(tzinfo=UTC)


def _tag_order(tag: Tag) -> tuple[str, float, str]:
    return (tag.kind, -tag.score, tag.code)


def _single_tag(wanted: ArticleFilter) -> tuple[str, str] | None:
    """(kind, code) when the filter is exactly one tag, else None."""
    if wanted.languages or wanted.ingested_after is not None:
        return None
    parts = [
        (kind, codes)
        for kind, codes in (
            ("country", wanted.countries),
            ("subregion", wanted.subregions),
            ("region", wanted.regions),
            ("topic", wanted.topics),
        )
        if codes
    ]
    if len(parts) == 1 and len(parts[0][1]) == 1:
        return parts[0][0], parts[0][1][0]
    return None


def _stamp(value: datetime | None) -> str:
    return value.replace(tzinfo=None).isoformat() if value is not None else ""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (serve, status) never block the writer
    # In WAL mode NORMAL survives a killed process (the digest ledger's promise) without an
    # fsync per commit; only a power cut can lose the last commits (then a digest may repeat).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _redact(url: str) -> str:
    """A database URL without its password, fit for an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "(unparseable URL)"


def _article_row(article: Article, signature: str) -> dict[str, Any]:
    return {
        "id": article.id,
        "title": article.title,
        "summary": article.summary,
        "body_text": article.body_text,
        "body_html": article.body_html,
        "language": article.language,
        "published": article.published,
        "url": article.url,
        "source": article.source,
        "fingerprint": article.fingerprint,
        "tag_signature": signature,
    }


def _tag_row(article_id: str, tag: Tag, published: datetime) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "published": published,
        "kind": tag.kind,
        "code": tag.code,
        "label": tag.label,
        "score": tag.score,
        "evidence": json.dumps(list(tag.evidence), ensure_ascii=False),
    }


def _article_from_row(row: Any, tags: tuple[Tag, ...]) -> Article:
    return Article(
        id=row.id,
        title=row.title,
        summary=row.summary,
        body_text=row.body_text,
        body_html=row.body_html,
        language=row.language,
        published=row.published,
        url=row.url,
        source=row.source,
        fingerprint=row.fingerprint,
        tags=tags,
    )


def _job_run_from_row(row: Any) -> JobRun:
    return JobRun(
        row.job_id,
        row.scheduled,
        row.started,
        row.finished,
        row.duration,
        row.result,
        row.error,
        row.detail,
    )


def _subscriber_values(sub: Subscriber) -> dict[str, Any]:
    return {
        "name": sub.name,
        "regions": json.dumps(list(sub.regions), ensure_ascii=False),
        "countries": json.dumps(list(sub.countries)),
        "topics": json.dumps(list(sub.topics)),
        "language": sub.language,
        "frequency": sub.frequency,
        "send_time": sub.time,
        "timezone": sub.timezone,
    }


def _record_from_row(row: Any) -> SubscriberRecord:
    return SubscriberRecord(
        subscriber=Subscriber(
            email=row.email,
            name=row.name,
            regions=tuple(json.loads(row.regions)),
            countries=tuple(json.loads(row.countries)),
            topics=tuple(json.loads(row.topics)),
            language=row.language,
            frequency=row.frequency,
            timezone=row.timezone,
            time=row.send_time,
        ),
        status=row.status,
        origin=row.origin,
        permanent_failures=row.permanent_failures,
        last_error=row.last_error,
    )

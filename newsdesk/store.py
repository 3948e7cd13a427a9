"""Storage behind SQLAlchemy Core: schema, migrations and every query (SQLite or PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from newsdesk.errors import StoreError
from newsdesk.models import Article, Subscriber, Tag

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
    Index("ix_article_tags_kind_code", "kind", "code"),
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


# Append-only: each function moves the schema from version N to N+1.
def _migration_subscribers(connection: Connection) -> None:
    for table in (subscribers_table, digest_articles_table):
        table.create(connection, checkfirst=True)


MIGRATIONS: list[Callable[[Connection], None]] = [_migration_1, _migration_subscribers]
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
class TagCount:
    kind: str
    code: str
    label: str
    count: int


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
        added = updated = unchanged = 0
        with self.engine.begin() as connection:
            existing = self._existing_signatures(connection, [a.id for a in articles])
            for article in articles:
                signature = tag_signature(article.tags)
                row = _article_row(article, signature)
                previous = existing.get(article.id)
                if previous is None:
                    connection.execute(
                        insert(articles_table).values(**row, ingested_at=now, updated_at=now)
                    )
                    added += 1
                elif previous != (article.fingerprint, signature):
                    connection.execute(
                        update(articles_table)
                        .where(articles_table.c.id == article.id)
                        .values(**row, updated_at=now)
                    )
                    connection.execute(
                        delete(tags_table).where(tags_table.c.article_id == article.id)
                    )
                    updated += 1
                else:
                    unchanged += 1
                    continue
                existing[article.id] = (article.fingerprint, signature)
                if article.tags:
                    connection.execute(
                        insert(tags_table), [_tag_row(article.id, t) for t in article.tags]
                    )
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
        query = (
            select(tags_table.c.kind, tags_table.c.code, func.max(tags_table.c.label), func.count())
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


def _tag_row(article_id: str, tag: Tag) -> dict[str, Any]:
    return {
        "article_id": article_id,
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

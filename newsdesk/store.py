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
from newsdesk.models import Article, Tag

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


def _migration_1(connection: Connection) -> None:
    for table in (meta_table, articles_table, tags_table, deliveries_table):
        table.create(connection, checkfirst=True)


# Append-only: each function moves the schema from version N to N+1.
MIGRATIONS: list[Callable[[Connection], None]] = [_migration_1]
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
        new_rows: list[dict[str, Any]] = []
        new_tags: list[dict[str, Any]] = []
        updated = unchanged = 0
        with self.engine.begin() as connection:
            existing = self._existing_signatures(connection, [a.id for a in articles])
            for article in articles:
                signature = tag_signature(article.tags)
                row = _article_row(article, signature)
                previous = existing.get(article.id)
                if previous == (article.fingerprint, signature):
                    unchanged += 1
                    continue
                existing[article.id] = (article.fingerprint, signature)
                tag_rows = [_tag_row(article.id, t) for t in article.tags]
                if previous is None:
                    new_rows.append({**row, "ingested_at": now, "updated_at": now})
                    new_tags.extend(tag_rows)
                    continue
                connection.execute(
                    update(articles_table)
                    .where(articles_table.c.id == article.id)
                    .values(**row, updated_at=now)
                )
                connection.execute(delete(tags_table).where(tags_table.c.article_id == article.id))
                if tag_rows:
                    connection.execute(insert(tags_table), tag_rows)
                updated += 1
            # New articles go in as two batched statements rather than two per article.
            if new_rows:
                connection.execute(insert(articles_table), new_rows)
            if new_tags:
                connection.execute(insert(tags_table), new_tags)
        return SaveResult(added=len(new_rows), updated=updated, unchanged=unchanged)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (serve, status) never block the writer
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

"""The store on a real SQLite file, and on PostgreSQL when one is reachable (else skipped)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from conftest import NOW

from newsdesk.models import Article, Tag
from newsdesk.store import SCHEMA_VERSION, ArticleFilter, Store


def make_article(identifier: str, hours_ago: int, tags: tuple[Tag, ...]) -> Article:
    return Article(
        id=identifier,
        title=f"Title {identifier}",
        summary="Summary",
        body_text="Body",
        body_html="<p>Body</p>",
        language="en",
        published=NOW - timedelta(hours=hours_ago),
        url=f"https://example.org/{identifier}",
        source="test",
        fingerprint=f"fp-{identifier}",
        tags=tags,
    )


KP = Tag("country", "KP", "North Korea", 5.0, ("Pyongyang",))
ASIA = Tag("region", "142", "Asia", 5.0, ("KP",))
FR = Tag("country", "FR", "France", 3.0, ("Paris",))
SPORT = Tag("topic", "medtop:15000000", "sport", 4.0, ("match",))


def test_save_is_idempotent_and_updates_changed_articles(store: Store) -> None:
    articles = [make_article("a", 1, (KP, ASIA)), make_article("b", 2, (FR, SPORT))]
    first = store.save_articles(articles, NOW)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = store.save_articles(articles, NOW)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    edited = replace(articles[0], title="New title", fingerprint="fp-a2", tags=(KP,))
    third = store.save_articles([edited], NOW + timedelta(hours=1))
    assert (third.added, third.updated) == (0, 1)
    stored = store.article("a")
    assert stored is not None and stored.title == "New title" and stored.tags == (KP,)
    assert stored.published == articles[0].published and stored.published.tzinfo is not None
    assert store.count_articles() == 2
    assert store.schema_version() == SCHEMA_VERSION


def test_filters_order_and_limits(store: Store) -> None:
    store.save_articles(
        [
            make_article("old", 5, (KP, ASIA, SPORT)),
            make_article("new", 1, (KP, ASIA)),
            make_article("fr", 3, (FR, SPORT)),
        ],
        NOW,
    )
    assert [a.id for a in store.articles(ArticleFilter())] == ["new", "fr", "old"]
    assert [a.id for a in store.articles(ArticleFilter(), limit=2)] == ["new", "fr"]
    assert [a.id for a in store.articles(ArticleFilter(regions=("142",)))] == ["new", "old"]
    both = ArticleFilter(countries=("KP",), topics=("medtop:15000000",))
    assert [a.id for a in store.articles(both)] == ["old"]
    either_place = ArticleFilter(countries=("FR",), regions=("142",))
    assert len(store.articles(either_place)) == 3
    counts = {(c.kind, c.code): c.count for c in store.tag_counts()}
    assert counts[("country", "KP")] == 2 and counts[("topic", "medtop:15000000")] == 2


def test_delivery_ledger(store: Store) -> None:
    assert store.delivery("2026-11-23", "a@example.org") is None
    store.record_delivery("2026-11-23", "a@example.org", "sending", "<id@x>", 3, NOW)
    store.record_delivery("2026-11-23", "a@example.org", "sent", "<id@x>", 3, NOW)
    row = store.delivery("2026-11-23", "a@example.org")
    assert row is not None and row["status"] == "sent" and row["attempts"] == 2
    assert store.last_delivered("a@example.org") == NOW

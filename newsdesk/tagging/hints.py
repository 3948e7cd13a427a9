"""A source's region and topic hints: tags for articles the text alone could not place.

A local paper's feed rarely names its own country in every story; its `[[sources]]` entry can
(`countries = ["FR"]`). Hints fill a gap, they never override: an article that tagging already
placed (or gave a topic) keeps what tagging found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from newsdesk.models import Article, Tag
from newsdesk.tagging.geography import countries as country_table
from newsdesk.tagging.taxonomy import topics as topic_table

HINT_SCORE = 1.0


def apply_hints(
    article: Article, source: str, countries: Sequence[str], topics: Sequence[str]
) -> Article:
    """The article with hint tags added for each kind (places, topics) it has none of."""
    evidence = (f"source hint: {source}",)
    added: list[Tag] = []
    if countries and not article.tags_of("country"):
        added.extend(_place_tags(countries, evidence))
    if topics and not article.tags_of("topic"):
        table = topic_table()
        added.extend(
            Tag("topic", code, table[code].label("en"), HINT_SCORE, evidence)
            for code in topics
            if code in table
        )
    if not added:
        return article
    return dataclasses.replace(article, tags=(*article.tags, *added))


def _place_tags(codes: Sequence[str], evidence: tuple[str, ...]) -> list[Tag]:
    table = country_table()
    tags: list[Tag] = []
    areas: dict[tuple[str, str, str], None] = {}
    for code in codes:
        country = table.get(code)
        if country is None:
            continue
        tags.append(Tag("country", code, country.name, HINT_SCORE, evidence))
        if country.subregion:
            areas[("subregion", country.subregion_code, country.subregion)] = None
        if country.region:
            areas[("region", country.region_code, country.region)] = None
    for kind, code, name in areas:
        tags.append(Tag(kind, code, name, HINT_SCORE, evidence))  # type: ignore[arg-type]
    return tags

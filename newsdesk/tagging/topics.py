"""IPTC Media Topics from weighted multilingual lexicons: multi-label, scored, explainable."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from newsdesk.models import Tag
from newsdesk.tagging.folding import fold
from newsdesk.tagging.geography import DATA_DIR
from newsdesk.tagging.matcher import PhraseMatcher
from newsdesk.tagging.taxonomy import ancestors, topics
from newsdesk.tagging.zones import ZONE_WEIGHTS, Zones

LEXICON_FILE = DATA_DIR / "topic_lexicon.tsv"
MIN_SCORE = 2.0  # below this a topic was only brushed against
RELATIVE_SCORE = 0.3  # ... or it is dwarfed by the primary topic
FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Cue:
    code: str
    language: str
    weight: float
    phrase: str
    context: tuple[str, ...]  # folded words; the cue counts only if one of them occurs


@dataclass(frozen=True, slots=True)
class CueHit:
    cue: Cue
    surface: str
    zone: str
    start: int
    weight: float


@dataclass(frozen=True, slots=True)
class TopicAnalysis:
    hits: tuple[CueHit, ...]
    scores: dict[str, float]  # every topic with evidence, parents including their children
    kept: tuple[str, ...]  # best first, the primary (top-level) topic first


@dataclass(frozen=True)
class Lexicon:
    matchers: dict[str, PhraseMatcher[Cue]]  # one automaton per language
    context_matcher: PhraseMatcher[str]  # every context word, found in one pass
    ancestors: dict[str, tuple[str, ...]]  # topic -> its parents, nearest first


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The shipped lexicon as one automaton (built once per process)."""
    with LEXICON_FILE.open(encoding="utf-8", newline="") as handle:
        rows = [line for line in handle if line.strip() and not line.startswith("#")]
    cues = [
        Cue(
            code=row["code"],
            language=row["lang"],
            weight=float(row["weight"]),
            phrase=row["phrase"].strip(),
            # Folded once here, as the context matcher reports them.
            context=tuple(
                fold_words(c) for c in (row.get("context") or "").split("|") if c.strip()
            ),
        )
        for row in csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE)
        if row["code"] in topics()
    ]
    by_language: dict[str, list[Cue]] = {}
    for cue in cues:
        by_language.setdefault(cue.language, []).append(cue)
    context_words = {word for cue in cues for word in cue.context}
    return Lexicon(
        matchers={
            language: PhraseMatcher((cue.phrase, cue) for cue in members)
            for language, members in by_language.items()
        },
        context_matcher=PhraseMatcher((word, word) for word in context_words),
        ancestors={code: tuple(ancestors(code)) for code in topics()},
    )


def fold_words(phrase: str) -> str:
    """A phrase as the context matcher reports it: folded, single-spaced, its `*` kept."""
    star = "*" if phrase.strip().endswith("*") else ""
    return " ".join(fold(phrase.strip().rstrip("*")).split()) + star


def analyze(zones: Zones, language: str, lex: Lexicon | None = None) -> TopicAnalysis:
    """Every cue found, each topic's score (children rolled into parents), and the topics kept."""
    lex = lex or lexicon()
    matcher = lex.matchers.get(language) or lex.matchers[FALLBACK_LANGUAGE]
    folded = zones.folded
    hits: list[CueHit] = []
    repeats: dict[tuple[str, str], int] = defaultdict(int)
    context_found: set[str] | None = None  # computed on the first cue that needs it
    for match in matcher.find(folded):
        for cue in match.payloads:
            if cue.context:
                if context_found is None:
                    context_found = {m.payloads[0] for m in lex.context_matcher.find(folded)}
                if not any(word in context_found for word in cue.context):
                    continue
            zone = zones.zone(match.start)
            # The same word repeated adds less each time: ten "match"es are not ten topics' worth.
            repeats[(cue.code, cue.phrase)] += 1
            weight = ZONE_WEIGHTS[zone] * cue.weight / repeats[(cue.code, cue.phrase)]
            surface = zones.text[match.start : match.end]
            hits.append(CueHit(cue, surface, zone, match.start, weight))
    scores: dict[str, float] = defaultdict(float)
    for hit in hits:
        scores[hit.cue.code] += hit.weight
        for parent in lex.ancestors.get(hit.cue.code, ()):
            scores[parent] += hit.weight
    table = topics()
    top_scores = {c: s for c, s in scores.items() if c in table and not table[c].parent}
    best_top = max(top_scores.values(), default=0.0)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    kept = [c for c, s in ranked if s >= MIN_SCORE and s >= RELATIVE_SCORE * best_top]
    kept_top = [c for c in kept if c in top_scores]
    if kept_top:  # the primary topic is the best top-level one, and it leads the list
        kept.remove(kept_top[0])
        kept.insert(0, kept_top[0])
    return TopicAnalysis(hits=tuple(hits), scores=dict(scores), kept=tuple(kept))


def topic_tags(analysis: TopicAnalysis) -> list[Tag]:
    """Topic tags, primary first, each with the words that produced it."""
    table = topics()
    lineage = lexicon().ancestors
    evidence: dict[str, list[str]] = defaultdict(list)
    for hit in analysis.hits:
        for code in (hit.cue.code, *lineage.get(hit.cue.code, ())):
            evidence[code].append(hit.surface)
    return [
        Tag(
            "topic",
            code,
            table[code].label("en"),
            round(analysis.scores[code], 3),
            tuple(dict.fromkeys(evidence[code])),
        )
        for code in analysis.kept
    ]

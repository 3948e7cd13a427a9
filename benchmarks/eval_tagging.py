"""Tagging quality on the labelled sets in tests/eval/: precision, recall, F1 and accuracy.

    python benchmarks/eval_tagging.py [--regions FILE] [--topics FILE] [--errors]

Regions: micro precision/recall/F1 for countries and for M49 sub-regions.
Topics: per-topic precision and recall, primary-topic accuracy and macro-F1 (top level).
Held-out: both, on tests/eval/heldout.jsonl, written without sight of the tagger's data or of
the other two sets, as a check that the figures above generalise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk.tagging.geography import countries  # noqa: E402
from newsdesk.tagging.tagger import Tagger  # noqa: E402
from newsdesk.tagging.taxonomy import top_level, topics  # noqa: E402


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, predicted: set[str], expected: set[str]) -> None:
        self.tp += len(predicted & expected)
        self.fp += len(predicted - expected)
        self.fn += len(expected - predicted)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load(path: Path) -> list[dict[str, object]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def evaluate_regions(
    tagger: Tagger, items: list[dict[str, object]], show_errors: bool
) -> dict[str, float]:
    table = countries()
    country_counts, subregion_counts = Counts(), Counts()
    for item in items:
        analysis = tagger.analyze(str(item["title"]), str(item["body"]), str(item["lang"]))
        predicted = {t.code for t in analysis.tags if t.kind == "country"}
        expected = set(item["countries"])  # type: ignore[arg-type]
        country_counts.add(predicted, expected)
        subregion_counts.add(
            {table[c].subregion for c in predicted if c in table},
            {table[c].subregion for c in expected if c in table},
        )
        if show_errors and predicted != expected:
            print(
                f"  {item['id']} ({item['lang']}) expected {sorted(expected)} got {sorted(predicted)}"
            )
    return {
        "country_precision": country_counts.precision,
        "country_recall": country_counts.recall,
        "country_f1": country_counts.f1,
        "subregion_precision": subregion_counts.precision,
        "subregion_recall": subregion_counts.recall,
        "subregion_f1": subregion_counts.f1,
    }


def evaluate_topics(
    tagger: Tagger, items: list[dict[str, object]], show_errors: bool
) -> dict[str, object]:
    per_topic: dict[str, Counts] = {code: Counts() for code, t in topics().items() if not t.parent}
    primary_hits = 0
    confusion: Counter[tuple[str, str]] = Counter()
    for item in items:
        analysis = tagger.analyze(str(item["title"]), str(item["body"]), str(item["lang"]))
        kept = [t.code for t in analysis.tags if t.kind == "topic"]
        predicted = {top_level(c) for c in kept}
        primary = kept[0] if kept else ""
        expected = set(item["topics"])  # type: ignore[arg-type]
        for code, counts in per_topic.items():
            counts.add(predicted & {code}, expected & {code})
        if primary == item["primary"]:
            primary_hits += 1
        else:
            confusion[(str(item["primary"]), primary)] += 1
            if show_errors:
                print(
                    f"  {item['id']} ({item['lang']}) primary {item['primary']} got {primary or '-'}"
                )
    used = {code: c for code, c in per_topic.items() if c.tp + c.fn}
    return {
        "primary_accuracy": primary_hits / len(items),
        "macro_f1": sum(c.f1 for c in used.values()) / len(used),
        "per_topic": {code: (c.precision, c.recall, c.f1) for code, c in used.items()},
        "confusion": confusion.most_common(8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=Path, default=REPO / "tests" / "eval" / "regions.jsonl")
    parser.add_argument("--topics", type=Path, default=REPO / "tests" / "eval" / "topics.jsonl")
    parser.add_argument(
        "--heldout",
        type=Path,
        default=REPO / "tests" / "eval" / "heldout.jsonl",
        help="a set written apart from the tagger's data, labelled for both (skipped if absent)",
    )
    parser.add_argument("--errors", action="store_true", help="list every wrong article")
    args = parser.parse_args()
    tagger = Tagger()
    region_items = load(args.regions)
    print(f"regions: {len(region_items)} articles")
    for name, value in evaluate_regions(tagger, region_items, args.errors).items():
        print(f"  {name:20s} {value:.3f}")
    topic_items = load(args.topics)
    print(f"topics: {len(topic_items)} articles")
    result = evaluate_topics(tagger, topic_items, args.errors)
    print(f"  primary_accuracy     {result['primary_accuracy']:.3f}")
    print(f"  macro_f1             {result['macro_f1']:.3f}")
    table = topics()
    for code, (p, r, f) in sorted(result["per_topic"].items()):  # type: ignore[attr-defined]
        print(f"    {code} {table[code].label():42s} P {p:.2f}  R {r:.2f}  F1 {f:.2f}")
    print("  most frequent primary confusions (expected, got):", result["confusion"])
    if args.heldout.exists():
        heldout = load(args.heldout)
        print(f"held-out: {len(heldout)} articles (regions and topics)")
        for name, value in evaluate_regions(tagger, heldout, args.errors).items():
            print(f"  {name:20s} {value:.3f}")
        held_topics = evaluate_topics(tagger, heldout, args.errors)
        print(f"  primary_accuracy     {held_topics['primary_accuracy']:.3f}")
        print(f"  macro_f1             {held_topics['macro_f1']:.3f}")


if __name__ == "__main__":
    main()

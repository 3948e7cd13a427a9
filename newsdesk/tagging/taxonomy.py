"""IPTC Media Topics: codes, parents and labels, read from data/iptc_topics.tsv."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from newsdesk.tagging.geography import DATA_DIR

TOPICS_FILE = DATA_DIR / "iptc_topics.tsv"
URI_BASE = "http://cv.iptc.org/newscodes/mediatopic/"


@dataclass(frozen=True, slots=True)
class Topic:
    code: str  # "medtop:16000000"
    parent: str  # "" at the top level
    labels: dict[str, str]  # language -> label

    def label(self, language: str = "en") -> str:
        return self.labels.get(language) or self.labels["en"]

    @property
    def uri(self) -> str:
        return URI_BASE + self.code.split(":", 1)[1]


@lru_cache(maxsize=1)
def topics() -> dict[str, Topic]:
    """Every topic of the shipped taxonomy, by code."""
    with TOPICS_FILE.open(encoding="utf-8", newline="") as handle:
        rows = [line for line in handle if line.strip() and not line.startswith("#")]
    result: dict[str, Topic] = {}
    for row in csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE):
        labels = {
            key.removeprefix("label_"): value.strip()
            for key, value in row.items()
            if key.startswith("label_") and value and value.strip()
        }
        result[row["code"]] = Topic(code=row["code"], parent=row["parent"] or "", labels=labels)
    return result


def top_level(code: str) -> str:
    """The top-level ancestor of a topic code (itself when it is top level)."""
    table = topics()
    seen: set[str] = set()
    while code in table and table[code].parent and code not in seen:
        seen.add(code)
        code = table[code].parent
    return code


def ancestors(code: str) -> list[str]:
    """Parents of a topic, nearest first."""
    table = topics()
    chain: list[str] = []
    while code in table and table[code].parent and table[code].parent not in chain:
        code = table[code].parent
        chain.append(code)
    return chain

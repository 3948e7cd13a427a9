"""Tagging speed and memory: gazetteer build and cache load, per-article time, memory.

    python benchmarks/bench_tagging.py

Targets (issue 3 and 4): automaton built from scratch <= 3 s, loaded from cache <= 300 ms,
regions for a 5 KB article <= 0.5 ms median, topics for a 5 KB article <= 0.5 ms median,
gazetteer memory <= 150 MB. Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk.tagging import gazetteer, regions, topics  # noqa: E402
from newsdesk.tagging.zones import split_zones  # noqa: E402

LOAD_SNIPPET = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
start = time.perf_counter()
from newsdesk.tagging import gazetteer
gazetteer.load(50_000, Path({cache!r}))
print(time.perf_counter() - start)
"""


def five_kb_articles() -> list[tuple[str, str, str]]:
    """Articles from the evaluation sets, each repeated up to about 5 KB."""
    items = []
    for name in ("regions.jsonl", "topics.jsonl"):
        for line in (REPO / "tests" / "eval" / name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            body = item["body"]
            while len(body) < 5000:
                body += "\n\n" + item["body"]
            items.append((item["title"], body[:5000], item["lang"]))
    return items


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    built = gazetteer.build(50_000)
    build_seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with tempfile.TemporaryDirectory() as cache:
        gazetteer.load(50_000, Path(cache))  # writes the cache
        loads = [
            float(
                subprocess.run(
                    [sys.executable, "-c", LOAD_SNIPPET.format(repo=str(REPO), cache=cache)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(3)
        ]

    lexicon = topics.lexicon()
    articles = five_kb_articles()
    region_times, topic_times = [], []
    for title, body, language in articles:
        zones = split_zones(title, body)
        begin = time.perf_counter()
        regions.region_tags(regions.analyze(zones, language, built))
        middle = time.perf_counter()
        topics.topic_tags(topics.analyze(zones, language, lexicon))
        region_times.append(middle - begin)
        topic_times.append(time.perf_counter() - middle)

    both = [r + t for r, t in zip(region_times, topic_times, strict=True)]
    print(f"gazetteer names            {built.matcher.size}")
    print(f"automaton built            {build_seconds:.2f} s (target <= 3 s)")
    print(
        f"loaded from cache          {min(loads) * 1000:.0f} ms best of 3, fresh process (target <= 300 ms)"
    )
    print(
        f"gazetteer memory           {rss_after - rss_before:.0f} MB peak RSS growth (target <= 150 MB)"
    )
    print(
        f"regions, 5 KB article      {median_ms(region_times):.3f} ms median over {len(articles)} (target <= 0.5 ms)"
    )
    print(f"topics, 5 KB article       {median_ms(topic_times):.3f} ms median (target <= 0.5 ms)")
    print(
        f"both                       {median_ms(both):.3f} ms median = {1 / statistics.median(both):.0f} articles/s"
    )


if __name__ == "__main__":
    main()

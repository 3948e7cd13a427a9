"""Feed figures: a full build, a rebuild with nothing new, and `newsdesk serve` under load.

    python benchmarks/bench_feeds.py [--articles 100000] [--feeds 200] [--items 100]
                                     [--runs 3] [--requests 20000] [--connections 32]

Fills a real SQLite store with synthetic, already-tagged articles (bulk inserts: tagging is
measured by bench_pipeline.py), with as many countries as it takes to reach --feeds feeds, then
times the build of every feed in RSS, Atom and JSON Feed (first with every item to render, then
with the items the first build stored), a rebuild with nothing new, and a rebuild after one new
article. Finally it starts `newsdesk serve` as a subprocess on a free loopback port and sends
--requests conditional GETs (If-None-Match, so each answer is a 304) over --connections
keep-alive connections from an asyncio client. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk import feedsite, pipeline  # noqa: E402
from newsdesk.config import load_config  # noqa: E402
from newsdesk.models import Article, Tag  # noqa: E402
from newsdesk.store import (  # noqa: E402
    Store,
    articles_table,
    feed_items_table,
    tag_signature,
    tags_table,
)
from newsdesk.tagging.geography import countries  # noqa: E402
from newsdesk.tagging.taxonomy import topics  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LANGUAGES = ["en", "en", "en", "fr", "fr", "de", "es", "it"]
CUSTOM_FEEDS = 10
WORDS = [
    "government",
    "minister",
    "election",
    "economy",
    "market",
    "trade",
    "health",
    "hospital",
    "vaccine",
    "climate",
    "storm",
    "flood",
    "court",
    "ruling",
    "police",
    "strike",
    "union",
    "football",
    "match",
    "team",
    "science",
    "study",
    "researchers",
    "energy",
    "oil",
    "gas",
    "price",
    "inflation",
    "bank",
    "budget",
    "parliament",
    "vote",
    "talks",
    "border",
]


def pick_places(wanted_feeds: int, top: list[str], second: list[str]) -> list[str]:
    """Enough countries (each with its sub-region and region) to make `wanted_feeds` feeds."""
    table = countries()
    chosen: list[str] = []
    fixed = 1 + CUSTOM_FEEDS + len(top) + len(second) + len(set(LANGUAGES))
    for code in sorted(table):
        subregions = {table[c].subregion_code for c in chosen}
        regions = {table[c].region_code for c in chosen}
        if fixed + len(chosen) + len(subregions) + len(regions) >= wanted_feeds:
            break
        if table[code].region_code and table[code].subregion_code:
            chosen.append(code)
    return chosen


def make_articles(
    count: int, places: list[str], top: list[str], second: list[str]
) -> list[Article]:
    rng = random.Random(5)
    table = countries()
    taxonomy = topics()
    articles = []
    for index in range(count):
        language = rng.choice(LANGUAGES)
        tags: dict[tuple[str, str], Tag] = {}
        for code in rng.sample(places, rng.choice((1, 1, 2))):
            country = table[code]
            tags[("country", code)] = Tag("country", code, country.name, 2.0, (country.name,))
            tags[("subregion", country.subregion_code)] = Tag(
                "subregion", country.subregion_code, country.subregion, 1.5
            )
            tags[("region", country.region_code)] = Tag(
                "region", country.region_code, country.region, 1.0
            )
        child = rng.choice(second)
        parent = taxonomy[child].parent
        for code in {parent, child, rng.choice(top)}:
            tags[("topic", code)] = Tag("topic", code, taxonomy[code].label(), 3.0, ("word",))
        words = [rng.choice(WORDS) for _ in range(300)]
        paragraphs = [" ".join(words[i : i + 60]).capitalize() + "." for i in range(0, 300, 60)]
        body_html = "\n".join(f"<p>{p}</p>" for p in paragraphs)
        body_html += f'\n<p>See <a href="/related/{index}">related coverage</a>.</p>'
        title = " ".join(words[:9]).capitalize()
        articles.append(
            Article(
                id=f"{index:016x}",
                title=title,
                summary=paragraphs[0][:280],
                body_text="\n\n".join(paragraphs),
                body_html=body_html,
                language=language,
                published=NOW - timedelta(minutes=index * 3 + rng.randint(0, 2)),
                url=f"https://wire.example/{language}/{index}",
                source="Bench Wire",
                fingerprint=f"{index:032x}",
                tags=tuple(tags.values()),
            )
        )
    return articles


def bulk_insert(store: Store, articles: list[Article]) -> None:
    """Executemany straight into the tables: the set-up, not what is measured."""
    with store.engine.begin() as connection:
        for start in range(0, len(articles), 5000):
            chunk = articles[start : start + 5000]
            connection.execute(
                articles_table.insert(),
                [
                    {
                        "id": a.id,
                        "title": a.title,
                        "summary": a.summary,
                        "body_text": a.body_text,
                        "body_html": a.body_html,
                        "language": a.language,
                        "published": a.published,
                        "url": a.url,
                        "source": a.source,
                        "fingerprint": a.fingerprint,
                        "tag_signature": tag_signature(a.tags),
                        "ingested_at": NOW - timedelta(days=1),
                        "updated_at": NOW - timedelta(days=1),
                    }
                    for a in chunk
                ],
            )
            connection.execute(
                tags_table.insert(),
                [
                    {
                        "article_id": a.id,
                        "kind": t.kind,
                        "code": t.code,
                        "label": t.label,
                        "score": t.score,
                        "evidence": json.dumps(list(t.evidence)),
                        "published": a.published,
                    }
                    for a in chunk
                    for t in a.tags
                ],
            )


def custom_feeds_toml(places: list[str], top: list[str]) -> str:
    rng = random.Random(9)
    blocks = []
    for number in range(CUSTOM_FEEDS):
        pair = rng.sample(places, 2)
        blocks.append(
            f'[[custom_feeds]]\nslug = "custom-{number}"\ntitle = "Custom {number}"\n'
            f"countries = {json.dumps(pair)}\ntopics = {json.dumps([rng.choice(top)])}\n"
        )
    return "\n".join(blocks)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def hammer(
    port: int, targets: list[tuple[str, str]], total: int, connections: int
) -> dict[int, int]:
    """Conditional GETs over keep-alive connections; returns a count per status code."""
    statuses: dict[int, int] = {}
    remaining = [total]

    async def worker(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = number
        while remaining[0] > 0:
            remaining[0] -= 1
            path, etag = targets[index % len(targets)]
            index += 1
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: {etag}\r\n"
                f"Accept-Encoding: identity\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":", 1)[1]))
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return statuses


def bench_serve(workspace: Path, requests: int, connections: int, port: int) -> None:
    command = [sys.executable, "-c", "from newsdesk.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "--config", str(workspace / "newsdesk.toml"), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "index.html", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("newsdesk serve did not start") from None
                time.sleep(0.1)
        names = sorted(
            p.name for p in (workspace / "feeds").iterdir() if not p.name.startswith(".")
        )
        targets = []
        for name in names[:60]:
            etag = httpx.get(base + name, headers={"Accept-Encoding": "identity"}).headers["etag"]
            targets.append((f"/{name}", etag))
        asyncio.run(hammer(port, targets, min(2000, requests), connections))  # warm up
        started = time.perf_counter()
        statuses = asyncio.run(hammer(port, targets, requests, connections))
        seconds = time.perf_counter() - started
        print(
            f"serve, conditional GET    {requests / seconds:,.0f} requests/s "
            f"({requests:,} over {connections} keep-alive connections, statuses {statuses})"
        )
        started = time.perf_counter()
        full = 200
        with httpx.Client(headers={"Accept-Encoding": "gzip"}) as client:
            for index in range(full):
                client.get(base + names[index % 20])
        print(
            f"serve, full GET gzip      {full / (time.perf_counter() - started):,.0f} requests/s "
            "(one httpx client, sequential, 20 feeds of ~350 KB, first request compresses)"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3, help="full builds to time after the first")
    args = parser.parse_args()
    taxonomy = topics()
    top = sorted(c for c, t in taxonomy.items() if not t.parent)
    second = sorted(c for c, t in taxonomy.items() if t.parent and not taxonomy[t.parent].parent)
    places = pick_places(args.feeds, top, second)
    workspace = Path(tempfile.mkdtemp(prefix="newsdesk-bench-feeds-"))
    port = free_port()
    try:
        shutil.copytree(REPO / "templates", workspace / "templates")
        (workspace / "newsdesk.toml").write_text(
            f'[feeds]\nbase_url = "http://127.0.0.1:{port}/"\nitem_limit = {args.items}\n'
            f"min_country_articles = 1\n\n" + custom_feeds_toml(places, top),
            encoding="utf-8",
        )
        config = load_config(workspace / "newsdesk.toml")
        store = Store.open(config.database_url())
        templates = pipeline.templates_for(config)

        started = time.perf_counter()
        articles = make_articles(args.articles, places, top, second)
        bulk_insert(store, articles)
        del articles  # a million live objects would slow every garbage collection below
        gc.collect()
        setup = time.perf_counter() - started
        print(
            f"store                     {store.count_articles():,} articles ({setup:.1f} s to make)"
        )

        # The first build renders every item and stores it; later full builds (fresh folders,
        # as after a change of settings) read the stored items. The machine may be shared:
        # report the best and the median wall time of those, and the process CPU time beside.
        walls: list[float] = []
        cpus: list[float] = []
        for run in range(1 + args.runs):
            folder = workspace / f"feeds-{run}"
            run_config = dataclasses.replace(
                config, paths=dataclasses.replace(config.paths, feeds=str(folder))
            )
            wall, cpu = time.perf_counter(), time.process_time()
            report = feedsite.build_site(run_config, store, templates, NOW)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            if run == 0:
                with store.engine.connect() as connection:
                    rendered = connection.execute(
                        select(func.count()).select_from(feed_items_table)
                    ).scalar_one()
            if run < args.runs:
                shutil.rmtree(folder)
        size = sum(p.stat().st_size for p in folder.iterdir())
        shape = f"{report.feeds} feeds x 3 formats x {args.items} items"
        print(
            f"full build, first         {walls[0]:.2f} s (CPU {cpus[0]:.2f} s): {shape}, "
            f"{rendered:,} items rendered and stored"
        )
        print(
            f"full build, items stored  {min(walls[1:]):.2f} s best, "
            f"{statistics.median(walls[1:]):.2f} s median of {args.runs} "
            f"(CPU {statistics.median(cpus[1:]):.2f} s): {shape} "
            f"({len(report.written)} files, {size / 1e6:.0f} MB)"
        )
        config = run_config  # the last build's folder is the one rebuilt and served

        noop: list[float] = []
        for _ in range(5):
            started = time.perf_counter()
            again = feedsite.build_site(config, store, templates, NOW)
            noop.append(time.perf_counter() - started)
        print(
            f"rebuild, nothing new      {statistics.median(noop) * 1000:.0f} ms median of 5 "
            f"({len(again.written)} files written)"
        )

        fresh = make_articles(1, places, top, second)[0]
        fresh = Article(
            **{
                **{f: getattr(fresh, f) for f in Article.__slots__},
                "id": "new-article",
                "published": NOW - timedelta(seconds=30),
            }
        )
        store.save_articles([fresh], NOW)
        started = time.perf_counter()
        one = feedsite.build_site(config, store, templates, NOW)
        print(
            f"rebuild, one new article  {(time.perf_counter() - started) * 1000:.0f} ms "
            f"({len(one.written)} files written, {len(one.changed_urls) // 3} feeds changed)"
        )
        store.close()

        shutil.rmtree(workspace / "feeds", ignore_errors=True)
        folder.rename(workspace / "feeds")  # where the served config looks
        bench_serve(workspace, args.requests, args.connections, port)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()

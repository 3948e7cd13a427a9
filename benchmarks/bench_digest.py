"""Digest figures: render+build N personal digests of 30 articles, then send N over SMTP.

    python benchmarks/bench_digest.py [--subscribers 10000] [--articles 30] [--skip-send]

Part 1 renders and assembles every digest in this process (one core): jinja2, css-inline,
Babel dates, MIME bytes. Part 2 runs the real `pipeline.digest` against an aiosmtpd server in a
separate process on 127.0.0.1, with the ledger on a real SQLite file: one SMTP session, two
ledger commits per message. Targets: part 1 <= 20 s, part 2 <= 60 s for 10,000. Nothing is
asserted; the figures are printed.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk import pipeline  # noqa: E402
from newsdesk.config import load_config  # noqa: E402
from newsdesk.digest import render_digest, settings_from_config  # noqa: E402
from newsdesk.models import Article, Subscriber, Tag  # noqa: E402
from newsdesk.store import Store  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REGIONS = [
    (Tag("region", "150", "Europe", 5.0), Tag("country", "FR", "France", 5.0)),
    (Tag("region", "142", "Asia", 5.0), Tag("country", "JP", "Japan", 5.0)),
    (Tag("region", "002", "Africa", 5.0), Tag("country", "KE", "Kenya", 5.0)),
    (Tag("region", "019", "Americas", 5.0), Tag("country", "BR", "Brazil", 5.0)),
]
TOPICS = [
    Tag("topic", "medtop:11000000", "politics", 4.0),
    Tag("topic", "medtop:15000000", "sport", 4.0),
    Tag("topic", "medtop:04000000", "economy, business and finance", 4.0),
    Tag("topic", "medtop:07000000", "health", 4.0),
]
WORDS = [
    "government",
    "minister",
    "election",
    "market",
    "bank",
    "match",
    "team",
    "vaccine",
    "hospital",
    "report",
    "council",
    "agreement",
    "protest",
    "budget",
    "inflation",
    "season",
    "league",
    "study",
    "researchers",
    "officials",
]
SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller

class Count:
    def __init__(self): self.n = 0
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        return "250 OK"

controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""


def make_articles(count: int, rng: random.Random) -> list[Article]:
    articles = []
    for index in range(count):
        region, country = REGIONS[index % len(REGIONS)]
        topic = TOPICS[(index // len(REGIONS)) % len(TOPICS)]
        title = " ".join(rng.choice(WORDS) for _ in range(9)).capitalize()
        summary = " ".join(rng.choice(WORDS) for _ in range(45)).capitalize() + "."
        articles.append(
            Article(
                id=f"bench{index:05d}",
                title=f"{title} <{index}> & more",
                summary=summary,
                body_text=summary,
                body_html=f"<p>{summary}</p>",
                language="en",
                published=NOW - timedelta(minutes=7 * index),
                url=f"https://news.example.org/a/{index}",
                source=rng.choice(["Example Wire", "Le Quotidien", "Daily Planet"]),
                fingerprint=f"fp{index}",
                tags=(region, country, topic),
            )
        )
    return articles


def make_subscribers(count: int, rng: random.Random) -> list[Subscriber]:
    zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Africa/Nairobi"]
    return [
        Subscriber(
            email=f"reader{index:05d}@example.org",
            name=f"Reader {index}",
            language="fr" if index % 2 else "en",
            timezone=rng.choice(zones),
        )
        for index in range(count)
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def workspace(root: Path, port: int) -> Path:
    shutil.copytree(REPO / "templates", root / "templates")
    config = root / "newsdesk.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [digest]
            sender = "newsdesk <digest@news.example.org>"
            unsubscribe_url = "https://news.example.org/unsubscribe"
            max_articles = 40

            [smtp]
            host = "127.0.0.1"
            port = {port}
            security = "none"
            """
        ),
        encoding="utf-8",
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--articles", type=int, default=30)
    parser.add_argument("--skip-send", action="store_true")
    args = parser.parse_args()
    rng = random.Random(6)
    pool = make_articles(max(args.articles * 4, 120), rng)
    people = make_subscribers(args.subscribers, rng)

    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-digest-") as temp:
        root = Path(temp)
        port = free_port()
        config = load_config(workspace(root, port))
        templates = pipeline.templates_for(config)
        settings = settings_from_config(config, b"bench-secret-0123456789abcdef")

        # Part 1: render and build, one core.
        started = time.perf_counter()
        total_bytes = largest_html = 0
        for index, person in enumerate(people):
            offset = (index * 7) % (len(pool) - args.articles)
            rendered = render_digest(
                pool[offset : offset + args.articles], person, templates, settings, NOW
            )
            total_bytes += len(rendered.raw)
            largest_html = max(largest_html, len(rendered.html.encode()))
        render_seconds = time.perf_counter() - started
        print(
            f"render+build: {args.subscribers} digests of {args.articles} articles in "
            f"{render_seconds:.2f} s ({args.subscribers / render_seconds:.0f}/s, "
            f"{render_seconds / args.subscribers * 1000:.2f} ms each; target <= 20 s for 10,000)"
        )
        print(
            f"  mean message {total_bytes / args.subscribers / 1024:.1f} KiB, "
            f"largest HTML part {largest_html / 1024:.1f} KiB (limit 100 KB)"
        )
        if args.skip_send:
            return

        # Part 2: the real pipeline to a loopback aiosmtpd in another process.
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            store = Store.open(config.database_url())
            store.save_articles(pool[: args.articles], NOW - timedelta(hours=1))
            for person in people:
                store.upsert_subscriber(person, "cli", NOW, status="active")
            subscribers = pipeline.load_subscribers(config, store, NOW)
            report = pipeline.DigestReport()
            started = time.perf_counter()
            pending = pipeline.render_pending(store, templates, settings, subscribers, NOW, report)
            selected = time.perf_counter() - started
            started = time.perf_counter()
            pipeline.send_pending(config, store, pending, NOW, report)
            send_seconds = time.perf_counter() - started
            store.close()
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(30)
        print(f"select+render (from the database): {len(pending)} digests in {selected:.2f} s")
        print(
            f"send: {len(report.delivered)} delivered over SMTP in {send_seconds:.2f} s "
            f"({len(report.delivered) / send_seconds:.0f}/s; target <= 60 s for 10,000), "
            f"{len(report.errors)} failed"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()

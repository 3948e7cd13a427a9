"""Web ingest figures: many feeds from loopback servers, then a round where all answer 304.

    python benchmarks/bench_fetch.py [--feeds 500] [--items 50] [--hosts 8]

Serves `--feeds` RSS feeds of `--items` items each (with ETag and Last-Modified) from `--hosts`
HTTP servers on 127.0.0.1, 127.0.0.2, ... (one host when only 127.0.0.1 can be bound), so the
per-host limit is exercised as with real publishers. Runs the real pipeline (fetch, parse,
normalize, tag, dedupe, store in SQLite) on them and prints the time of the first round (target
<= 30 s for 500 x 50) and of a second round one hour later in which every feed answers
304 Not Modified (target <= 5 s). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsdesk import pipeline  # noqa: E402
from newsdesk.config import load_config  # noqa: E402
from newsdesk.store import Store  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PLACES = [
    ("Japan", "Tokyo"),
    ("Brazil", "Brasília"),
    ("Kenya", "Nairobi"),
    ("Germany", "Berlin"),
    ("Canada", "Ottawa"),
    ("India", "New Delhi"),
    ("Mexico", "Mexico City"),
    ("Australia", "Canberra"),
]
SUBJECTS = [
    "the central bank raised interest rates to slow inflation",
    "the national team won the cup final after extra time",
    "floods forced thousands of families from their homes",
    "the health ministry began a vaccination campaign in rural districts",
    "parliament passed a budget after a long debate over taxes",
    "a new rail line opened between the capital and the coast",
    "researchers announced a breakthrough in battery storage",
    "teachers went on strike over pay and class sizes",
]


def make_feed(feed: int, items: int, rng: random.Random) -> bytes:
    entries = []
    for item in range(items):
        country, capital = rng.choice(PLACES)
        subject = rng.choice(SUBJECTS)
        published = NOW - timedelta(minutes=feed * items + item)
        paragraphs = [
            f"In {capital}, {subject}, officials in {country} said on Monday.",
            f"The announcement in {country} followed weeks of speculation, and analysts in "
            f"{capital} said the decision would shape the coming months. Story {feed}-{item}.",
            f"Reporters from feed {feed} spoke to residents, business owners and local "
            f"officials, who described the mood in {capital} as cautious but hopeful.",
        ]
        body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        entries.append(
            f"<item><title>{escape(country)}: {escape(subject[:60])} ({feed}-{item})</title>"
            f"<link>https://news{feed}.example.org/{item}?utm_source=rss</link>"
            f'<guid isPermaLink="false">{feed}-{item}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(body)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>https://news{feed}.example.org/</link>"
        f"<description>Benchmark feed {feed}</description>{''.join(entries)}</channel></rss>"
    ).encode()


def start_servers(feeds: dict[str, bytes], hosts: int) -> list[tuple[ThreadingHTTPServer, str]]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = feeds.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", format_datetime(NOW, usegmt=True))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    servers = []
    for index in range(1, hosts + 1):
        address = f"127.0.0.{index}"
        try:
            server = ThreadingHTTPServer((address, 0), Handler)
        except OSError:
            break  # only 127.0.0.1 on this system
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, f"http://{address}:{server.server_address[1]}"))
    return servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=8)
    args = parser.parse_args()
    rng = random.Random(8)
    feeds = {f"/feed/{n}.xml": make_feed(n, args.items, rng) for n in range(args.feeds)}
    servers = start_servers(feeds, args.hosts)
    workspace = Path(tempfile.mkdtemp(prefix="newsdesk-bench-fetch-"))
    try:
        sources = "".join(
            textwrap.dedent(
                f"""
                [[sources]]
                name = "feed {n}"
                url = "{servers[n % len(servers)][1]}/feed/{n}.xml"
                kind = "feed"
                """
            )
            for n in range(args.feeds)
        )
        (workspace / "seeds").mkdir()
        (workspace / "newsdesk.toml").write_text(
            "[schedule]\ningest_every_seconds = 1800\n[fetch]\nconcurrency = 16\nper_host = 4\n"
            + sources,
            encoding="utf-8",
        )
        config = load_config(workspace / "newsdesk.toml")
        store = Store.open(config.database_url())
        tagger = pipeline.make_tagger(config)  # built (or loaded from cache) outside the timing
        megabytes = sum(len(b) for b in feeds.values()) / 1e6
        print(
            f"serving {args.feeds} feeds x {args.items} items ({megabytes:.1f} MB) "
            f"from {len(servers)} loopback host(s)"
        )

        started = time.perf_counter()
        first = pipeline.ingest_sources(config, store, tagger, NOW)
        first_seconds = time.perf_counter() - started
        print(
            f"round 1: {first_seconds:.1f} s (target <= 30 s): {first.sources} feeds read, "
            f"{first.added} articles added, {len(first.errors)} failed, "
            f"{first.added / first_seconds:.0f} articles/s"
        )

        started = time.perf_counter()
        second = pipeline.ingest_sources(config, store, tagger, NOW + timedelta(hours=1))
        second_seconds = time.perf_counter() - started
        print(
            f"round 2: {second_seconds:.2f} s (target <= 5 s): {second.sources} feeds read, "
            f"{second.not_modified} not modified, {second.added} added"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory: {peak:.0f} MB")
        store.close()
    finally:
        for server, _ in servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()

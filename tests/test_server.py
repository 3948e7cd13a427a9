"""`newsdesk serve` as a real process on a loopback port, asked by httpx and by a raw socket."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from conftest import app_in_thread, free_port
from feed_fixtures import NOW, PARENTS, make_workspace
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from newsdesk import feedsite, pipeline
from newsdesk.config import load_config
from newsdesk.server import accepts_gzip, create_app
from newsdesk.store import Store

PREFIX = "/feeds/"
TYPES = {
    "all.rss": "application/rss+xml; charset=utf-8",
    "all.atom": "application/atom+xml; charset=utf-8",
    "all.json": "application/feed+json; charset=utf-8",
    "feeds.opml": "text/x-opml; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
}


def build(root: Path) -> None:
    config = load_config(root / "newsdesk.toml")
    store = Store.open(config.database_url())
    try:
        feedsite.build_site(config, store, pipeline.templates_for(config), NOW, PARENTS)
    finally:
        store.close()


@dataclass
class Served:
    root: Path
    base: str  # http://127.0.0.1:PORT/feeds/
    port: int

    def get(self, name: str, **headers: str) -> httpx.Response:
        return httpx.get(self.base + name, headers=headers)


def newsdesk_command() -> list[str]:
    script = Path(sys.executable).with_name("newsdesk")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from newsdesk.cli import main; main()"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    root = tmp_path_factory.mktemp("served")
    make_workspace(root, base_url=f"http://127.0.0.1:{port}{PREFIX}")
    build(root)
    (root / "secret.txt").write_text("outside feeds/", encoding="utf-8")
    process = subprocess.Popen(
        [
            *newsdesk_command(),
            "--config",
            str(root / "newsdesk.toml"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}{PREFIX}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base + "index.html", timeout=1)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate()
                pytest.fail(f"newsdesk serve did not start: {err.decode()[-2000:]}")
            time.sleep(0.1)
    yield Served(root, base, port)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.parametrize("name", sorted(TYPES))
def test_each_kind_of_file_has_its_content_type_and_validators(served: Served, name: str) -> None:
    response = served.get(name, **{"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == TYPES[name]
    assert response.content == (served.root / "feeds" / name).read_bytes()
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert int(modified.timestamp()) == int((served.root / "feeds" / name).stat().st_mtime)
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in response.headers


def test_if_none_match_gives_304_and_a_different_etag_gives_200(served: Served) -> None:
    first = served.get("all.rss", **{"Accept-Encoding": "identity"})
    etag = first.headers["etag"]
    again = served.get("all.rss", **{"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    listed = served.get(
        "all.rss", **{"If-None-Match": f'"other", W/{etag}', "Accept-Encoding": "identity"}
    )
    assert listed.status_code == 304  # weak comparison, any of a list
    other = served.get("all.rss", **{"If-None-Match": '"nope"', "Accept-Encoding": "identity"})
    assert other.status_code == 200 and other.content == first.content


def test_if_modified_since(served: Served) -> None:
    mtime = (served.root / "feeds" / "all.atom").stat().st_mtime
    same = served.get("all.atom", **{"If-Modified-Since": formatdate(mtime + 5, usegmt=True)})
    assert same.status_code == 304
    older = served.get("all.atom", **{"If-Modified-Since": formatdate(mtime - 3600, usegmt=True)})
    assert older.status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110).
    both = served.get(
        "all.atom",
        **{"If-None-Match": '"nope"', "If-Modified-Since": formatdate(mtime + 5, usegmt=True)},
    )
    assert both.status_code == 200
    garbage = served.get("all.atom", **{"If-Modified-Since": "yesterday-ish"})
    assert garbage.status_code == 200


def test_head_has_the_headers_and_no_body(served: Served) -> None:
    get = served.get("all.json", **{"Accept-Encoding": "identity"})
    head = httpx.head(served.base + "all.json", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    for header in ("content-type", "etag", "last-modified", "cache-control"):
        assert head.headers[header] == get.headers[header]
    assert head.headers["content-length"] == str(len(get.content))


def test_gzip_when_asked(served: Served) -> None:
    plain = served.get("all.rss", **{"Accept-Encoding": "identity"})
    zipped = httpx.get(served.base + "all.rss", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decodes; compare the raw bytes too
    with httpx.stream("GET", served.base + "all.rss", headers={"Accept-Encoding": "gzip"}) as raw:
        body = b"".join(raw.iter_raw())
    assert gzip.decompress(body) == plain.content and len(body) < len(plain.content)
    assert zipped.headers["etag"] != plain.headers["etag"]  # one strong ETag per encoding
    again = served.get(
        "all.rss", **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}
    )
    assert again.status_code == 304
    refused = served.get("all.rss", **{"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers


def raw_status(port: int, target: str) -> int:
    """Send `target` byte for byte (no client-side normalisation of .. or %2e)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n" not in reply:
            chunk = connection.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "target",
    [
        "/feeds/missing.rss",
        "/feeds/../secret.txt",
        "/feeds/%2e%2e/secret.txt",
        "/feeds/%2E%2E/newsdesk.toml",
        "/feeds/..%2fsecret.txt",
        "/feeds/..%5csecret.txt",
        "/feeds/%2e%2e%2fnewsdesk.toml",
        "/feeds/.newsdesk-manifest.json",
        "/feeds/%2enewsdesk-manifest.json",
        "/secret.txt",
        "/newsdesk.toml",
        "/feeds/newsdesk.db",
        "/feeds/all.rss%00.txt",
        "/feeds//etc/passwd",
    ],
)
def test_anything_outside_feeds_is_404(served: Served, target: str) -> None:
    assert raw_status(served.port, target) == 404


def test_the_root_redirects_to_the_feeds_and_the_folder_gives_the_index(served: Served) -> None:
    root = httpx.get(f"http://127.0.0.1:{served.port}/")
    assert root.status_code == 307 and root.headers["location"] == PREFIX
    folder = httpx.get(served.base)
    assert folder.status_code == 200 and folder.headers["content-type"].startswith("text/html")


def test_a_rebuilt_file_gets_a_new_etag_an_unchanged_one_keeps_it(served: Served) -> None:
    before_kp = served.get("country-kp.rss").headers["etag"]
    before_fr = served.get("country-fr.rss").headers["etag"]
    from feed_fixtures import article

    store = Store.open(f"sqlite:///{served.root / 'newsdesk.db'}")
    store.save_articles([article(40, hours_ago=0.1, countries=("KP",))], NOW)
    store.close()
    build(served.root)
    after_kp = served.get("country-kp.rss")
    assert after_kp.headers["etag"] != before_kp
    assert b"Story number 40" in after_kp.content
    assert served.get("country-fr.rss", **{"If-None-Match": before_fr}).status_code == 304


def test_post_is_not_allowed(served: Served) -> None:
    assert httpx.post(served.base + "all.rss").status_code == 405


# In-process: the app factory and its helpers -----------------------------------------------


@contextmanager
def running(app: Starlette) -> Iterator[httpx.Client]:
    """The app under a real uvicorn on a loopback port, in a thread; a client pointed at it."""
    with app_in_thread(app) as base, httpx.Client(base_url=base) as client:
        yield client


def test_extra_routes_are_mounted_before_the_feeds(tmp_path: Path) -> None:
    make_workspace(tmp_path, base_url="http://localhost:8080/")
    build(tmp_path)
    config = load_config(tmp_path / "newsdesk.toml")

    async def unsubscribe(_request: object) -> PlainTextResponse:
        return PlainTextResponse("unsubscribed")

    app = create_app(config, extra_routes=[Route("/unsubscribe", unsubscribe, methods=["GET"])])
    with running(app) as client:
        assert client.get("/unsubscribe").text == "unsubscribed"
        assert client.get("/all.atom").status_code == 200
        assert client.get("/").headers["content-type"].startswith("text/html")
        assert client.get("/nothing.rss").status_code == 404


def test_a_symlink_pointing_outside_is_404(tmp_path: Path) -> None:
    make_workspace(tmp_path, base_url="http://localhost:8080/")
    build(tmp_path)
    (tmp_path / "outside.rss").write_text("secret", encoding="utf-8")
    os.symlink(tmp_path / "outside.rss", tmp_path / "feeds" / "sneaky.rss")
    with running(create_app(load_config(tmp_path / "newsdesk.toml"))) as client:
        assert client.get("/sneaky.rss").status_code == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*;q=0", False),
        ("br, *;q=0.1", True),
        ("gzip;q=0, *", False),
        ("", False),
    ],
)
def test_accept_encoding(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_the_raw_client_sees_a_200_for_a_real_feed(served: Served) -> None:
    """The control for the 404 cases above: the same raw request reaches real files."""
    assert raw_status(served.port, "/feeds/all.rss") == 200
    assert raw_status(served.port, "/feeds/%61ll.rss") == 200  # %61 is "a": decoding works


def test_the_unsubscribe_page_is_mounted_beside_the_feeds(served: Served) -> None:
    """`newsdesk serve` mounts the digest's unsubscribe routes before the feeds."""
    response = httpx.get(f"http://127.0.0.1:{served.port}/unsubscribe?token=forged")
    assert response.status_code == 400  # the unsubscribe endpoint refusing a bad token
    assert response.headers["cache-control"] == "no-store"

"""The fetcher against a real HTTP server on 127.0.0.1: limits, redirects, validators, manners."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

from conftest import NOW
from webserver import FIXTURES, WebServer, send

from newsdesk.fetch import Limits, Request, fetch_all, fetch_one, retry_time
from newsdesk.fetch import client as http_client

FEED = (FIXTURES / "rss20.xml").read_bytes()
QUICK = Limits(connect_timeout=2, read_timeout=1, total_timeout=2, max_bytes=5_000_000)


def get(url: str, limits: Limits = QUICK, **validators: str) -> object:
    with http_client(limits) as http:
        return fetch_one(http, Request(key="test", url=url, **validators), limits)


def test_ok_sends_a_newsdesk_user_agent_and_reads_gzip(web: WebServer) -> None:
    web.gzipped("/feed", FEED)
    result = get(web.url("/feed"))
    assert result.outcome == "ok", result.error
    assert result.body == FEED  # decompressed
    [seen] = web.hits("/feed")
    assert seen.headers["User-Agent"].startswith("newsdesk/")
    assert "gzip" in seen.headers["Accept-Encoding"]


def test_conditional_get_returns_not_modified(web: WebServer) -> None:
    web.conditional("/feed", FEED, etag='"v1"', last_modified="Sun, 22 Nov 2026 08:00:00 GMT")
    first = get(web.url("/feed"))
    assert first.outcome == "ok" and first.etag == '"v1"'
    assert first.last_modified == "Sun, 22 Nov 2026 08:00:00 GMT"
    second = get(web.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert second.outcome == "not_modified" and second.body == b""
    assert web.hits("/feed")[1].headers["If-None-Match"] == '"v1"'
    assert web.hits("/feed")[1].headers["If-Modified-Since"] == first.last_modified


def test_permanent_redirects_report_the_new_address(web: WebServer) -> None:
    web.serve("/new", FEED)
    web.redirect("/old", 301, "/hop")
    web.redirect("/hop", 308, web.url("/new"))
    result = get(web.url("/old"))
    assert result.outcome == "ok" and result.body == FEED
    assert result.moved_to == web.url("/new") and result.url == web.url("/new")


def test_a_temporary_hop_keeps_the_stored_address(web: WebServer) -> None:
    web.serve("/new", FEED)
    web.redirect("/old", 301, "/temp")
    web.redirect("/temp", 302, "/new")
    result = get(web.url("/old"))
    assert result.outcome == "ok" and result.moved_to is None


def test_redirect_loops_stop_at_the_limit(web: WebServer) -> None:
    web.redirect("/loop", 302, "/loop")
    result = get(web.url("/loop"), Limits(max_redirects=3))
    assert result.outcome == "error" and "more than 3 redirects" in result.error
    assert len(web.hits("/loop")) == 4


def test_redirect_to_a_file_url_is_refused(web: WebServer) -> None:
    web.redirect("/sneaky", 302, "file:///etc/passwd")
    result = get(web.url("/sneaky"))
    assert result.outcome == "error" and "non-http(s)" in result.error


def test_gone_and_retry_later_and_server_errors(web: WebServer) -> None:
    web.serve("/gone", b"", status=410)
    web.serve("/busy", b"", status=429, headers={"Retry-After": "120"})
    web.serve("/down", b"", status=503, headers={"Retry-After": "Mon, 23 Nov 2026 13:00:00 GMT"})
    web.serve("/broken", b"oops", status=500)
    assert get(web.url("/gone")).outcome == "gone"
    busy = get(web.url("/busy"))
    assert busy.outcome == "retry_later" and busy.retry_after == "120"
    assert retry_time(busy.retry_after, NOW) == NOW + timedelta(seconds=120)
    down = get(web.url("/down"))
    assert down.outcome == "retry_later"
    assert retry_time(down.retry_after, NOW) == NOW + timedelta(hours=1)
    broken = get(web.url("/broken"))
    assert broken.outcome == "error" and "HTTP 500" in broken.error


def test_a_declared_huge_body_is_refused_before_reading(web: WebServer) -> None:
    web.huge("/huge", 50_000_000, declare_length=True)
    result = get(web.url("/huge"))
    assert (
        result.outcome == "error" and "50000000 bytes, over the 5000000-byte limit" in result.error
    )


def test_an_undeclared_huge_body_is_abandoned_while_streaming(web: WebServer) -> None:
    web.huge("/huge", 50_000_000, declare_length=False)
    result = get(web.url("/huge"), Limits(max_bytes=1_000_000, total_timeout=30))
    assert result.outcome == "error" and "while streaming" in result.error
    assert result.body == b""


def test_a_response_that_never_ends_is_abandoned(web: WebServer) -> None:
    web.trickle("/forever", b"<rss>", every=0.1)
    limits = Limits(read_timeout=1, total_timeout=1.5)
    result = get(web.url("/forever"), limits)
    assert result.outcome == "error" and "still arriving" in result.error


def test_a_stalled_response_times_out(web: WebServer) -> None:
    web.stall("/stall")
    result = get(web.url("/stall"), Limits(read_timeout=0.5, total_timeout=5))
    assert result.outcome == "error" and "timed out (read)" in result.error


def test_a_closed_port_is_an_error_not_an_exception() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = get(f"http://127.0.0.1:{port}/feed")
    assert result.outcome == "error" and result.error


def test_fetch_all_bounds_requests_per_host(web: WebServer) -> None:
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]

    def slow(request: BaseHTTPRequestHandler) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.15)
        with lock:
            in_flight[0] -= 1
        send(request, 200, FEED, "application/rss+xml")

    web.routes["/slow"] = slow
    requests = [Request(key=str(n), url=web.url(f"/slow?n={n}")) for n in range(8)]
    results = list(fetch_all(requests, Limits(concurrency=8, per_host=2)))
    assert sorted(r.request.key for r in results) == sorted(str(n) for n in range(8))
    assert all(r.outcome == "ok" for r in results)
    assert peak[0] == 2

"""A real HTTP server on 127.0.0.1 for the web-source tests, started in a thread by a fixture.

It serves the files of tests/fixtures/web/ under /files/, plus routes a test registers:
a fixed response, a conditional (ETag/Last-Modified) one, redirects, and misbehaving ones
(a never-ending trickle, a stall, a huge stream). Every request is logged so tests can check
what the client sent (User-Agent, If-None-Match) and how often it came.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "web"
CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml",
}


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]


Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class WebServer:
    base: str
    routes: dict[str, Handler] = field(default_factory=dict)
    log: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[Seen]:
        return [seen for seen in self.log if seen.path == path]

    # Route builders ---------------------------------------------------------------------

    def serve(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/xml",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            send(request, status, body, content_type, headers)

        self.routes[path] = handler

    def serve_file(self, path: str, name: str, content_type: str | None = None) -> None:
        file = FIXTURES / name
        self.serve(path, file.read_bytes(), content_type or CONTENT_TYPES[file.suffix])

    def conditional(self, path: str, body: bytes, etag: str, last_modified: str) -> None:
        """200 with validators; 304 when the client sends them back."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            if request.headers.get("If-None-Match") == etag or (
                request.headers.get("If-Modified-Since") == last_modified
            ):
                send(request, 304, b"", None, {"ETag": etag})
                return
            send(
                request,
                200,
                body,
                "application/rss+xml",
                {"ETag": etag, "Last-Modified": last_modified},
            )

        self.routes[path] = handler

    def redirect(self, path: str, status: int, location: str) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            send(request, status, b"", "text/plain", {"Location": location})

        self.routes[path] = handler

    def gzipped(self, path: str, body: bytes) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            accepts = request.headers.get("Accept-Encoding", "")
            if "gzip" not in accepts:
                send(request, 406, b"gzip only", "text/plain")
                return
            send(
                request,
                200,
                gzip.compress(body),
                "application/rss+xml",
                {"Content-Encoding": "gzip"},
            )

        self.routes[path] = handler

    def trickle(self, path: str, head: bytes, every: float = 0.2) -> None:
        """Headers, a valid start, then one more byte every `every` seconds, forever."""
        stop = self.stop

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(head)
            request.wfile.flush()
            while not stop.is_set():
                time.sleep(every)
                request.wfile.write(b" ")
                request.wfile.flush()

        self.routes[path] = handler

    def stall(self, path: str) -> None:
        """Headers, then silence until the client gives up."""
        stop = self.stop

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.flush()
            stop.wait(30)

        self.routes[path] = handler

    def huge(self, path: str, size: int, declare_length: bool) -> None:
        """`size` bytes of a feed-looking body, streamed in 64 KiB chunks."""
        chunk = b"<!-- padding -->" * 4096

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            if declare_length:
                request.send_header("Content-Length", str(size))
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
            sent = 0
            while sent < size:
                request.wfile.write(chunk)
                sent += len(chunk)

        self.routes[path] = handler


def send(
    request: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    request.send_response(status)
    if content_type:
        request.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if body and request.command != "HEAD":
        request.wfile.write(body)


def _handler_class(server: WebServer) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.log.append(Seen(self.path, {k: v for k, v in self.headers.items()}))
            route = server.routes.get(path) or server.routes.get(self.path)
            try:
                if route is not None:
                    route(self)
                elif path.startswith("/files/") and (FIXTURES / path[7:]).is_file():
                    file = FIXTURES / path[7:]
                    send(self, 200, file.read_bytes(), CONTENT_TYPES.get(file.suffix, "text/plain"))
                else:
                    send(self, 404, b"not found", "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, which is what the misbehaving routes test

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet; the request log above is what tests read

    return RequestHandler


@pytest.fixture()
def web() -> Iterator[WebServer]:
    """A live server on 127.0.0.1 (a free port) for the duration of one test."""
    state = WebServer(base="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

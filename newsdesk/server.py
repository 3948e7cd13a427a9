"""`newsdesk serve`: the feeds folder over HTTP with the manners readers and caches rely on.

Strong ETags (a hash of the bytes, one per encoding), Last-Modified, 304 on If-None-Match /
If-Modified-Since, HEAD, gzip when asked, Cache-Control, and a 404 for anything that is not a
file newsdesk publishes in feeds/ (dot-files, other extensions, `..` however it is encoded).

`create_app(config, extra_routes)` builds the Starlette app; extra routes (say, an unsubscribe
endpoint) are matched before the feeds.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import stat
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from newsdesk.config import Config

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
GZIP_MIN_BYTES = 256  # smaller bodies grow when compressed
BODY_CACHE_BYTES = 64 * 1024 * 1024  # bodies (plain and gzip) kept in memory, newest used first


@dataclass(frozen=True, slots=True)
class Representation:
    """One file as served: its validators, and its bytes (plain and gzip)."""

    key: tuple[int, int, int]  # (inode, size, mtime_ns): changes whenever the file is replaced
    etag: str
    gzip_etag: str
    last_modified: str
    mtime: int  # whole seconds, as Last-Modified says it
    content_type: str
    size: int


class FeedFiles:
    """Looks up, validates and caches the files of one feeds folder."""

    def __init__(self, folder: Path, max_age: int, base_url: str = "", hub: str = "") -> None:
        self.folder = folder
        self.base_url = base_url
        self.root = folder.resolve()
        self.cache_control = f"public, max-age={max_age}"
        self.hub = hub
        self._meta: dict[str, Representation] = {}
        self._bodies: OrderedDict[tuple[str, bool], tuple[tuple[int, int, int], bytes]] = (
            OrderedDict()
        )
        self._body_bytes = 0

    def find(self, relative: str) -> tuple[Path, Representation] | None:
        """The file for a request path inside the folder, or None (the caller answers 404)."""
        if relative == "" or relative.endswith("/"):
            relative += "index.html"
        parts = relative.split("/")
        if any(
            p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts
        ):
            return None
        if os.path.splitext(parts[-1])[1] not in CONTENT_TYPES:
            return None
        path = self.folder.joinpath(*parts)
        try:
            info = os.stat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        key = (info.st_ino, info.st_size, info.st_mtime_ns)
        known = self._meta.get(relative)
        if known is not None and known.key == key:
            return path, known
        if not path.resolve().is_relative_to(self.root):  # a symlink pointing outside
            return None
        body, key = _read(path)
        representation = self._describe(relative, body, key)
        self._meta[relative] = representation
        self._remember((relative, False), key, body)
        return path, representation

    def body(self, relative: str, path: Path, rep: Representation, gzipped: bool) -> bytes:
        """The bytes to send, from the cache when the file has not changed since."""
        cached = self._bodies.get((relative or "index.html", gzipped))
        if cached is not None and cached[0] == rep.key:
            self._bodies.move_to_end((relative or "index.html", gzipped))
            return cached[1]
        body, key = _read(path)
        if key != rep.key:  # replaced between the lookup and now: describe it again
            rep = self._describe(relative, body, key)
        if gzipped:
            body = gzip.compress(body, compresslevel=6, mtime=0)  # mtime=0: stable bytes
        self._remember((relative or "index.html", gzipped), rep.key, body)
        return body

    def _describe(self, relative: str, body: bytes, key: tuple[int, int, int]) -> Representation:
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        mtime = key[2] // 1_000_000_000
        return Representation(
            key=key,
            etag=f'"{digest}"',
            gzip_etag=f'"{digest}-gzip"',
            last_modified=formatdate(mtime, usegmt=True),
            mtime=mtime,
            content_type=CONTENT_TYPES[os.path.splitext(relative)[1] or ".html"],
            size=len(body),
        )

    def _remember(self, slot: tuple[str, bool], key: tuple[int, int, int], body: bytes) -> None:
        old = self._bodies.pop(slot, None)
        if old is not None:
            self._body_bytes -= len(old[1])
        self._bodies[slot] = (key, body)
        self._body_bytes += len(body)
        while self._body_bytes > BODY_CACHE_BYTES and len(self._bodies) > 1:
            _, (_, evicted) = self._bodies.popitem(last=False)
            self._body_bytes -= len(evicted)

    async def endpoint(self, request: Request) -> Response:
        relative = request.path_params.get("path", "")
        found = self.find(relative)
        if found is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        path, rep = found
        gzipped = rep.size >= GZIP_MIN_BYTES and accepts_gzip(
            request.headers.get("accept-encoding", "")
        )
        etag = rep.gzip_etag if gzipped else rep.etag
        headers = {
            "ETag": etag,
            "Last-Modified": rep.last_modified,
            "Cache-Control": self.cache_control,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if self.hub and relative.endswith((".rss", ".atom", ".json")):  # WebSub discovery
            headers["Link"] = f'<{self.hub}>; rel="hub", <{self.base_url}{relative}>; rel="self"'
        if not_modified(request, etag, rep.mtime):
            return Response(status_code=304, headers=headers)
        headers["Content-Type"] = rep.content_type
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        if request.method == "HEAD":
            size = len(self.body(relative, path, rep, True)) if gzipped else rep.size
            headers["Content-Length"] = str(size)
            return Response(status_code=200, headers=headers)
        return Response(self.body(relative, path, rep, gzipped), status_code=200, headers=headers)


def _read(path: Path) -> tuple[bytes, tuple[int, int, int]]:
    """The file's bytes and the (inode, size, mtime) of exactly the file read."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        return handle.read(), (info.st_ino, info.st_size, info.st_mtime_ns)


def accepts_gzip(header: str) -> bool:
    """True if Accept-Encoding allows gzip (by name or by *), honouring q=0."""
    allowed: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip():
            allowed[name.strip().lower()] = quality
    if "gzip" in allowed:
        return allowed["gzip"] > 0
    if "x-gzip" in allowed:
        return allowed["x-gzip"] > 0
    return allowed.get("*", 0.0) > 0


def not_modified(request: Request, etag: str, mtime: int) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        # Weak comparison, as If-None-Match requires: W/"x" matches "x".
        candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return etag in candidates
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since is None or since.tzinfo is None:
            return False
        return mtime <= since.timestamp()
    return False


def create_app(config: Config, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The feeds of `config` at the path of `[feeds] base_url`, after any `extra_routes`."""
    files = FeedFiles(
        config.feeds_dir,
        config.feeds.cache_max_age,
        config.feeds.base_url,
        config.feeds.websub_hub,
    )
    prefix = urlsplit(config.feeds.base_url).path or "/"
    routes: list[BaseRoute] = [
        *extra_routes,
        Route(prefix + "{path:path}", files.endpoint, methods=["GET", "HEAD"]),
    ]
    if prefix != "/":
        routes.append(Route("/", lambda _request: RedirectResponse(prefix), methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.feed_files = files
    return app


def serve(config: Config, host: str, port: int, extra_routes: Sequence[BaseRoute] = ()) -> None:
    """Run the app under uvicorn until SIGTERM or Ctrl-C."""
    import uvicorn

    log.info("serve_start host=%s port=%d folder=%s", host, port, config.feeds_dir)
    uvicorn.run(
        create_app(config, extra_routes),
        host=host,
        port=port,
        log_config=None,  # keep newsdesk's own logging set-up
        access_log=False,
        server_header=False,
    )

"""HTTP fetching for feeds and pages: polite, bounded and incremental.

Every request has connect and read timeouts and an overall deadline; bodies are read as a
stream and abandoned past `max_bytes` (counted after gzip decoding, so a compressed bomb stops
too); redirects are followed by hand so that a permanent move can update the stored address;
conditional GET uses the stored ETag and Last-Modified. Many URLs are fetched at once by a
bounded pool, with at most `per_host` requests to any one host at a time. Nothing raises for a
bad response: every outcome, including errors, comes back as a `Fetched` value.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import httpx

from newsdesk.config import FetchConfig
from newsdesk.dates import as_utc
from newsdesk.urls import host_of, resolve

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("newsdesk")
    except PackageNotFoundError:
        return "0"


USER_AGENT = f"newsdesk/{_version()} (news feed aggregator; +https://pypi.org/project/newsdesk/)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, text/html;q=0.7, */*;q=0.1"
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_RETRY_LATER = frozenset({429, 503})

Outcome = Literal["ok", "not_modified", "gone", "retry_later", "error"]


# The `[fetch]` defaults of newsdesk.toml are the one place these numbers are written.
_DEFAULTS = FetchConfig()


@dataclass(frozen=True, slots=True)
class Limits:
    """How patient and how greedy fetching may be."""

    connect_timeout: float = _DEFAULTS.connect_timeout_seconds
    read_timeout: float = _DEFAULTS.read_timeout_seconds
    total_timeout: float = _DEFAULTS.total_timeout_seconds
    max_bytes: int = _DEFAULTS.max_body_bytes
    max_redirects: int = _DEFAULTS.max_redirects
    concurrency: int = _DEFAULTS.concurrency
    per_host: int = _DEFAULTS.per_host
    user_agent: str = USER_AGENT


@dataclass(frozen=True, slots=True)
class Request:
    """One URL to fetch; `key` is the caller's handle for it (a source name)."""

    key: str
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """What came back for one Request."""

    request: Request
    outcome: Outcome
    url: str  # the address the body came from, after redirects
    status: int | None = None
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None  # set when every redirect hop was permanent (301/308)
    retry_after: str | None = None  # the raw Retry-After header of a 429/503
    error: str = ""
    elapsed: float = field(default=0.0, compare=False)


class _Refused(Exception):
    """A response this fetcher will not read further (too big, too slow, bad redirect)."""


def client(limits: Limits) -> httpx.Client:
    """An httpx client set up with the limits; redirects are followed by `fetch_one` itself."""
    return httpx.Client(
        timeout=httpx.Timeout(
            connect=limits.connect_timeout,
            read=limits.read_timeout,
            write=limits.read_timeout,
            pool=limits.total_timeout,
        ),
        limits=httpx.Limits(
            max_connections=max(limits.concurrency, 1),
            max_keepalive_connections=max(limits.concurrency, 1),
        ),
        headers={"User-Agent": limits.user_agent, "Accept": ACCEPT},
        follow_redirects=False,
        trust_env=False,  # proxies and netrc from the environment are not newsdesk's to use
    )


def fetch_one(http: httpx.Client, request: Request, limits: Limits) -> Fetched:
    """Fetch one URL within the limits; every failure becomes an `error` outcome."""
    started = time.monotonic()
    deadline = started + limits.total_timeout
    url = request.url
    permanent = True
    hops = 0
    headers: dict[str, str] = {}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    try:
        while True:
            with http.stream("GET", url, headers=headers) as response:
                status = response.status_code
                location = response.headers.get("location")
                if status in _REDIRECTS and location:
                    hops += 1
                    if hops > limits.max_redirects:
                        raise _Refused(
                            f"more than {limits.max_redirects} redirects; "
                            "fix the source URL to point at the final address"
                        )
                    permanent = permanent and status in _PERMANENT
                    target = resolve(url, location)
                    if target is None:
                        raise _Refused(f"redirected to a non-http(s) address {location[:200]!r}")
                    url = target
                    continue
                moved = url if hops and permanent else None

                result = partial(
                    _finished, started, request=request, url=url, status=status, moved_to=moved
                )

                if status == 304:
                    return result(
                        "not_modified", etag=request.etag, last_modified=request.last_modified
                    )
                if status == 410:
                    return result(
                        "gone", error="HTTP 410 Gone: the publisher removed it; source disabled"
                    )
                if status in _RETRY_LATER:
                    return result(
                        "retry_later",
                        retry_after=response.headers.get("retry-after"),
                        error=f"HTTP {status} {response.reason_phrase}: "
                        "the server asked to come back later",
                    )
                if status >= 400 or status < 200:
                    return result("error", error=f"HTTP {status} {response.reason_phrase}")
                body = _read_body(response, limits, deadline)
                return result(
                    "ok",
                    body=body,
                    content_type=response.headers.get("content-type", ""),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
    except _Refused as refusal:
        message = str(refusal)
    except httpx.TimeoutException as timeout:
        message = f"timed out ({_timeout_kind(timeout)}); the server is too slow or unreachable"
    except httpx.TooManyRedirects:
        message = f"more than {limits.max_redirects} redirects"
    except httpx.HTTPError as error:
        message = f"{error.__class__.__name__}: {error or 'request failed'}"
    except (OSError, ValueError) as error:  # bad URL, bad header value, socket trouble
        message = f"{error.__class__.__name__}: {error}"
    return Fetched(
        request=request,
        outcome="error",
        url=url,
        error=message,
        elapsed=time.monotonic() - started,
    )


def _finished(started: float, outcome: Outcome, **values: Any) -> Fetched:
    return Fetched(outcome=outcome, elapsed=time.monotonic() - started, **values)


def _read_body(response: httpx.Response, limits: Limits, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _Refused(
            f"body is {int(declared)} bytes, over the {limits.max_bytes}-byte limit "
            "([fetch] max_body_bytes)"
        )
    chunks: list[bytes] = []
    total = 0
    # iter_bytes() yields decoded (gunzipped) bytes, so the limit holds for compressed bombs too.
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > limits.max_bytes:
            raise _Refused(
                f"body passed the {limits.max_bytes}-byte limit while streaming "
                "([fetch] max_body_bytes); abandoned"
            )
        if time.monotonic() > deadline:
            raise _Refused(
                f"response still arriving after {limits.total_timeout:g} s "
                "([fetch] total_timeout_seconds); abandoned"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _timeout_kind(error: httpx.TimeoutException) -> str:
    names = {
        httpx.ConnectTimeout: "connect",
        httpx.ReadTimeout: "read",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "waiting for a connection",
    }
    return names.get(type(error), "timeout")


def fetch_all(requests: Sequence[Request], limits: Limits) -> Iterator[Fetched]:
    """Fetch every request concurrently; yield results as they complete (any order).

    At most `limits.concurrency` requests run at once and at most `limits.per_host` of them go
    to the same host; the rest wait their turn, so a host with many feeds is never hammered.
    """
    if not requests:
        return
    pending: dict[str, deque[Request]] = defaultdict(deque)
    for request in requests:
        pending[host_of(request.url)].append(request)
    active: dict[str, int] = defaultdict(int)
    workers = max(1, limits.concurrency)
    with client(limits) as http, ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[Fetched], str] = {}

        def start_more() -> None:
            # Round-robin over hosts so one big host does not starve the others.
            progress = True
            while progress and len(running) < workers:
                progress = False
                for host in list(pending):
                    if len(running) >= workers:
                        break
                    if active[host] >= max(1, limits.per_host):
                        continue
                    request = pending[host].popleft()
                    if not pending[host]:
                        del pending[host]
                    active[host] += 1
                    running[pool.submit(fetch_one, http, request, limits)] = host
                    progress = True

        start_more()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                active[running.pop(future)] -= 1
                result = future.result()
                log.debug(
                    "fetched key=%s outcome=%s status=%s bytes=%d seconds=%.3f",
                    result.request.key,
                    result.outcome,
                    result.status,
                    len(result.body),
                    result.elapsed,
                )
                start_more()
                yield result


def retry_time(header: str | None, now: datetime) -> datetime | None:
    """When a Retry-After header (delay in seconds, or an HTTP date) allows the next try."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return now + timedelta(seconds=int(text))
    try:
        return max(as_utc(parsedate_to_datetime(text)), now)
    except (TypeError, ValueError, IndexError):
        return None

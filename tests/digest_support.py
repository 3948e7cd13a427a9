"""Helpers for the digest tests: a workspace with tagged articles, and a real SMTP server.

The SMTP server is aiosmtpd on 127.0.0.1. Its handler can be told to answer a recipient with
4xx or 5xx, to drop the connection at the Nth message, or to hold one message until released.
It notes whether each message came over TLS and who had logged in to send it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import textwrap
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from conftest import NOW, REPO, free_port

from newsdesk.config import Config, load_config
from newsdesk.models import Article, Tag
from newsdesk.store import Store

SECRET = "test-secret-0123456789abcdef"
EUROPE = Tag("region", "150", "Europe", 5.0, ("FR",))
ASIA = Tag("region", "142", "Asia", 5.0, ("JP",))
FRANCE = Tag("country", "FR", "France", 5.0, ("Paris",))
JAPAN = Tag("country", "JP", "Japan", 5.0, ("Tokyo",))
W_EUROPE = Tag("subregion", "155", "Western Europe", 5.0, ("FR",))
E_ASIA = Tag("subregion", "030", "Eastern Asia", 5.0, ("JP",))
SPORT = Tag("topic", "medtop:15000000", "sport", 4.0, ("match",))
POLITICS = Tag("topic", "medtop:11000000", "politics", 4.0, ("election",))


def make_article(
    identifier: str,
    title: str,
    tags: tuple[Tag, ...],
    hours_ago: float = 1,
    summary: str = "A short summary of what happened.",
) -> Article:
    return Article(
        id=identifier,
        title=title,
        summary=summary,
        body_text=summary,
        body_html=f"<p>{summary}</p>",
        language="en",
        published=NOW - timedelta(hours=hours_ago),
        url=f"https://example.org/news/{identifier}",
        source="Example Wire",
        fingerprint=f"fp-{identifier}",
        tags=tags,
    )


def europe_article(identifier: str, title: str = "") -> Article:
    return make_article(
        identifier, title or f"Paris story {identifier}", (EUROPE, W_EUROPE, FRANCE, POLITICS)
    )


def asia_article(identifier: str, title: str = "") -> Article:
    return make_article(
        identifier, title or f"Tokyo match {identifier}", (ASIA, E_ASIA, JAPAN, SPORT)
    )


def write_workspace(root: Path, extra: str = "", subscribers: str = "") -> Path:
    """Templates, a config (SMTP and subscribers as given) and an empty database under root."""
    shutil.copytree(REPO / "templates", root / "templates", dirs_exist_ok=True)
    config = root / "newsdesk.toml"
    config.write_text(
        textwrap.dedent(
            """\
            [feeds]
            base_url = "https://news.example.org/feeds/"
            title = "newsdesk"

            [digest]
            sender = "newsdesk <digest@news.example.org>"
            unsubscribe_url = "https://news.example.org/unsubscribe"
            secret_env = "NEWSDESK_TEST_UNSUBSCRIBE_SECRET"
            """
        )
        + textwrap.dedent(extra)
        + textwrap.dedent(subscribers),
        encoding="utf-8",
    )
    return config


def smtp_section(port: int, retries: int = 3) -> str:
    return f"""
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout_seconds = 10
retries = {retries}
retry_backoff_seconds = 0.01
"""


def open_workspace(config_path: Path) -> tuple[Config, Store]:
    config = load_config(config_path)
    return config, Store.open(config.database_url())


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool = False  # the session was encrypted (STARTTLS or implicit TLS)
    login: bytes | None = None  # the AUTH identity, if the client logged in

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    """What the SMTP server does and saw; the test thread and the server thread share it."""

    received: list[Received] = field(default_factory=list)
    rcpt_answers: dict[str, list[str]] = field(default_factory=dict)  # address -> answers to pop
    drop_at: set[int] = field(default_factory=set)  # DATA numbers (1-based) to drop
    hold_at: int = 0  # keep the client waiting after storing this DATA number
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    data_count: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def per_recipient(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for item in self.received for rcpt in item.rcpt_tos)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if session.ssl is None:  # the EHLO repeated after STARTTLS is the same connection
            with self.lock:
                self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            answers = self.rcpt_answers.get(address)
            answer = answers.pop(0) if answers else ""
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_count += 1
            number = self.data_count
            drop = number in self.drop_at
        if drop:
            server.transport.abort()  # gone before "250": the client cannot know it arrived
            return "421 gone"
        tls = server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    tls,
                    session.login_data,
                )
            )
        if number == self.hold_at:
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return "250 OK queued"


class SmtpServer:
    def __init__(self, port: int = 0, **options: Any) -> None:
        """`options` go to aiosmtpd's Controller: tls_context, ssl_context, authenticator..."""
        self.sink = Sink()
        self.port = port or free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **options)

    @classmethod
    def on_port(cls, port: int) -> SmtpServer:
        return cls(port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sink.release.set()
        self.controller.stop()


def stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")

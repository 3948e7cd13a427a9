"""Plain frozen records that flow through the pipeline, past the parse boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

TagKind = Literal["country", "subregion", "region", "topic"]
BlockKind = Literal["heading", "paragraph"]


@dataclass(frozen=True, slots=True)
class Block:
    """One block of article text: a subheading or a paragraph."""

    kind: BlockKind
    text: str


@dataclass(frozen=True, slots=True)
class RawEntry:
    """What a source read, before normalization: every field may still be messy or missing."""

    origin: str  # where it came from, for error messages: a path, or a URL
    key: str  # identity within its source: explicit id, url, or relative path
    source: str
    blocks: tuple[Block, ...]
    title: str | None = None
    summary: str | None = None
    url: str | None = None
    published: datetime | None = None
    language: str | None = None
    fallback_time: datetime | None = None  # e.g. file mtime, used when nothing says when


@dataclass(frozen=True, slots=True)
class Tag:
    """A region or topic assigned to an article, with why it was assigned."""

    kind: TagKind
    code: str  # ISO alpha-2, M49 code, or IPTC qcode such as "medtop:16000000"
    label: str
    score: float
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Article:
    """A normalized, tagged news article."""

    id: str
    title: str
    summary: str
    body_text: str
    body_html: str
    language: str
    published: datetime  # always timezone-aware UTC
    url: str
    source: str
    fingerprint: str
    tags: tuple[Tag, ...] = field(default=())

    def tags_of(self, kind: TagKind) -> tuple[Tag, ...]:
        """The article's tags of one kind, highest score first."""
        return tuple(sorted((t for t in self.tags if t.kind == kind), key=lambda t: -t.score))


@dataclass(frozen=True, slots=True)
class FeedItem:
    """An article as every feed shows it, serialized: its RSS item, Atom entry and JSON Feed
    item, and what a feed's head needs to know of it (its date and language)."""

    id: str
    published: datetime
    language: str
    rss: bytes
    atom: bytes
    json: bytes


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Someone who receives the digest, and what they want in it."""

    email: str
    name: str = ""
    regions: tuple[str, ...] = ()  # M49 region or sub-region names or codes
    countries: tuple[str, ...] = ()  # ISO alpha-2
    topics: tuple[str, ...] = ()  # IPTC codes such as "medtop:15000000"
    language: str = "en"
    frequency: str = "daily"  # daily | weekly
    timezone: str = "UTC"
    time: str = "07:00"  # HH:MM in `timezone`: when the daemon sends this subscriber's digest


@dataclass(frozen=True, slots=True)
class CustomRegion:
    """An operator's own region, such as "Korean Peninsula" = KP + KR; it gets feeds too."""

    name: str
    countries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CustomTopic:
    """An operator's own topic: phrases per language (or "*") and regular expressions."""

    name: str
    phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patterns: tuple[str, ...] = ()
    threshold: float = 2.0

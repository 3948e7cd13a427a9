"""A feed reader's OPML subscription list -> feeds to follow (name, URL, title)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from newsdesk.errors import InputError
from newsdesk.sources.feeds import decode_document, refuse_entities
from newsdesk.urls import host_of, is_web_url


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    url: str
    title: str


def read_opml(data: bytes, origin: str) -> tuple[list[Subscription], list[str]]:
    """(subscriptions, problems): every outline with an http(s) xmlUrl, nested ones included."""
    text, _ = decode_document(data, "", origin)
    refuse_entities(text, origin)
    try:
        # Expat refuses undeclared entities and never loads external ones; the DOCTYPE check
        # above has already refused any entity declarations.
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as error:
        raise InputError(origin, f"not valid OPML/XML ({error}); export it again") from None
    if root.tag.lower() != "opml":
        raise InputError(origin, f"root element is <{root.tag}>, not <opml>; is this an OPML file?")
    found: list[Subscription] = []
    problems: list[str] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url:
            continue  # a folder of outlines, not a feed
        title = " ".join((outline.get("title") or outline.get("text") or "").split())
        if not is_web_url(url):
            problems.append(f"{title or url!r}: xmlUrl {url[:200]!r} is not an http(s) URL")
            continue
        if url in seen:
            continue
        seen.add(url)
        found.append(Subscription(name=(title or host_of(url))[:200], url=url, title=title))
    return found, problems

"""feedgen extensions for the few elements feedgen 1.0 does not write itself.

- RSS channel: `atom:link rel="alternate"` to the sibling formats and `rel="hub"` (feedgen puts
  only the first `rel="self"` link of the feed into RSS).
- Atom entry: `xml:lang` (feedgen has it on the feed only).

RSS items get `dc:creator` and `dc:language` from feedgen's own `dc` extension. Entries join
no FeedGenerator (each is serialized once and spliced into every feed that carries it, see
`newsdesk.feeds.ItemRenderer`), so both are registered on each FeedEntry when it is made.
"""

from __future__ import annotations

from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

NAMESPACE = "newsdesk"
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class FeedLinks(BaseExtension):  # type: ignore[misc]  # feedgen ships no type hints
    """Extra `atom:link` elements in an RSS channel, in the order they were added."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str]] = []  # (rel, media type or "", href)

    def link(self, rel: str, href: str, media_type: str = "") -> None:
        self.links.append((rel, media_type, href))

    def extend_rss(self, feed: Any) -> Any:
        channel = feed[0]  # feedgen's <rss> holds one <channel>
        for rel, media_type, href in self.links:
            element = etree.SubElement(channel, f"{{{ATOM_NS}}}link", rel=rel)
            if media_type:
                element.set("type", media_type)
            element.set("href", href)
        return feed


class EntryLanguage(BaseEntryExtension):  # type: ignore[misc]  # feedgen ships no type hints
    """`xml:lang` on an Atom entry (RSS items carry `dc:language` instead)."""

    def __init__(self) -> None:
        self.language = ""

    def extend_atom(self, entry: Any) -> Any:
        if self.language:
            entry.set(XML_LANG, self.language)
        return entry

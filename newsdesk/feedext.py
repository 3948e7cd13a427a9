"""feedgen extensions for the few elements feedgen 1.0 does not write itself, and a FeedEntry
that is rendered once however many feeds carry it.

- RSS channel: `atom:link rel="alternate"` to the sibling formats and `rel="hub"` (feedgen puts
  only the first `rel="self"` link of the feed into RSS).
- Atom entry: `xml:lang` (feedgen has it on the feed only).

RSS items get `dc:creator` and `dc:language` from feedgen's own `dc` extension. Both are
registered on each FeedEntry when it is made, for both formats (feedgen makes the instance an
attribute named after the extension): a FeedGenerator would otherwise register its own on the
entries it adds, and a shared entry would render as the first feed that added it wanted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from feedgen.entry import FeedEntry
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


class SharedEntry(FeedEntry):  # type: ignore[misc]  # feedgen ships no type hints
    """A FeedEntry that goes into many feeds of one build.

    feedgen builds an entry's element tree anew for every feed it is in; this one builds it
    once per format and hands every feed a copy (lxml copies a tree in C, ten times faster than
    feedgen builds it). So set everything before the entry is first rendered: later changes
    would not show.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rendered: dict[tuple[str, bool], Any] = {}

    def rss_entry(self, extensions: bool = True) -> Any:
        return self._copy("rss", extensions, super().rss_entry)

    def atom_entry(self, extensions: bool = True) -> Any:
        return self._copy("atom", extensions, super().atom_entry)

    def _copy(self, fmt: str, extensions: bool, render: Callable[[bool], Any]) -> Any:
        element = self._rendered.get((fmt, extensions))
        if element is None:
            element = self._rendered[(fmt, extensions)] = render(extensions)
        return copy.deepcopy(element)  # the original never joins a feed's tree

"""Operators' own regions and topics from the config, tagged like any other."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from newsdesk.models import CustomRegion, CustomTopic, Tag
from newsdesk.slugs import slugify
from newsdesk.tagging.matcher import PhraseMatcher
from newsdesk.tagging.zones import ZONE_WEIGHTS, Zones

CUSTOM_PREFIX = "x-"  # custom codes never collide with M49 numbers or IPTC qcodes


def custom_code(name: str) -> str:
    return CUSTOM_PREFIX + slugify(name)


def region_tags(regions: Sequence[CustomRegion], country_tags: Sequence[Tag]) -> list[Tag]:
    """A custom region applies when any of its countries was tagged; it scores as its best one."""
    scores = {t.code: t.score for t in country_tags if t.kind == "country"}
    tags: list[Tag] = []
    for region in regions:
        members = [c for c in region.countries if c in scores]
        if members:
            best = max(scores[c] for c in members)
            tags.append(Tag("region", custom_code(region.name), region.name, best, tuple(members)))
    return tags


class CustomTopicTagger:
    """Phrase lists per language and regular expressions, each topic with its own threshold."""

    def __init__(self, topics: Sequence[CustomTopic]) -> None:
        self.topics = tuple(topics)
        self._matcher: PhraseMatcher[tuple[int, str]] = PhraseMatcher(
            (phrase, (index, language))
            for index, topic in enumerate(self.topics)
            for language, phrases in topic.phrases.items()
            for phrase in phrases
        )
        self._patterns = [
            [re.compile(pattern, re.IGNORECASE) for pattern in topic.patterns]
            for topic in self.topics
        ]

    def tags(self, zones: Zones, language: str) -> list[Tag]:
        if not self.topics:
            return []
        scores: dict[int, float] = defaultdict(float)
        evidence: dict[int, list[str]] = defaultdict(list)
        folded = zones.folded
        for match in self._matcher.find(folded):
            for index, phrase_language in match.payloads:
                if phrase_language in (language, "*"):
                    scores[index] += ZONE_WEIGHTS[zones.zone(match.start)]
                    evidence[index].append(zones.text[match.start : match.end])
        for index, patterns in enumerate(self._patterns):
            for pattern in patterns:
                for found in pattern.finditer(zones.text):
                    scores[index] += ZONE_WEIGHTS[zones.zone(found.start())]
                    evidence[index].append(found.group(0))
        return [
            Tag(
                "topic",
                custom_code(topic.name),
                topic.name,
                round(scores[index], 3),
                tuple(dict.fromkeys(evidence[index])),
            )
            for index, topic in enumerate(self.topics)
            if scores[index] >= topic.threshold
        ]

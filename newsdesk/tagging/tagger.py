"""The tagging facade: one call gives an article its countries, regions and topics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from newsdesk.models import Article, CustomRegion, CustomTopic, Tag
from newsdesk.tagging import custom, gazetteer, regions, topics
from newsdesk.tagging.zones import split_zones


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything tagging saw in one article, for `newsdesk explain`."""

    regions: regions.RegionAnalysis
    topics: topics.TopicAnalysis
    tags: tuple[Tag, ...]


class Tagger:
    """Holds the gazetteer and lexicon automata, built or loaded once per process."""

    def __init__(
        self,
        min_city_population: int = 50_000,
        cache_dir: Path | None = None,
        custom_regions: Sequence[CustomRegion] = (),
        custom_topics: Sequence[CustomTopic] = (),
    ) -> None:
        self.gazetteer = gazetteer.load(min_city_population, cache_dir)
        self.lexicon = topics.lexicon()
        self.custom_regions = tuple(custom_regions)
        self.custom_topics = custom.CustomTopicTagger(custom_topics)

    def analyze(self, title: str, body: str, language: str) -> Analysis:
        zones = split_zones(title, body)
        region_analysis = regions.analyze(zones, language, self.gazetteer)
        topic_analysis = topics.analyze(zones, language, self.lexicon)
        region_tags = regions.region_tags(region_analysis)
        tags = (
            *region_tags,
            *custom.region_tags(self.custom_regions, region_tags),
            *topics.topic_tags(topic_analysis),
            *sorted(self.custom_topics.tags(zones, language), key=lambda t: -t.score),
        )
        return Analysis(regions=region_analysis, topics=topic_analysis, tags=tags)

    def tag(self, article: Article) -> Article:
        """The article with its tags replaced by freshly computed ones."""
        analysis = self.analyze(article.title, article.body_text, article.language)
        return dataclasses.replace(article, tags=analysis.tags)

"""`newsdesk explain`: why an article got each of its tags, in words an editor can check."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from newsdesk import pipeline
from newsdesk.config import Config
from newsdesk.errors import InputError, NewsdeskError
from newsdesk.normalize import normalize
from newsdesk.sources.files import read_file
from newsdesk.store import Store
from newsdesk.tagging import regions as region_tagging
from newsdesk.tagging import topics as topic_tagging
from newsdesk.tagging.tagger import Analysis


def explain_target(config: Config, target: str, now: datetime) -> str:
    """A report for a stored article id, or for every article in an input file."""
    tagger = pipeline.make_tagger(config)
    path = Path(target)
    reports: list[str] = []
    if path.exists():
        for result in read_file(path, config.root, config.ingest.max_file_bytes):
            if isinstance(result, InputError):
                raise result
            article = normalize(
                result, now, config.ingest.languages, config.ingest.default_language
            )
            analysis = tagger.analyze(article.title, article.body_text, article.language)
            reports.append(render(article.id, article.title, article.language, analysis))
        return "\n\n".join(reports)
    store = Store.open(config.database_url())
    stored = store.article(target)
    if stored is None:
        raise NewsdeskError(f"{target}: no such file and no stored article with that id")
    analysis = tagger.analyze(stored.title, stored.body_text, stored.language)
    return render(stored.id, stored.title, stored.language, analysis)


def render(article_id: str, title: str, language: str, analysis: Analysis) -> str:
    lines = [f"article {article_id} ({language}): {title}", "", "countries (score, kept?):"]
    scores = analysis.regions.scores
    for code, score in sorted(scores.items(), key=lambda item: -item[1]):
        verdict = "kept" if code in analysis.regions.kept else "below threshold"
        lines.append(f"  {code}  {score:6.2f}  {verdict}")
        for mention in analysis.regions.mentions:
            if mention.country == code:
                lines.append(
                    f"      {mention.surface!r} {mention.kind} in {mention.zone} "
                    f"at {mention.start} (+{mention.weight:.2f})"
                )
    lines.append(
        f"  thresholds: score >= {region_tagging.MIN_SCORE} and >= "
        f"{region_tagging.RELATIVE_SCORE:.0%} of the top country"
    )
    lines += ["", "regions:"]
    for tag in analysis.tags:
        if tag.kind in ("subregion", "region"):
            lines.append(f"  {tag.kind} {tag.label} ({tag.code}) from {', '.join(tag.evidence)}")
    lines += ["", "topics (score, kept?):"]
    for code, score in sorted(analysis.topics.scores.items(), key=lambda item: -item[1]):
        verdict = "kept" if code in analysis.topics.kept else "below threshold"
        primary = " primary" if analysis.topics.kept and code == analysis.topics.kept[0] else ""
        lines.append(f"  {code}  {score:6.2f}  {verdict}{primary}")
        for hit in analysis.topics.hits:
            if hit.cue.code == code:
                lines.append(f"      {hit.surface!r} in {hit.zone} (+{hit.weight:.2f})")
    lines.append(
        f"  thresholds: score >= {topic_tagging.MIN_SCORE} and >= "
        f"{topic_tagging.RELATIVE_SCORE:.0%} of the primary topic"
    )
    return "\n".join(lines)

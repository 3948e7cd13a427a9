"""The feeds folder as a whole: every feed in every format, index.html and feeds.opml, written
incrementally.

A build first compares a hash of the store's state and the settings with the manifest: if
nothing moved, nothing is read or written. Otherwise each feed's items are selected (ids only)
and hashed; only feeds whose hash changed are rendered, and a rendered file that comes out
byte-identical is still not rewritten, so unchanged files keep their bytes and their mtime.
A feed is its head plus its items' bytes, and those come from the store when an earlier build
rendered the same version of the article with the same code; only the others are rendered
(and stored for the next build).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jinja2 import Environment
from sqlalchemy.exc import SQLAlchemyError

from newsdesk import feeds as feedlib
from newsdesk.catalog import KIND_HEADINGS, KIND_ORDER, FeedDef, define_feeds
from newsdesk.config import Config
from newsdesk.manifest import Manifest
from newsdesk.models import FeedItem
from newsdesk.publish import Batch
from newsdesk.store import Store

log = logging.getLogger(__name__)

# Bump when the rendered bytes change for the same input, so every feed is rendered again.
RENDER_VERSION = "3"  # 3: RSS and Atom written by feedgen
DISCOVERY_KINDS = ("all", "custom", "region")  # feeds announced by <link rel="alternate">


@dataclass
class SiteReport:
    directory: Path
    feeds: int = 0
    written: list[str] = field(default_factory=list)  # file names
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    changed_urls: list[str] = field(default_factory=list)  # feeds whose content changed


def site_for(config: Config) -> feedlib.Site:
    return feedlib.Site(
        base_url=config.feeds.base_url,
        title=config.feeds.title,
        description=config.feeds.description,
        default_language=config.ingest.default_language,
        hub=config.feeds.websub_hub,
    )


def topic_parents() -> dict[str, str]:
    """IPTC topic code -> parent code, from the shipped taxonomy (empty if it is missing)."""
    from newsdesk.tagging.taxonomy import topics

    try:
        return {code: topic.parent for code, topic in topics().items()}
    except FileNotFoundError as error:
        log.warning("taxonomy_missing path=%s; every topic counts as top level", error.filename)
        return {}


def build_site(
    config: Config,
    store: Store,
    templates: Environment,
    now: datetime,
    parents: Mapping[str, str] | None = None,
) -> SiteReport:
    """Bring the feeds folder up to date with the store; see the module docstring."""
    out = config.feeds_dir
    out.mkdir(parents=True, exist_ok=True)
    site = site_for(config)
    report = SiteReport(directory=out)
    previous = Manifest.load(out)
    template_source = templates.loader.get_source(templates, "index.html")[0]  # type: ignore[union-attr]
    settings = _hash(
        [
            RENDER_VERSION,
            feedlib.ITEM_FORMAT,
            repr(config.feeds),
            repr(config.custom_feeds),
            repr(config.regions),
            config.ingest.default_language,
            template_source,
        ]
    )
    state = _hash([settings, *map(str, store.feed_state(now))])
    if previous.state == state and previous.all_intact(out):
        report.feeds = len(previous.feeds)
        report.unchanged = len(previous.files)
        log.info("build_skipped reason=nothing_changed files=%d", report.unchanged)
        return report

    definitions = define_feeds(
        store.tag_counts(),
        store.language_counts(now),
        config.custom_feeds,
        config.feeds.title,
        config.feeds.min_country_articles,
        topic_parents() if parents is None else parents,
        [region.name for region in config.regions],
    )
    report.feeds = len(definitions)
    limit = config.feeds.item_limit
    selections = {f.slug: store.feed_item_ids(f.wanted, limit, now) for f in definitions}
    keys = store.item_keys(list(dict.fromkeys(i for ids in selections.values() for i in ids)))

    manifest = Manifest(state=state)
    stale: list[FeedDef] = []
    for feed in definitions:
        ids = selections[feed.slug]
        manifest.feeds[feed.slug] = _hash(
            [settings, repr(feed), *(f"{i}={keys[i][0]}" for i in ids if i in keys)]
        )
        files = _file_names(feed)
        if previous.feeds.get(feed.slug) == manifest.feeds[feed.slug] and all(
            previous.intact(out, name) for name in files
        ):
            for name in files:
                manifest.carry(previous, name)
            report.unchanged += len(files)
        else:
            stale.append(feed)

    wanted_ids = list(dict.fromkeys(i for feed in stale for i in selections[feed.slug]))
    rendered = _items(store, wanted_ids, keys, site)
    names: list[str] = []  # every file this build stages, written or not
    with Batch() as batch:
        for feed in stale:
            items = [rendered[i] for i in selections[feed.slug] if i in rendered]
            changed = False
            for fmt, name in zip(feedlib.FORMATS, _file_names(feed), strict=True):
                content = feedlib.render_feed(feed, items, fmt, site, now)
                changed |= _stage(batch, out, name, content, report)
                names.append(name)
            if changed:
                report.changed_urls += [
                    feedlib.feed_url(site, feed, fmt) for fmt in feedlib.FORMATS
                ]
        index = _render_index(templates, definitions, selections, keys, config)
        _stage(batch, out, "index.html", index.encode("utf-8"), report)
        updated = _newest(store, selections["all"], rendered, now)
        opml = feedlib.render_opml(definitions, site, updated)
        _stage(batch, out, "feeds.opml", opml, report)
        names += ["index.html", "feeds.opml"]
    for name in names:  # after the commit: the manifest records the files as they now are
        manifest.record(out, name)

    report.removed = manifest.remove_stale(previous, out)
    if stale:
        _prune_items(store, selections)
    manifest.save(out)
    log.info(
        "build_done feeds=%d rendered=%d written=%d unchanged=%d removed=%d",
        report.feeds,
        len(stale),
        len(report.written),
        report.unchanged,
        len(report.removed),
    )
    return report


def _newest(
    store: Store, newest_ids: list[str], loaded: Mapping[str, FeedItem], now: datetime
) -> datetime:
    """The newest item's date (the OPML's dateModified), or `now` when there is none."""
    if not newest_ids:
        return now
    found = loaded.get(newest_ids[0]) or store.feed_articles(newest_ids[:1]).get(newest_ids[0])
    return found.published if found is not None else now


def _items(
    store: Store, ids: list[str], keys: Mapping[str, tuple[str, str]], site: feedlib.Site
) -> dict[str, FeedItem]:
    """Each article's feed item: stored from an earlier build, else rendered now and stored."""
    item_keys = {i: f"{feedlib.ITEM_FORMAT}|{keys[i][0]}" for i in ids if i in keys}
    found = store.feed_items(item_keys)
    missing = [i for i in item_keys if i not in found]
    if not missing:
        return found
    renderer = feedlib.ItemRenderer(site)
    articles = store.feed_articles(missing)
    fresh = {i: renderer.render(articles[i]) for i in missing if i in articles}
    try:
        store.save_feed_items([(item_keys[i], item) for i, item in fresh.items()])
    except SQLAlchemyError as error:  # only a cache: the next build renders them again
        log.warning("feed_items_not_saved error=%s", str(error).splitlines()[0])
    return found | fresh


def _prune_items(store: Store, selections: Mapping[str, list[str]]) -> None:
    """Forget the stored items of articles no feed carries any more."""
    try:
        pruned = store.prune_feed_items(i for ids in selections.values() for i in ids)
    except SQLAlchemyError as error:
        log.warning("feed_items_not_pruned error=%s", str(error).splitlines()[0])
    else:
        if pruned:
            log.info("feed_items_pruned count=%d", pruned)


def _file_names(feed: FeedDef) -> list[str]:
    return [f"{feed.slug}.{extension}" for extension in feedlib.FORMATS.values()]


def _stage(batch: Batch, out: Path, name: str, content: bytes, report: SiteReport) -> bool:
    written = batch.stage(out / name, content)
    if written:
        report.written.append(name)
    else:
        report.unchanged += 1
    return written


def _render_index(
    templates: Environment,
    definitions: list[FeedDef],
    selections: Mapping[str, list[str]],
    keys: Mapping[str, tuple[str, str]],
    config: Config,
) -> str:
    rows: dict[str, list[dict[str, object]]] = {}
    for feed in definitions:
        ids = selections[feed.slug]
        rows.setdefault(feed.kind, []).append(
            {
                "title": feed.title,
                "slug": feed.slug,
                "rss": f"{feed.slug}.rss",
                "atom": f"{feed.slug}.atom",
                "json": f"{feed.slug}.json",
                "count": len(ids),
                "latest": keys[ids[0]][1] if ids and ids[0] in keys else "",
            }
        )
    groups = [
        {"kind": kind, "heading": KIND_HEADINGS[kind], "rows": rows[kind]}
        for kind in KIND_ORDER
        if kind in rows
    ]
    return templates.get_template("index.html").render(
        title=config.feeds.title,
        description=config.feeds.description,
        groups=groups,
        discovery=[
            {
                "title": feed.title,
                "rss": f"{feed.slug}.rss",
                "atom": f"{feed.slug}.atom",
                "json": f"{feed.slug}.json",
            }
            for feed in definitions
            if feed.kind in DISCOVERY_KINDS
        ],
    )


def _hash(parts: list[str]) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()

"""`newsdesk digest preview`: one subscriber's digest as files; nothing sent, nothing recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsdesk import pipeline
from newsdesk.config import Config
from newsdesk.digest import period_key, render_digest, subscriber_filter
from newsdesk.errors import NewsdeskError
from newsdesk.publish import write_if_changed
from newsdesk.slugs import slugify
from newsdesk.store import Store

PREVIEW_LATEST = 30


@dataclass(frozen=True)
class PreviewResult:
    html_path: Path
    text_path: Path
    note: str = ""


def write_preview(
    config: Config, store: Store, email: str, out_dir: Path, now: datetime
) -> PreviewResult:
    """Render what `email` would get now; with nothing new, their latest matching articles."""
    record = store.subscriber_record(email.strip())
    if record is None:
        raise NewsdeskError(
            f"no subscriber {email!r}; add one with `newsdesk subscribers add` first"
        )
    subscriber = record.subscriber
    period = period_key(subscriber, now)
    articles = pipeline.select_articles(store, subscriber, period, now)
    note = ""
    if not articles:
        articles = store.articles(subscriber_filter(subscriber, None), limit=PREVIEW_LATEST)
        note = (
            f"nothing new for {subscriber.email} in period {period} (no digest would be sent); "
            f"previewing their latest {len(articles)} matching articles"
        )
    settings = pipeline.digest_settings(config, store)
    rendered = render_digest(articles, subscriber, pipeline.templates_for(config), settings, now)
    stem = f"preview-{period}-{slugify(subscriber.email)}"
    html_path = out_dir / f"{stem}.html"
    text_path = out_dir / f"{stem}.txt"
    write_if_changed(html_path, rendered.html.encode("utf-8"))
    write_if_changed(text_path, rendered.text.encode("utf-8"))
    return PreviewResult(html_path, text_path, note)

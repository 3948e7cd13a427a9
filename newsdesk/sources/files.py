"""Local files -> RawEntry: .txt, .md, .html, .json and .jsonl, chosen by file extension."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from bs4 import BeautifulSoup

from newsdesk.dates import parse_datetime
from newsdesk.errors import InputError
from newsdesk.models import RawEntry
from newsdesk.sources.decoding import decode_text
from newsdesk.sources.html import html_blocks, parse_page
from newsdesk.sources.markdown import markdown_article
from newsdesk.sources.text import text_blocks

log = logging.getLogger(__name__)

LOCAL_SOURCE = "local"
Result = RawEntry | InputError


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Every readable input under `paths` (folders searched recursively, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                hidden = any(part.startswith(".") for part in relative.parts)
                if child.is_file() and not hidden and child.suffix.lower() in READERS:
                    yield child
        else:
            yield path


def read_file(path: Path, key_root: Path, max_bytes: int) -> list[Result]:
    """All entries a file holds; a problem becomes an InputError in the list, never a raise."""
    origin = str(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(READERS))
        return [
            InputError(origin, f"unsupported file type {path.suffix or '(none)'!r}; use {known}")
        ]
    try:
        stat = path.stat()
        if stat.st_size > max_bytes:
            return [
                InputError(
                    origin,
                    f"file is {stat.st_size} bytes, over the {max_bytes}-byte limit "
                    "([ingest] max_file_bytes); split it or raise the limit",
                )
            ]
        text = decode_text(path.read_bytes(), origin)
    except InputError as error:
        return [error]
    except OSError as error:
        return [InputError(origin, f"cannot read file: {error.strerror}")]
    mtime = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    key = f"file:{_relative_key(path, key_root)}"
    try:
        return list(reader(text, origin, key, mtime))
    except InputError as error:
        return [error]


def _relative_key(path: Path, root: Path) -> str:
    # Ids must not depend on where the checkout lives, so key files relative to the workspace.
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _read_text(text: str, origin: str, key: str, mtime: datetime) -> Iterator[Result]:
    title, blocks = text_blocks(text)
    yield RawEntry(
        origin=origin, key=key, source=LOCAL_SOURCE, blocks=blocks, title=title, fallback_time=mtime
    )


def _read_markdown(text: str, origin: str, key: str, mtime: datetime) -> Iterator[Result]:
    try:
        meta, headline, blocks = markdown_article(text)
    except yaml.YAMLError as error:
        raise InputError(
            origin, f"front matter is not valid YAML ({error}); fix the --- block"
        ) from None
    yield RawEntry(
        origin=origin,
        key=key,
        source=_text_field(meta, "source") or LOCAL_SOURCE,
        blocks=blocks,
        title=_text_field(meta, "title") or headline,
        summary=_text_field(meta, "summary") or _text_field(meta, "description"),
        url=_text_field(meta, "url"),
        published=parse_datetime(meta.get("date") or meta.get("published")),
        language=_text_field(meta, "lang") or _text_field(meta, "language"),
        fallback_time=mtime,
    )


def _read_html(text: str, origin: str, key: str, mtime: datetime) -> Iterator[Result]:
    page = parse_page(text)
    if not page.blocks:
        raise InputError(origin, "HTML page holds no article text; check it is an article page")
    yield RawEntry(
        origin=origin,
        key=key,
        source=page.source or LOCAL_SOURCE,
        blocks=page.blocks,
        title=page.title,
        summary=page.summary,
        url=page.url,
        published=page.published,
        language=page.language,
        fallback_time=mtime,
    )


def _read_json(text: str, origin: str, key: str, mtime: datetime) -> Iterator[Result]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(origin, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items, start=1):
        yield _json_entry(item, f"{origin}: item {index}", f"{key}#{index}", mtime)


def _read_jsonl(text: str, origin: str, key: str, mtime: datetime) -> Iterator[Result]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{origin}: line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            yield InputError(where, f"not valid JSON ({error.msg})")
            continue
        yield _json_entry(item, where, f"{key}#{number}", mtime)


def _json_entry(item: Any, origin: str, fallback_key: str, mtime: datetime) -> Result:
    """One explicit-field JSON object; `title` and `body` (or `body_html`) are required."""
    if not isinstance(item, dict):
        return InputError(origin, "expected a JSON object with title and body fields")
    missing = [name for name in ("title",) if not _text_field(item, name)]
    body = _text_field(item, "body")
    body_markup = _text_field(item, "body_html")
    if not body and not body_markup:
        missing.append("body")
    if missing:
        return InputError(origin, f"missing required field {missing[0]!r}; add it")
    if body:
        _, blocks = text_blocks(body)
    else:
        blocks = html_blocks(BeautifulSoup(body_markup or "", "lxml"))
    explicit_id = _text_field(item, "id")
    url = _text_field(item, "url")
    published = parse_datetime(item.get("published"))
    if item.get("published") and published is None:
        return InputError(
            origin, f"field 'published' is not an ISO 8601 date: {item['published']!r}"
        )
    return RawEntry(
        origin=origin,
        key=f"id:{explicit_id}" if explicit_id else (f"url:{url}" if url else fallback_key),
        source=_text_field(item, "source") or LOCAL_SOURCE,
        blocks=blocks,
        title=_text_field(item, "title"),
        summary=_text_field(item, "summary"),
        url=url,
        published=published,
        language=_text_field(item, "language") or _text_field(item, "lang"),
        fallback_time=mtime,
    )


def _text_field(mapping: dict[str, Any], name: str) -> str | None:
    value = mapping.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


READERS: dict[str, Callable[[str, str, str, datetime], Iterator[Result]]] = {
    ".txt": _read_text,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".html": _read_html,
    ".htm": _read_html,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
}

"""Every input format, and every kind of bad input, through the real file readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NOW, REPO

from newsdesk.errors import InputError
from newsdesk.models import RawEntry
from newsdesk.normalize import normalize
from newsdesk.sources.files import discover, read_file

LANGUAGES = ("en", "fr", "de", "es", "it", "pt")


def entries(path: Path, limit: int = 5_000_000) -> list[RawEntry | InputError]:
    return read_file(path, path.parent, limit)


def test_every_seed_file_reads_without_error() -> None:
    files = list(discover([REPO / "seeds"]))
    suffixes = {f.suffix for f in files}
    assert {".txt", ".md", ".html", ".json", ".jsonl"} <= suffixes
    assert len(files) >= 10
    for path in files:
        for result in entries(path):
            assert isinstance(result, RawEntry), result


@pytest.mark.parametrize("name", [p.name for p in (REPO / "seeds").glob("*.html")])
def test_html_page_keeps_only_the_article(name: str) -> None:
    [raw] = entries(REPO / "seeds" / name)
    assert isinstance(raw, RawEntry)
    article = normalize(raw, NOW, LANGUAGES, "en")
    text = article.body_text.lower()
    for boilerplate in (
        "cookie",
        "advertisement",
        "publicité",
        "newsletter",
        "most read",
        "javascript",
    ):
        assert boilerplate not in text, (name, boilerplate)
    assert "<script" not in article.body_html and "onclick" not in article.body_html
    assert "<iframe" not in article.body_html
    assert len(article.body_text) > 800
    assert article.title and "|" not in article.title


def test_markdown_front_matter_fields(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text(
        "---\ntitle: Front matter title\ndate: 2026-11-20T08:30:00+01:00\n"
        "url: https://example.org/a\nlang: en\nsource: Example Wire\n---\n"
        "# Ignored heading\n\nThe lede paragraph of a markdown article about Canada's economy.\n\n"
        "## A subheading\n\nMore **text** with [a link](https://example.org).\n",
        encoding="utf-8",
    )
    [raw] = entries(path)
    assert isinstance(raw, RawEntry)
    article = normalize(raw, NOW, LANGUAGES, "en")
    assert article.title == "Front matter title"
    assert article.url == "https://example.org/a"
    assert article.source == "Example Wire"
    assert article.published.isoformat() == "2026-11-20T07:30:00+00:00"
    assert "<h2>A subheading</h2>" in article.body_html


def test_json_item_missing_body_is_reported_and_others_go_on(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(
        json.dumps(
            [
                {
                    "title": "Good one",
                    "body": "A complete paragraph about the Brazilian election result.",
                },
                {"title": "No body here"},
            ]
        ),
        encoding="utf-8",
    )
    first, second = entries(path)
    assert isinstance(first, RawEntry)
    assert isinstance(second, InputError)
    assert "item 2" in str(second) and "'body'" in str(second) and str(path) in str(second)


def test_jsonl_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(
        '{"title": "Fine", "body": "A complete paragraph about Kenyan tea farmers and prices."}\n'
        "{not json\n",
        encoding="utf-8",
    )
    first, second = entries(path)
    assert isinstance(first, RawEntry)
    assert isinstance(second, InputError) and "line 2" in str(second)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\n  ", "empty"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (
            "nothing.html",
            b"<html><body><nav><a href='/'>Home</a></nav><p>Hi</p></body></html>",
            "no article text",
        ),
        ("broken.json", b"{", "not valid JSON"),
        ("missing.json", b'{"body": "text without a title"}', "'title'"),
        ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
    ],
)
def test_bad_input_gets_a_one_line_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    results = entries(path)
    errors = [r for r in results if isinstance(r, InputError)]
    if not errors:  # an HTML page with no article is only refused at normalization
        [raw] = results
        assert isinstance(raw, RawEntry)
        with pytest.raises(InputError) as caught:
            normalize(raw, NOW, LANGUAGES, "en")
        errors = [caught.value]
    message = str(errors[0])
    assert reason in message and name in message and "\n" not in message


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("word " * 3000, encoding="utf-8")
    [error] = entries(path, limit=1000)
    assert isinstance(error, InputError) and "over the 1000-byte limit" in str(error)


def test_cp1252_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    text = (
        "L'été à Montréal\n\nLes élèves québécois ont manifesté contre la réforme scolaire, déçus."
    )
    path.write_bytes(text.encode("cp1252"))
    [raw] = entries(path)
    assert isinstance(raw, RawEntry)
    assert "élèves québécois" in raw.blocks[0].text

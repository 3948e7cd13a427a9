"""Normalization: titles, typography, language, ids, sanitized HTML, on the shipped seed."""

from __future__ import annotations

from pathlib import Path

from conftest import NOW, REPO

from newsdesk.models import Block, RawEntry
from newsdesk.normalize import (
    NBSP,
    clean_text,
    derive_title,
    french_typography,
    normalize,
    repair_guillemets,
    sanitize_html,
    truncate_words,
)
from newsdesk.sources.files import read_file

LANGUAGES = ("en", "fr", "de", "es", "it", "pt")
SEED = REPO / "seeds" / "000_41d1f9a08fd046d6.txt"


def seed_article():  # type: ignore[no-untyped-def]
    [raw] = read_file(SEED, REPO, 5_000_000)
    assert isinstance(raw, RawEntry)
    return normalize(raw, NOW, LANGUAGES, "en")


def test_seed_is_french_with_a_headline_from_its_lede() -> None:
    article = seed_article()
    assert article.language == "fr"
    assert article.title.startswith("La Corée du Nord a pour la première fois reconnu")
    assert 20 < len(article.title) <= 111
    assert not article.title.endswith((" le", " de", " du", " dans"))


def test_seed_keeps_paragraphs_and_subheadings() -> None:
    article = seed_article()
    assert article.body_text.count("\n\n") >= 6
    assert "<h2>Kim Jong-Un salue les «" in article.body_html
    assert "<h2>Un partenariat renforcé entre Moscou et Pyongyang</h2>" in article.body_html
    assert article.body_html.count("<p>") >= 5


def test_seed_broken_quote_is_repaired_with_no_break_spaces() -> None:
    article = seed_article()
    assert f"«{NBSP}héros{NBSP}»" in article.body_text
    assert "héros«" not in article.body_text


def test_seed_id_and_time_are_stable() -> None:
    first, second = seed_article(), seed_article()
    assert first.id == second.id and first.fingerprint == second.fingerprint
    assert first.published.tzinfo is not None and first.published.utcoffset().total_seconds() == 0
    assert first.url.startswith("tag:newsdesk,2026:article:")


def test_guillemet_repair_only_touches_glued_second_openers() -> None:
    assert repair_guillemets("« héros« et « justice »") == "« héros» et « justice »"
    assert repair_guillemets("« a » puis « b »") == "« a » puis « b »"
    assert french_typography("Il dit : « oui » !") == f"Il dit{NBSP}: «{NBSP}oui{NBSP}»{NBSP}!"


def test_french_typography_spacing() -> None:
    assert french_typography("«oui»") == f"«{NBSP}oui{NBSP}»"
    assert french_typography("Pourquoi ?") == f"Pourquoi{NBSP}?"
    assert french_typography(f"«{NBSP}déjà{NBSP}»") == f"«{NBSP}déjà{NBSP}»"


def test_truncation_cuts_at_a_word_boundary() -> None:
    text = (
        "Un titre assez long pour être coupé quelque part au milieu de la phrase sans couper un mot"
    )
    cut = truncate_words(text, 40)
    assert cut.endswith("…") and len(cut) <= 41
    assert text.startswith(cut[:-1])
    assert derive_title((Block("paragraph", "Court. Suite."),)) == "Court"


def test_sanitizer_removes_scripts_and_handlers() -> None:
    dirty = '<p onclick="x()">Hi<script>alert(1)</script><a href="javascript:alert(1)">x</a></p>'
    clean = sanitize_html(dirty)
    assert "script" not in clean and "onclick" not in clean and "javascript" not in clean
    assert "Hi" in clean


def test_edited_text_keeps_id_but_changes_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text(
        "A headline\n\nThe first paragraph says something about Peru and its farmers.",
        encoding="utf-8",
    )
    [first] = read_file(path, tmp_path, 10_000)
    path.write_text(
        "A headline\n\nThe first paragraph now says something else about Peru.", encoding="utf-8"
    )
    [second] = read_file(path, tmp_path, 10_000)
    assert isinstance(first, RawEntry) and isinstance(second, RawEntry)
    a, b = normalize(first, NOW, LANGUAGES, "en"), normalize(second, NOW, LANGUAGES, "en")
    assert a.id == b.id and a.fingerprint != b.fingerprint
    assert a.title == "A headline"


def test_a_byline_line_is_not_the_lede() -> None:
    blocks = (
        Block("paragraph", "Von Tobias Reinhardt, Stuttgart · 05.11.2026, 14:20 Uhr"),
        Block(
            "paragraph",
            "Zehntausende Beschäftigte der Metall- und Elektroindustrie haben am Mittwoch die Arbeit niedergelegt.",
        ),
    )
    from newsdesk.normalize import summarize

    assert summarize(blocks).startswith("Zehntausende Beschäftigte")
    assert derive_title(blocks).startswith("Zehntausende Beschäftigte")


def test_stray_character_references_in_text_are_decoded() -> None:
    # Escaped twice upstream, read once: the reader would see "&amp;" in a headline.
    assert clean_text("Tom &amp; Jerry &#x27;98 &#8364;5") == "Tom & Jerry '98 €5"
    # Not references: a bare ampersand, a legacy name without its semicolon, an unknown name.
    assert clean_text("AT&T &para &bogus; R&D") == "AT&T &para &bogus; R&D"
    assert clean_text("bell&#7;") == "bell"  # a control character, even when spelled out

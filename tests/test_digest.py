"""Rendering: both languages, headers, header injection, Gmail's size limit, DKIM, the ledger
choosing articles (never one twice) and the outbox. Real SQLite, real templates, no SMTP."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from conftest import NOW
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from digest_support import (
    SECRET,
    asia_article,
    europe_article,
    make_article,
    open_workspace,
    write_workspace,
)

from newsdesk import pipeline
from newsdesk.digest import DigestSettings, message_id, period_key, render_digest
from newsdesk.models import Subscriber
from newsdesk.signing import DkimSigner, signer_from_config
from newsdesk.tokens import make_token, verify_token

CAMILLE = Subscriber(
    "camille@example.org",
    name="Camille",
    regions=("Europe", "Eastern Asia"),
    language="fr",
    timezone="Europe/Paris",
)
SAM = Subscriber("sam@example.org", name="Sam", language="en", timezone="America/New_York")


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_TEST_UNSUBSCRIBE_SECRET", SECRET)


def settings(**overrides: object) -> DigestSettings:
    values: dict[str, object] = {
        "sender": "newsdesk <digest@news.example.org>",
        "site_title": "newsdesk",
        "feeds_url": "https://news.example.org/feeds/index.html",
        "unsubscribe_url": "https://news.example.org/unsubscribe",
        "unsubscribe_mailto": "unsubscribe@news.example.org",
        "list_id": "newsdesk <digest.news.example.org>",
        "secret": SECRET.encode(),
    }
    values.update(overrides)
    return DigestSettings(**values)  # type: ignore[arg-type]


def templates() -> object:
    from conftest import REPO

    from newsdesk.digest import template_environment

    return template_environment(REPO / "templates")


def render(articles: list, subscriber: Subscriber, **overrides: object):  # type: ignore[no-untyped-def]
    return render_digest(articles, subscriber, templates(), settings(**overrides), NOW)  # type: ignore[arg-type]


ARTICLES = [europe_article("e1"), europe_article("e2"), asia_article("a1")]


def test_english_digest_words_dates_subject_and_grouping() -> None:
    rendered = render(ARTICLES, SAM)
    assert rendered.subject == "newsdesk — 23 Nov 2026 — 3 articles"
    text = rendered.text
    assert "Hello Sam," in text
    assert text.index("== Asia ==") < text.index("== Europe ==")  # regions, then topics inside
    assert "-- sport --" in text and "-- politics --" in text
    assert "Example Wire · Nov 23, 2026" in text  # the date in the reader's time zone
    assert "Read the article: https://example.org/news/e1" in text
    assert "Unsubscribe: https://news.example.org/unsubscribe?token=" in text
    assert 'lang="en"' in rendered.html
    assert "3 new articles for you, Sam" in rendered.html  # the preheader


def test_french_digest_words_dates_subject_and_regions() -> None:
    rendered = render(ARTICLES, CAMILLE)
    assert rendered.subject == "newsdesk — 23 nov. 2026 — 3 articles"
    assert "Bonjour Camille," in rendered.text
    assert "== Asie ==" in rendered.text and "== Europe ==" in rendered.text
    assert "23 nov. 2026" in rendered.text
    assert "Se désabonner" in rendered.html and "Lire l’article" in rendered.text
    assert 'lang="fr"' in rendered.html
    one = render(ARTICLES[:1], CAMILLE)
    assert one.subject.endswith("— 1 article")


def test_articles_file_under_a_region_the_reader_asked_for() -> None:
    from digest_support import EUROPE, FRANCE, POLITICS

    from newsdesk.models import Tag

    africa = Tag("region", "002", "Africa", 9.0, ("TN",))
    festival = make_article("f1", "Festival in Saint-Nazaire", (africa, EUROPE, FRANCE, POLITICS))
    for_europe = render([festival], CAMILLE)  # Camille follows Europe
    assert "== Europe ==" in for_europe.text and "Afrique" not in for_europe.text
    for_all = render([festival], SAM)  # Sam follows everything: the strongest region wins
    assert "== Africa ==" in for_all.text


def test_headers_are_complete_and_one_click_ready() -> None:
    message = render(ARTICLES, SAM).message()
    assert message["From"] == "newsdesk <digest@news.example.org>"
    assert message["To"] == "Sam <sam@example.org>"
    assert message["Date"] == "Mon, 23 Nov 2026 12:00:00 +0000"
    assert message["Message-ID"] == message_id(SAM, period_key(SAM, NOW), "digest@news.example.org")
    assert message["List-Id"] == "newsdesk <digest.news.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith("https://news.example.org/unsubscribe?token=")
    assert mailto.startswith("mailto:unsubscribe@news.example.org?subject=unsubscribe%20")
    token = https.split("token=", 1)[1]
    assert verify_token(SECRET.encode(), token) == "sam@example.org"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert https in html.get_content()  # the visible link is the same signed URL


def test_message_id_is_stable_per_subscriber_and_period() -> None:
    first = render(ARTICLES, SAM)
    again = render(ARTICLES[:1], SAM)
    assert first.message_id == again.message_id
    tomorrow = render_digest(ARTICLES, SAM, templates(), settings(), NOW + timedelta(days=1))  # type: ignore[arg-type]
    assert tomorrow.message_id != first.message_id
    assert render(ARTICLES, CAMILLE).message_id != first.message_id


def test_crlf_in_titles_or_names_cannot_add_a_header() -> None:
    evil = make_article(
        "x1",
        "Breaking\r\nBcc: victim@example.org\r\n\r\n<script>alert(1)</script>",
        europe_article("x").tags,
    )
    subscriber = Subscriber("sam@example.org", name="Sam\r\nBcc: other@example.org", language="en")
    rendered = render_digest(
        [evil],
        subscriber,
        templates(),
        settings(site_title="news\r\nX-Evil: 1"),
        NOW,  # type: ignore[arg-type]
    )
    message = rendered.message()
    assert message["Bcc"] is None and message["X-Evil"] is None
    head = rendered.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in head and b"\nX-Evil" not in head
    assert all(line.startswith((b" ", b"\t")) or b":" in line for line in head.split(b"\r\n"))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_html_is_inlined_self_contained_and_mobile_ready() -> None:
    html = render(ARTICLES, SAM).html
    assert "<script" not in html.lower()
    assert "<link" not in html.lower() and "@import" not in html
    assert 'width="600"' in html and "max-width: 600px" in html
    assert 'class="title" href="https://example.org/news/e1" style="' in html  # CSS inlined
    assert "prefers-color-scheme: dark" in html  # kept in <style>, it cannot be inlined
    assert "max-width: 620px" in html
    assert 'name="color-scheme" content="light dark"' in html


def test_big_digests_stay_under_gmail_clipping_with_the_footer() -> None:
    long = "A very long summary sentence that goes on. " * 9
    many = [
        make_article(f"m{i:03d}", f"Story number {i}", europe_article("x").tags, summary=long)
        for i in range(300)
    ]
    rendered = render(many, SAM, max_articles=300)
    size = len(rendered.html.encode("utf-8"))
    assert size <= 100_000
    assert 0 < rendered.shown < 300
    assert f"and {300 - rendered.shown} more in your feeds" in rendered.html
    assert rendered.html.rstrip().endswith("</html>")
    assert "unsubscribe?token=" in rendered.html.split("more in your feeds", 1)[1]
    assert rendered.article_count == 300 and len(rendered.article_ids) == 300
    capped = render(many[:50], SAM, max_articles=10)
    assert capped.shown == 10 and "and 40 more" in capped.text


def test_dkim_signature_covers_both_list_unsubscribe_headers(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = tmp_path / "dkim.pem"
    key.write_bytes(
        private.private_bytes(  # PKCS#1 "BEGIN RSA PRIVATE KEY", as `openssl genrsa` writes
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = DkimSigner("newsdesk", "news.example.org", key.read_bytes())
    raw = render(ARTICLES, SAM, signer=signer).raw
    assert raw.startswith(b"DKIM-Signature:")
    signed = raw.split(b"; h=", 1)[1].split(b";", 1)[0].lower()
    assert b"list-unsubscribe" in signed and b"list-unsubscribe-post" in signed

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"newsdesk._domainkey.news.example.org." else b""

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"List-Unsubscribe-Post: List-Unsubscribe=Two-Click",
    )
    assert not dkim.verify(tampered, dnsfunc=dns)
    config_path = write_workspace(tmp_path, extra=f'dkim_key_file = "{key.as_posix()}"\n')
    config, store = open_workspace(config_path)
    assert signer_from_config(config) is not None
    (tmp_path / "bad.pem").write_text("not a key")
    bad = write_workspace(tmp_path, extra='dkim_key_file = "bad.pem"\n')
    from newsdesk.config import load_config
    from newsdesk.errors import ConfigError

    with pytest.raises(ConfigError, match="dkim_key_file"):
        signer_from_config(load_config(bad))
    store.close()


def test_forged_or_altered_tokens_are_refused() -> None:
    key = SECRET.encode()
    token = make_token(key, "sam@example.org")
    assert verify_token(key, token) == "sam@example.org"
    payload, signature = token.split(".")
    other = make_token(key, "camille@example.org").split(".")[0]
    assert verify_token(key, f"{other}.{signature}") is None  # someone else's address
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert verify_token(key, f"{payload}.{flipped}") is None
    assert verify_token(b"another-secret-entirely", token) is None
    for junk in ("", ".", "abc", "abc.", ".abc", "%%%.***", "a" * 5000):
        assert verify_token(key, junk) is None


# The pipeline: selection, the ledger and the outbox ------------------------------------


def _digest(config_path: Path, now=NOW):  # type: ignore[no-untyped-def]
    config, store = open_workspace(config_path)
    try:
        subscribers = pipeline.load_subscribers(config, store, now)
        return pipeline.digest(config, store, pipeline.templates_for(config), subscribers, now)
    finally:
        store.close()


SUBSCRIBERS = """
[[subscribers]]
email = "camille@example.org"
name = "Camille"
regions = ["Europe"]
language = "fr"
timezone = "Europe/Paris"

[[subscribers]]
email = "sam@example.org"
name = "Sam"
regions = ["Eastern Asia"]
timezone = "America/New_York"

[[subscribers]]
email = "nobody@example.org"
countries = ["AQ"]
"""


def _save(config_path: Path, articles: list, now=NOW) -> None:  # type: ignore[no-untyped-def]
    _, store = open_workspace(config_path)
    store.save_articles(articles, now)
    store.close()


def test_outbox_digests_once_per_period_and_no_article_twice(tmp_path: Path) -> None:
    config_path = write_workspace(tmp_path, subscribers=SUBSCRIBERS)
    _save(config_path, [europe_article("e1"), asia_article("a1")], NOW - timedelta(hours=2))
    report = _digest(config_path)
    assert len(report.delivered) == 2 and report.nothing_new == 1 and not report.errors
    outbox = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert outbox == ["2026-11-23-camille-example-org.eml", "2026-11-23-sam-example-org.eml"]
    again = _digest(config_path)
    assert again.already_sent == 2 and not again.delivered
    # Next day: one new European article; the old one must not come back.
    _save(config_path, [europe_article("e2")], NOW + timedelta(hours=20))
    tomorrow = _digest(config_path, NOW + timedelta(days=1))
    assert len(tomorrow.delivered) == 1 and tomorrow.nothing_new == 2
    _, store = open_workspace(config_path)
    assert store.digest_article_ids("camille@example.org", "2026-11-24") == {"e2"}
    assert store.digest_article_ids("camille@example.org", "2026-11-23") == {"e1"}
    store.close()
    day2 = (tmp_path / "outbox" / "2026-11-24-camille-example-org.eml").read_bytes()
    assert b"e2" in day2 and b"news/e1" not in day2


def test_a_failed_render_sends_nothing(tmp_path: Path) -> None:
    config_path = write_workspace(tmp_path, subscribers=SUBSCRIBERS)
    _save(config_path, [europe_article("e1"), asia_article("a1")])
    html = tmp_path / "templates" / "digest.html"
    html.write_text(html.read_text() + "{{ no_such_variable }}")
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        _digest(config_path)
    assert not (tmp_path / "outbox").exists()


def test_config_seeds_never_resubscribe_and_cli_edits_win(tmp_path: Path) -> None:
    config_path = write_workspace(tmp_path, subscribers=SUBSCRIBERS)
    config, store = open_workspace(config_path)
    loaded = pipeline.load_subscribers(config, store, NOW)
    assert {s.email for s in loaded} == {
        "camille@example.org",
        "sam@example.org",
        "nobody@example.org",
    }
    store.unsubscribe("sam@example.org", NOW)
    edited = Subscriber("camille@example.org", name="Cam", language="en")
    store.upsert_subscriber(edited, "cli", NOW, status="active")
    loaded = pipeline.load_subscribers(config, store, NOW)
    assert {s.email for s in loaded} == {"camille@example.org", "nobody@example.org"}
    camille = next(s for s in loaded if s.email == "camille@example.org")
    assert camille.name == "Cam" and camille.language == "en"
    store.close()

"""RawEntry -> Article: clean text, sanitized HTML, language, dates, ids and a fingerprint.

Pure functions only: the caller passes `now`.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import datetime

import nh3

from newsdesk.dates import as_utc
from newsdesk.errors import InputError
from newsdesk.language import detect_language
from newsdesk.models import Article, Block, RawEntry

NBSP = "\u00a0"
TITLE_MAX = 110
SUMMARY_MAX = 300
LEDE_MIN = 80
_LEDE_ENDINGS = tuple('.!?…»”"')
ALLOWED_TAGS = {"p", "h2", "h3", "ul", "ol", "li", "blockquote", "em", "strong", "a", "br"}

_SPACES = re.compile(r"[ \t\f\v\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"»”’)]?\s+(?=[A-ZÀ-ÖØ-Þ«\"“])")
_FR_SPACE_BEFORE = re.compile(r" ([:;!?»])")
_FR_SPACE_AFTER = re.compile("«[ \u00a0]?")
_FR_SPACE_INSIDE_CLOSE = re.compile("[ \u00a0]?»")
_WORD = re.compile(r"\w+", re.UNICODE)


# A character reference left in plain text is an escaping mistake upstream: a title escaped
# twice ("Tom &amp;amp; Jerry") reads "Tom &amp; Jerry" once parsed. Only whole references,
# semicolon and all, are decoded, so "AT&T" or "&para" in prose stay as written.
_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def clean_text(text: str, language: str = "") -> str:
    """NFC, stray character references decoded, invisible characters dropped, runs of spaces
    folded; French typography for French."""
    if "&" in text:
        text = _REFERENCE.sub(lambda match: html.unescape(match.group()), text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    if language == "fr":
        text = french_typography(text)
    return text


def french_typography(text: str) -> str:
    """Repair guillemets (`« héros«` -> `« héros »`); no-break spaces where French wants them."""
    text = repair_guillemets(text)
    text = _FR_SPACE_AFTER.sub("«" + NBSP, text)
    text = _FR_SPACE_INSIDE_CLOSE.sub(NBSP + "»", text)
    return _FR_SPACE_BEFORE.sub(NBSP + r"\1", text)


def repair_guillemets(text: str) -> str:
    """A second « while a quotation is open, glued to the word before it, is really a closing »."""
    out: list[str] = []
    is_open = False
    for index, char in enumerate(text):
        if char == "«":
            glued = index > 0 and not text[index - 1].isspace()
            if is_open and glued:
                char = "»"
                is_open = False
            else:
                is_open = True
        elif char == "»":
            is_open = False
        out.append(char)
    return "".join(out)


def clean_blocks(blocks: tuple[Block, ...], language: str) -> tuple[Block, ...]:
    """Every block cleaned; empty ones dropped."""
    cleaned = (Block(b.kind, clean_text(b.text, language)) for b in blocks)
    return tuple(b for b in cleaned if b.text)


def first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0].strip()


def truncate_words(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    words = text[: limit + 1].split(" ")[:-1] or [text[:limit]]
    # Do not end a headline on a dangling article or preposition ("… dans le").
    while len(words) > 3 and len(words[-1]) <= 3:
        words.pop()
    return " ".join(words).rstrip(",;:-–—") + "…"


def lede(blocks: tuple[Block, ...]) -> str:
    """The first real paragraph: a byline or timestamp line ("Von X, Stuttgart · 14:20 Uhr",
    "By Jane Doe") is short and does not end like a sentence, so it is passed over."""
    paragraphs = [b.text for b in blocks if b.kind == "paragraph"]
    for text in paragraphs:
        if len(text) >= LEDE_MIN or text.rstrip().endswith(_LEDE_ENDINGS):
            return text
    return paragraphs[0] if paragraphs else ""


def derive_title(blocks: tuple[Block, ...]) -> str:
    """A headline from the lede: its first sentence, cut at a word boundary when too long."""
    lede_text = lede(blocks)
    sentence = first_sentence(lede_text).rstrip(".")
    return truncate_words(sentence, TITLE_MAX)


def summarize(blocks: tuple[Block, ...]) -> str:
    """The lede, shortened to whole sentences (or words) within SUMMARY_MAX characters."""
    text = lede(blocks)
    if len(text) <= SUMMARY_MAX:
        return text
    summary = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{summary} {sentence}".strip()
        if len(candidate) > SUMMARY_MAX:
            break
        summary = candidate
    return summary or truncate_words(text, SUMMARY_MAX)


def body_text(blocks: tuple[Block, ...]) -> str:
    return "\n\n".join(b.text for b in blocks)


def body_html(blocks: tuple[Block, ...]) -> str:
    """Blocks as HTML (subheadings as <h2>), passed through nh3 so nothing unsafe survives."""
    parts = [
        f"<h2>{html.escape(b.text, quote=False)}</h2>"
        if b.kind == "heading"
        else f"<p>{html.escape(b.text, quote=False)}</p>"
        for b in blocks
    ]
    return sanitize_html("\n".join(parts))


def sanitize_html(markup: str) -> str:
    """The one place HTML is made safe: a small allow-list, no scripts, no event handlers."""
    return nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
    )


def stable_id(key: str) -> str:
    """A short, stable article id derived from the entry's identity within its source."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def fingerprint(title: str, text: str) -> str:
    """A hash of the visible content, blind to case and spacing: it changes when the story does."""
    words = _WORD.findall(f"{title}\n{text}".casefold())
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()[:32]


def tag_uri(article_id: str) -> str:
    """The RFC 4151 tag URI standing in for an article that has no web address."""
    return f"tag:newsdesk,2026:article:{article_id}"


def normalize(
    raw: RawEntry,
    now: datetime,
    languages: tuple[str, ...],
    default_language: str,
) -> Article:
    """Turn one RawEntry into an untagged Article, or raise InputError saying what is missing."""
    probe = " ".join(b.text for b in raw.blocks[:6])
    declared = (raw.language or "").lower().split("-")[0]
    detected = detect_language(f"{raw.title or ''} {probe}", languages, default_language)
    # Trust the declared language only when detection agrees or has nothing to go on.
    language = declared if declared and (declared == detected or len(probe) < 40) else detected
    blocks = clean_blocks(raw.blocks, language)
    if not any(b.kind == "paragraph" for b in blocks):
        raise InputError(raw.origin, "no article text found; check that the file holds an article")
    title = clean_text(raw.title or "", language) or derive_title(blocks)
    summary = clean_text(raw.summary or "", language) or summarize(blocks)
    text = body_text(blocks)
    article_id = stable_id(raw.key)
    published = as_utc(raw.published or raw.fallback_time or now)
    url = (
        raw.url if raw.url and raw.url.startswith(("http://", "https://")) else tag_uri(article_id)
    )
    return Article(
        id=article_id,
        title=truncate_words(title, 300),
        summary=summary,
        body_text=text,
        body_html=body_html(blocks),
        language=language,
        published=min(published, as_utc(now)),  # a date in the future is a publisher's mistake
        url=url,
        source=clean_text(raw.source) or "local",
        fingerprint=fingerprint(title, text),
    )

"""Language identification restricted to the languages newsdesk is configured for."""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import py3langid.langid as langid

_lock = threading.Lock()  # the identifier swaps its model on set_languages: keep calls serial


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> langid.LanguageIdentifier:
    identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


SAMPLE_CHARS = 1200  # plenty to tell languages apart; identification time grows with length
_LETTER = re.compile(r"[^\W\d_]")


def detect_language(text: str, languages: tuple[str, ...], default: str) -> str:
    """The most likely of `languages` for `text`, or `default` when the text is too short."""
    sample = text[:SAMPLE_CHARS]
    if len(_LETTER.findall(sample, 0, 200)) < 20 or not languages:
        return default
    with _lock:
        code, _probability = _identifier(tuple(sorted(languages))).classify(sample)
    return str(code)

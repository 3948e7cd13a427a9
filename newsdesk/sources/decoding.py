"""Bytes -> text, refusing what is not text and recovering legacy encodings."""

from __future__ import annotations

import logging

from charset_normalizer import from_bytes

from newsdesk.errors import InputError

log = logging.getLogger(__name__)

# Legacy encodings that real newsroom exports still use; anything else is refused, not guessed.
_RECOVERABLE = {"cp1252", "latin_1", "iso8859_15", "iso8859_1", "cp1250", "iso8859_2", "mac_roman"}


def decode_text(data: bytes, origin: str) -> str:
    """UTF-8 (with or without BOM), else a detected legacy 8-bit encoding, else InputError."""
    if not data.strip():
        raise InputError(origin, "file is empty; remove it or add the article text")
    if b"\x00" in data[:8192]:
        raise InputError(origin, "binary file, not text; remove it from the input folder")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:65536]).best()
    encoding = best.encoding if best is not None else None
    if encoding in _RECOVERABLE:
        log.warning("decoded_legacy_encoding origin=%s encoding=%s", origin, encoding)
        return data.decode(encoding, errors="replace")
    raise InputError(origin, "not UTF-8 and no legacy encoding recognised; save the file as UTF-8")

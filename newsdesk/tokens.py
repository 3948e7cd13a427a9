"""Signed unsubscribe tokens: the address plus an HMAC, so nobody can unsubscribe someone else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets

from newsdesk.config import Config
from newsdesk.store import Store

log = logging.getLogger(__name__)
_PURPOSE = b"newsdesk-unsubscribe-v1\x1f"  # a key used for nothing else
_SECRET_META_KEY = "unsubscribe_secret"
_MIN_SECRET_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, email: str) -> bytes:
    return hmac.new(secret, _PURPOSE + email.encode("utf-8"), hashlib.sha256).digest()


def make_token(secret: bytes, email: str) -> str:
    """`<address, base64url>.<HMAC-SHA256, base64url>`: safe in a URL, no padding."""
    return f"{_b64(email.encode('utf-8'))}.{_b64(_signature(secret, email))}"


def verify_token(secret: bytes, token: str) -> str | None:
    """The address a token was made for, or None if it is malformed, forged or altered."""
    payload, dot, signature = token.strip().partition(".")
    if not dot or not payload or not signature or len(token) > 2048:
        return None
    try:
        email = _unb64(payload).decode("utf-8")
        given = _unb64(signature)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    # constant time, so the signature cannot be guessed byte by byte
    if not hmac.compare_digest(given, _signature(secret, email)):
        return None
    return email


def unsubscribe_secret(config: Config, store: Store) -> bytes:
    """The HMAC key: the environment variable named by [digest] secret_env.

    When it is unset, a random key is generated once and kept in the database, so `make run`
    works out of the box and the server (same database) accepts the tokens; set the variable
    when several machines must agree.
    """
    name = config.digest.secret_env
    value = os.environ.get(name, "") if name else ""
    if value:
        if len(value.encode()) < _MIN_SECRET_BYTES:
            log.warning("unsubscribe_secret_short variable=%s bytes=%d", name, len(value))
        return value.encode("utf-8")
    log.info("unsubscribe_secret_from_database variable=%s unset=true", name)
    kept = store.meta_value(_SECRET_META_KEY) or store.set_meta_value_once(
        _SECRET_META_KEY, secrets.token_urlsafe(32)
    )
    return kept.encode("utf-8")

"""Hands rendered digests to SMTP, or writes them to the outbox as .eml files."""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from newsdesk.config import SmtpConfig
from newsdesk.errors import DeliveryError
from newsdesk.publish import write_if_changed
from newsdesk.slugs import slugify

log = logging.getLogger(__name__)


def write_outbox(message: EmailMessage, outbox: Path, period: str, email: str) -> Path:
    """The message as `<period>-<address>.eml` in the outbox, written atomically."""
    path = outbox / f"{period}-{slugify(email)}.eml"
    write_if_changed(path, bytes(message))
    return path


def send_smtp(message: EmailMessage, smtp: SmtpConfig) -> None:
    """Send one message over SMTP (SSL or STARTTLS, login when a username is set)."""
    password = os.environ.get(smtp.password_env, "") if smtp.password_env else ""
    if smtp.username and not password:
        raise DeliveryError(
            f"[smtp] username is set but the environment variable {smtp.password_env} is empty; "
            "export the SMTP password there"
        )
    try:
        client: smtplib.SMTP
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host,
                smtp.port,
                timeout=smtp.timeout_seconds,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, password)
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {error}") from None

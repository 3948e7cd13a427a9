"""Hands rendered digests to SMTP (one connection per batch, retries) or to the outbox.

Outcomes, per message:
    sent        the server said 250 to DATA (or the .eml file is written)
    permanent   a 5xx answer to RCPT or DATA: retrying will not help
    transient   4xx answers or dropped connections, still failing after every retry
A failure of the session itself (cannot connect, TLS, login, the sender refused) raises
DeliveryError: it is nobody's address that is wrong, so the batch stops and a re-run resumes.
An untrusted certificate and a refused login raise at once: no retry can fix a setting.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from newsdesk.config import SmtpConfig
from newsdesk.errors import DeliveryError
from newsdesk.publish import write_if_changed
from newsdesk.slugs import slugify

log = logging.getLogger(__name__)
Status = Literal["sent", "permanent", "transient"]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    detail: str = ""  # the server's answer or the error, for the ledger
    where: str = ""  # an outbox path or smtp:<address>


class Transport(Protocol):
    def deliver(self, raw: bytes, sender: str, recipient: str, name: str) -> Outcome: ...

    def close(self) -> None: ...


def outbox_path(outbox: Path, period: str, email: str) -> Path:
    return outbox / f"{period}-{slugify(email)}.eml"


class Outbox:
    """Writes each message as `<period>-<address>.eml`, atomically (same name on a re-run)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def deliver(self, raw: bytes, sender: str, recipient: str, name: str) -> Outcome:
        del sender
        path = self.directory / name
        try:
            write_if_changed(path, raw)
        except OSError as error:
            raise DeliveryError(
                f"outbox {self.directory}: cannot write {path.name}: {error}"
            ) from None
        return Outcome("sent", where=str(path))

    def close(self) -> None:
        pass


def client_tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Verify servers against the system's CAs plus, when given, the PEM bundle `ca_file`."""
    # Not create_default_context(cafile=...): that would trust the file *instead of* the system.
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except OSError as error:  # ssl.SSLError too: the file holds no PEM certificate
            reason = error.strerror or str(error)
            raise DeliveryError(
                f"[smtp] ca_file {ca_file}: cannot load CA certificates from it ({reason}); "
                "point it at a PEM file of the certificates to trust"
            ) from None
    return context


class SmtpBatch:
    """One SMTP session reused across a batch; reconnects when the server drops it."""

    def __init__(
        self,
        smtp: SmtpConfig,
        sleep: Callable[[float], None] = time.sleep,
        tls_context: ssl.SSLContext | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.smtp = smtp
        self.sleep = sleep
        self.tls_context = tls_context or client_tls_context(ca_file)
        self.password = os.environ.get(smtp.password_env, "") if smtp.password_env else ""
        if smtp.username and not self.password:
            raise DeliveryError(
                f"[smtp] username is set but the environment variable {smtp.password_env} is "
                "empty; export the SMTP password there"
            )
        self._client: smtplib.SMTP | None = None
        self.connections = 0

    def _open(self) -> smtplib.SMTP:
        """Connect, secure the channel as configured and log in; closed again on any failure."""
        smtp = self.smtp
        client: smtplib.SMTP
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=self.tls_context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        try:
            if smtp.security == "starttls":
                client.starttls(context=self.tls_context)
            if smtp.username:
                client.login(smtp.username, self.password)
        except BaseException:
            client.close()
            raise
        return client

    def _connect(self) -> smtplib.SMTP:
        smtp = self.smtp
        try:
            client = self._open()
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(
                f"SMTP {smtp.host}:{smtp.port}: login refused ({error.smtp_code}); check "
                f"[smtp] username and ${smtp.password_env}"
            ) from None
        except ssl.SSLCertVerificationError as error:
            raise DeliveryError(_untrusted(smtp, error)) from None
        except (smtplib.SMTPException, OSError) as error:
            raise _Transient(f"connect: {error}") from None
        self.connections += 1
        log.info("smtp_connected host=%s port=%d", smtp.host, smtp.port)
        return client

    def deliver(self, raw: bytes, sender: str, recipient: str, name: str) -> Outcome:
        """Send one message, retrying transient failures with exponential backoff."""
        del name
        detail = ""
        for attempt in range(self.smtp.retries + 1):
            if attempt:
                delay = self.smtp.retry_backoff_seconds * 2 ** (attempt - 1)
                log.info("smtp_retry to=%s attempt=%d delay=%.2f", recipient, attempt, delay)
                self.sleep(delay)
            try:
                if self._client is None:
                    self._client = self._connect()
                self._client.sendmail(sender, [recipient], raw)
                return Outcome("sent", where=f"smtp:{recipient}")
            except smtplib.SMTPRecipientsRefused as error:
                code, answer = error.recipients.get(recipient, (0, b""))
                detail = _answer(code, answer)
            except smtplib.SMTPSenderRefused as error:
                if 500 <= error.smtp_code < 600:
                    raise DeliveryError(
                        f"SMTP {self.smtp.host}: sender {sender} refused: "
                        f"{_answer(error.smtp_code, error.smtp_error)}; check [digest] sender"
                    ) from None
                code, detail = error.smtp_code, _answer(error.smtp_code, error.smtp_error)
            except smtplib.SMTPServerDisconnected as error:
                code, detail = 0, f"connection lost: {error}"
                self._drop()
            except smtplib.SMTPResponseException as error:
                code, detail = error.smtp_code, _answer(error.smtp_code, error.smtp_error)
            except _Transient as error:
                code, detail = 0, str(error)
                self._drop()
                if attempt == self.smtp.retries:
                    raise DeliveryError(
                        f"SMTP {self.smtp.host}:{self.smtp.port}: cannot {detail}; check [smtp] "
                        "host, port and security, then run again"
                    ) from None
            except OSError as error:
                code, detail = 0, f"connection error: {error}"
                self._drop()
            if 500 <= code < 600:
                log.warning("smtp_permanent to=%s answer=%s", recipient, detail)
                return Outcome("permanent", detail)
            log.warning("smtp_transient to=%s attempt=%d answer=%s", recipient, attempt, detail)
        return Outcome("transient", detail)

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        if self._client is None:
            return
        try:
            self._client.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the messages are already accepted; a failed goodbye changes nothing
        finally:
            self._drop()

    def __enter__(self) -> SmtpBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Transient(Exception):
    """Could not (re)connect; worth another try."""


# OpenSSL's X509_V_ERR_* codes for "no trusted CA vouches for this certificate".
_UNKNOWN_ISSUER = frozenset({18, 19, 20, 21})
_NAME_MISMATCH = frozenset({62, 64})  # hostname, IP address


def _untrusted(smtp: SmtpConfig, error: ssl.SSLCertVerificationError) -> str:
    """One line saying why the server's certificate was refused and which setting fixes it."""
    where = f"SMTP {smtp.host}:{smtp.port}: the server's TLS certificate"
    reason = error.verify_message or str(error)
    if error.verify_code in _NAME_MISMATCH:
        return f"{where} does not cover {smtp.host} ({reason}); set [smtp] host to a name it covers"
    if error.verify_code in _UNKNOWN_ISSUER:
        return (
            f"{where} is not trusted ({reason}); if the server uses a self-signed or "
            "private-CA certificate, set [smtp] ca_file to that CA's PEM file"
        )
    return f"{where} was refused ({reason}); fix the server's certificate or [smtp] ca_file"


def _answer(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(message.split())}".strip()

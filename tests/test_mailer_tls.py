"""Delivery over TLS to a real aiosmtpd server on 127.0.0.1 with a throwaway CA: STARTTLS and
implicit TLS, trusted through `[smtp] ca_file`; AUTH only inside TLS; a wrong password or an
untrusted certificate stops the batch at once with one line that says what to fix."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import NOW, NOW_ISO
from digest_support import SECRET, SmtpServer, europe_article, open_workspace, write_workspace
from tls_support import Certificates, make_certificates

from newsdesk import pipeline
from newsdesk.errors import DeliveryError
from newsdesk.mailer import client_tls_context
from newsdesk.models import Subscriber
from newsdesk.pipeline import DigestReport

PASSWORD_ENV = "NEWSDESK_TEST_SMTP_PASSWORD"
PASSWORD = "correct horse battery staple"
PEOPLE = [f"reader{i:02d}@example.org" for i in range(3)]
MODES = ["starttls", "ssl"]


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSDESK_TEST_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.fixture()
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "certs")


@dataclass
class Account:
    """aiosmtpd authenticator for one login; notes each attempt and whether it was encrypted."""

    login: bytes = b"newsdesk"
    password: bytes = PASSWORD.encode()
    attempts: list[tuple[bytes, bool]] = field(default_factory=list)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.attempts.append((auth_data.login, encrypted))
        granted = auth_data.login == self.login and auth_data.password == self.password
        # Not handled: aiosmtpd answers 535 itself; auth_data becomes the session's login.
        return AuthResult(success=granted, handled=False, auth_data=auth_data)


def _tls_server(mode: str, certs: Certificates, account: Account | None = None) -> SmtpServer:
    context = certs.server_context()
    options: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if mode == "starttls"
        else {"ssl_context": context}
    )
    if account is not None:
        # aiosmtpd 1.4 does not see implicit TLS as TLS for auth_require_tls (its issue #281):
        # there the Account checks the transport itself.
        options.update(authenticator=account, auth_require_tls=mode == "starttls")
    return SmtpServer(**options)


def _workspace(
    tmp_path: Path, port: int, security: str, ca_file: str = "certs/ca.pem", username: str = ""
) -> Path:
    extra = f"""
[smtp]
host = "127.0.0.1"
port = {port}
security = "{security}"
timeout_seconds = 10
retries = 3
retry_backoff_seconds = 0.01
ca_file = "{ca_file}"
username = "{username}"
password_env = "{PASSWORD_ENV}"
"""
    config_path = write_workspace(tmp_path, extra=extra)
    _, store = open_workspace(config_path)
    for address in PEOPLE:
        store.upsert_subscriber(
            Subscriber(address, regions=("Europe",)), "cli", NOW, status="active"
        )
    store.save_articles([europe_article("e1"), europe_article("e2")], NOW)
    store.close()
    return config_path


def _digest(config_path: Path, sleeps: list[float]) -> DigestReport:
    config, store = open_workspace(config_path)
    try:
        subscribers = pipeline.load_subscribers(config, store, NOW)
        templates = pipeline.templates_for(config)
        return pipeline.digest(config, store, templates, subscribers, NOW, sleep=sleeps.append)
    finally:
        store.close()


def _statuses(config_path: Path) -> list[object]:
    _, store = open_workspace(config_path)
    try:
        rows = [store.delivery("2026-11-23", address) for address in PEOPLE]
        return [row["status"] if row else None for row in rows]
    finally:
        store.close()


@pytest.mark.parametrize("mode", MODES)
def test_digests_go_out_encrypted_trusting_the_ca_file(
    tmp_path: Path, certs: Certificates, mode: str
) -> None:
    with _tls_server(mode, certs) as server:
        config_path = _workspace(tmp_path, server.port, mode)
        sleeps: list[float] = []
        report = _digest(config_path, sleeps)
        assert not report.errors, report.errors
        assert server.sink.per_recipient() == dict.fromkeys(PEOPLE, 1)
        assert all(item.tls for item in server.sink.received)
        assert server.sink.connections == 1 and sleeps == []
        assert _statuses(config_path) == ["sent"] * 3


@pytest.mark.parametrize("mode", MODES)
def test_the_login_is_sent_only_inside_tls(tmp_path: Path, certs: Certificates, mode: str) -> None:
    account = Account()
    with _tls_server(mode, certs, account) as server:
        config_path = _workspace(tmp_path, server.port, mode, username="newsdesk")
        report = _digest(config_path, [])
        assert not report.errors, report.errors
        assert server.sink.per_recipient() == dict.fromkeys(PEOPLE, 1)
        assert [item.login for item in server.sink.received] == [b"newsdesk"] * 3
        assert account.attempts == [(b"newsdesk", True)]  # one login, encrypted, for the batch


def test_a_wrong_password_stops_the_batch_at_once_and_a_rerun_resumes(
    tmp_path: Path, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong password")
    account = Account()
    with _tls_server("starttls", certs, account) as server:
        config_path = _workspace(tmp_path, server.port, "starttls", username="newsdesk")
        sleeps: list[float] = []
        report = _digest(config_path, sleeps)
        assert report.errors == [
            f"SMTP 127.0.0.1:{server.port}: login refused (535); check [smtp] username "
            f"and ${PASSWORD_ENV}"
        ]
        assert not report.delivered and server.sink.received == []
        # One session, no back-off and no reconnect: retrying a refused login cannot help.
        assert sleeps == [] and server.sink.connections == 1
        assert account.attempts and all(encrypted for _, encrypted in account.attempts)
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
        again = _digest(config_path, sleeps)
        assert not again.errors, again.errors
        assert server.sink.per_recipient() == dict.fromkeys(PEOPLE, 1)
        assert _statuses(config_path) == ["sent"] * 3


@pytest.mark.parametrize("mode", MODES)
def test_an_untrusted_certificate_fails_at_once_naming_the_host_and_ca_file(
    tmp_path: Path, certs: Certificates, mode: str
) -> None:
    with _tls_server(mode, certs) as server:
        config_path = _workspace(tmp_path, server.port, mode, ca_file="")
        sleeps: list[float] = []
        report = _digest(config_path, sleeps)
        assert len(report.errors) == 1
        error = report.errors[0]
        assert error.startswith(
            f"SMTP 127.0.0.1:{server.port}: the server's TLS certificate is not trusted ("
        )
        assert "set [smtp] ca_file to that CA's PEM file" in error and "\n" not in error
        assert sleeps == [] and server.sink.received == []
        assert server.sink.connections == (1 if mode == "starttls" else 0)  # no second try


def test_the_cli_reports_an_untrusted_certificate_on_one_line(
    tmp_path: Path, certs: Certificates
) -> None:
    with _tls_server("starttls", certs) as server:
        config_path = _workspace(tmp_path, server.port, "starttls", ca_file="")
        env = {**os.environ, "NEWSDESK_TEST_UNSUBSCRIBE_SECRET": SECRET}
        cli = [sys.executable, "-c", "from newsdesk.cli import main; main()"]
        done = subprocess.run(
            [*cli, "--config", str(config_path), "--now", NOW_ISO, "digest"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 1
        failures = [
            line for line in done.stderr.decode().splitlines() if line.startswith("failed ")
        ]
        assert len(failures) == 1, done.stderr.decode()
        assert f"SMTP 127.0.0.1:{server.port}" in failures[0] and "[smtp] ca_file" in failures[0]
        assert b"0 delivered" in done.stdout and server.sink.received == []


def test_a_certificate_for_another_name_is_refused_naming_the_host_setting(
    tmp_path: Path,
) -> None:
    other = make_certificates(tmp_path / "certs", names=("mail.example.org",))
    with _tls_server("starttls", other) as server:
        config_path = _workspace(tmp_path, server.port, "starttls")  # the CA is trusted
        sleeps: list[float] = []
        report = _digest(config_path, sleeps)
        assert len(report.errors) == 1
        assert report.errors[0].startswith(
            f"SMTP 127.0.0.1:{server.port}: the server's TLS certificate does not cover 127.0.0.1"
        )
        assert report.errors[0].endswith("set [smtp] host to a name it covers")
        assert sleeps == [] and server.sink.received == []


def test_ca_file_is_trusted_besides_the_system_store(certs: Certificates) -> None:
    system = len(ssl.create_default_context().get_ca_certs())
    context = client_tls_context(certs.ca_file)
    trusted = context.get_ca_certs()
    assert any("newsdesk test CA" in str(ca["subject"]) for ca in trusted)
    assert len(trusted) == system + 1  # added to the system's CAs, not instead of them


def test_an_unreadable_ca_file_is_a_clear_error(tmp_path: Path, certs: Certificates) -> None:
    with pytest.raises(DeliveryError, match=r"\[smtp\] ca_file .*missing\.pem: cannot load"):
        client_tls_context(tmp_path / "missing.pem")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(DeliveryError, match=r"not\.pem: cannot load CA certificates .*PEM file"):
        client_tls_context(not_pem)

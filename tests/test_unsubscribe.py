"""The unsubscribe routes under a real uvicorn on 127.0.0.1: GET confirms, POST unsubscribes
(RFC 8058 one-click, 200, no redirect), forged or altered tokens are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import NOW, app_in_thread
from digest_support import SECRET, open_workspace, write_workspace
from starlette.applications import Starlette

from newsdesk.config import load_config
from newsdesk.models import Subscriber
from newsdesk.tokens import make_token
from newsdesk.unsubscribe import routes


@pytest.fixture()
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.setenv("NEWSDESK_TEST_UNSUBSCRIBE_SECRET", SECRET)
    config_path = write_workspace(tmp_path)
    _, store = open_workspace(config_path)
    for sub in (
        Subscriber("sam@example.org", name="Sam"),
        Subscriber("camille@example.org", name="Camille", language="fr"),
    ):
        store.upsert_subscriber(sub, "cli", NOW, status="active")
    store.close()
    with app_in_thread(Starlette(routes=routes(load_config(config_path)))) as base:
        yield f"{base}/unsubscribe", config_path


def _status(config_path: Path, email: str) -> str:
    _, store = open_workspace(config_path)
    record = store.subscriber_record(email)
    store.close()
    assert record is not None
    return record.status


def test_get_confirms_and_changes_nothing(served: tuple[str, Path]) -> None:
    url, config_path = served
    token = make_token(SECRET.encode(), "camille@example.org")
    response = httpx.get(url, params={"token": token})
    assert response.status_code == 200
    assert "Se désabonner du résumé ?" in response.text
    assert 'method="post"' in response.text and token in response.text
    assert _status(config_path, "camille@example.org") == "active"


def test_one_click_post_unsubscribes_with_200(served: tuple[str, Path]) -> None:
    url, config_path = served
    token = make_token(SECRET.encode(), "sam@example.org")
    response = httpx.post(
        url,
        params={"token": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert _status(config_path, "sam@example.org") == "unsubscribed"
    assert _status(config_path, "camille@example.org") == "active"
    again = httpx.post(url, params={"token": token}, content=b"List-Unsubscribe=One-Click")
    assert again.status_code == 200  # idempotent


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_forged_and_altered_tokens_are_refused(served: tuple[str, Path], method: str) -> None:
    url, config_path = served
    good = make_token(SECRET.encode(), "sam@example.org")
    payload, signature = good.split(".")
    camille_payload = make_token(SECRET.encode(), "camille@example.org").split(".")[0]
    forged = make_token(b"guessed-secret-guessed-secret", "camille@example.org")
    for token in (
        f"{camille_payload}.{signature}",
        f"{payload}.{signature[:-3]}abc",
        forged,
        "",
        "garbage",
    ):
        response = httpx.request(method, url, params={"token": token})
        assert response.status_code == 400, token
        assert "not valid" in response.text
    assert _status(config_path, "camille@example.org") == "active"
    assert _status(config_path, "sam@example.org") == "active"

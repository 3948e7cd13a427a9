"""Shared fixtures: a real workspace (seeds, templates, config) in a temp folder, real SQLite."""

from __future__ import annotations

import os
import shutil
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
import uvicorn
from click.testing import CliRunner, Result
from starlette.types import ASGIApp
from webserver import web  # noqa: F401  (the loopback HTTP server fixture of the web tests)

from newsdesk.cli import cli
from newsdesk.store import Store

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW_ISO = "2026-11-23T12:00:00Z"


@pytest.fixture(scope="session")
def gazetteer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One gazetteer cache for the whole session: building it is the slow part of tagging."""
    return tmp_path_factory.mktemp("gazetteer-cache")


def write_config(root: Path, cache: Path, extra: str = "") -> Path:
    config = root / "newsdesk.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [tagging]
            cache_dir = "{cache.as_posix()}"

            [feeds]
            base_url = "https://news.example.org/feeds/"
            min_country_articles = 1

            [schedule]
            timezone = "Europe/Paris"

            [[subscribers]]
            email = "camille@example.org"
            name = "Camille"
            regions = ["Europe", "Eastern Asia"]
            language = "fr"
            timezone = "Europe/Paris"

            [[subscribers]]
            email = "sam@example.org"
            name = "Sam"
            topics = ["medtop:15000000", "medtop:13000000"]
            language = "en"
            timezone = "America/New_York"

            [[subscribers]]
            email = "nobody@example.org"
            countries = ["AQ"]
            """
        )
        + extra,
        encoding="utf-8",
    )
    return config


@pytest.fixture()
def workspace(tmp_path: Path, gazetteer_cache: Path) -> Path:
    """A copy of the repository's seeds and templates with its own config and database."""
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    write_config(tmp_path, gazetteer_cache)
    return tmp_path


RunCli = Callable[..., Result]


@pytest.fixture()
def run_cli(workspace: Path) -> RunCli:
    """Invoke `newsdesk` in-process against the workspace config, at the fixed time NOW."""

    def invoke(*args: str, now: str = NOW_ISO) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            ["--config", str(workspace / "newsdesk.toml"), "--now", now, *args],
            catch_exceptions=False,
        )

    return invoke


PG_ADMIN_URL = os.environ.get(
    "NEWSDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for one test, dropped afterwards; skip if none answers."""
    try:
        admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            name = f"newsdesk_test_{uuid.uuid4().hex[:10]}"
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as error:  # no server, no driver, no rights: all mean "skip"
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error.__class__.__name__}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on a real SQLite file, then on PostgreSQL when one is reachable."""
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'test.db'}")
        yield opened
        opened.close()
        return
    for url in postgres_url():
        opened = Store.open(url)
        yield opened
        opened.close()


def free_port() -> int:
    """A loopback port nobody listens on (for servers, such as aiosmtpd's, that cannot report
    the port they were given)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def app_in_thread(app: ASGIApp) -> Iterator[str]:
    """The app under a real uvicorn on a loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""Shared fixtures: a real workspace (seeds, templates, config) in a temp folder, real SQLite."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from webserver import web  # noqa: F401  (the loopback HTTP server fixture of the web tests)

from newsdesk.cli import cli

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

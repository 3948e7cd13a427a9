"""A broken newsdesk.toml stops before anything is written, with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from newsdesk.cli import cli
from newsdesk.config import load_config
from newsdesk.errors import ConfigError


def test_shipped_config_loads_and_matches_defaults() -> None:
    config = load_config(REPO / "newsdesk.toml")
    assert config.seeds_dir == REPO / "seeds"
    assert config.database_url().endswith("newsdesk.db") or config.store.url_env
    assert len(config.subscribers) >= 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '[smtp]\nhost = "mail"\nport = "twenty-five"\n',
            "[smtp] port must be an integer, got 'twenty-five'",
        ),
        ("[feeds]\ncolour = 'blue'\n", "[feeds] unknown key 'colour'"),
        ("[wat]\n", "unknown section [wat]"),
        ("[feeds]\nitem_limit = 0\n", "[feeds] item_limit must be positive"),
        ('[schedule]\ntimezone = "Mars/Olympus"\n', "unknown time zone 'Mars/Olympus'"),
        (
            '[[subscribers]]\nemail = "a@example.org"\ntime = "7am"\n',
            "[[subscribers]] #1 time must be HH:MM",
        ),
        ("[schedule]\ningest_every_seconds = 0\n", "ingest_every_seconds must be positive"),
        ('[retention]\nrun_at = "25:00"\n', "[retention] run_at must be HH:MM"),
        ("[[subscribers]]\nname = 'x'\n", "[[subscribers]] #1 email: required"),
        ("[feeds\n", "not valid TOML"),
        ('[ingest]\nlanguages = "fr"\n', "[ingest] languages must be a list of strings"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "newsdesk.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("newsdesk.toml: ")


def test_cli_stops_on_broken_config_before_writing(tmp_path: Path) -> None:
    (tmp_path / "newsdesk.toml").write_text(
        '[smtp]\nhost = "m"\nport = "twenty-five"\n', encoding="utf-8"
    )
    (tmp_path / "seeds").mkdir()
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "newsdesk.toml"), "run"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: newsdesk.toml: [smtp] port must be an integer, got 'twenty-five'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newsdesk.toml", "seeds"]


def test_missing_config_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "absent.toml"), "build"])
    assert result.exit_code == 1
    assert "Error: absent.toml: file not found" in result.output

"""The README is part of the contract: every command and every config key is documented."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import REPO

from newsdesk import config as config_module
from newsdesk.cli import cli

README = (REPO / "README.md").read_text(encoding="utf-8")
SAMPLE = (REPO / "newsdesk.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"`newsdesk {command}" in README


def _keys() -> list[tuple[str, str]]:
    pairs = [
        (section, field.name)
        for section, cls in config_module._SECTIONS.items()
        for field in dataclasses.fields(cls)
    ]
    pairs += [
        (section, field.name)
        for section, cls in config_module._ARRAYS.items()
        for field in dataclasses.fields(cls)
    ]
    return pairs


@pytest.mark.parametrize(("section", "key"), _keys())
def test_every_config_key_is_in_the_readme_and_the_sample(section: str, key: str) -> None:
    is_array = section in config_module._ARRAYS
    heading = f"`[[{section}]]`" if is_array else f"`[{section}]`"
    assert heading in README
    table = README[README.index(heading) :]
    assert f"| `{key}` |" in table, f"[{section}] {key} missing from the README table"
    assert f"{key} =" in SAMPLE or f"# {key} =" in SAMPLE, (
        f"[{section}] {key} missing from newsdesk.toml"
    )


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:600]
    assert "make run" in head and "make test" in head

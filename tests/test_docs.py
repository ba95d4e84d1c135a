"""The README says what the code does."""

from __future__ import annotations

from pathlib import Path

from agent_tools.settings import settings_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_readme_configuration_table_is_the_one_generated_from_the_settings():
    assert settings_table() in README


def test_the_readme_names_the_two_commands_and_the_piper_licence():
    assert "make run" in README and "make test" in README and "GPL-3.0-or-later" in README

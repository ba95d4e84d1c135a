"""Scenario files: validation errors name the file and line; variables are substituted."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.scenario import ScenarioError, load_scenario, load_scenarios
from tests.evals.conftest import SCENARIOS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_every_starter_scenario_loads(builtins):
    scenarios = load_scenarios([SCENARIOS], builtins)
    assert len(scenarios) >= 7 and all(s.turns or s.dataset for s in scenarios)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (
            "name: x\nturns:\n  - speak: {text: hi}\n    transcribe: {audio: {previous: true}}\n",
            3,
            "exactly one of speak, transcribe, list_voices, stream or listen",
        ),
        (
            "name: x\nturns:\n  - speak: {text: hi}\n  - speak: {text: hi, pitch: 3}\n",
            4,
            "turns.1.speak.pitch",
        ),
        (
            "name: x\nturns:\n  - transcribe:\n      audio: {file: a.wav, previous: true}\n",
            4,
            "exactly one of file, speak or previous",
        ),
        ("name: x\nturns:\n  - speak: {text: hi}\n    expect: {max_wer: -1}\n", 4, "max_wer"),
        ("name: x\nturns:\n  - speak: {text: 'hi ${who}'}\n", 3, "unknown variable ${who}"),
        ("name: x\nturns: [\n", 3, "not valid YAML"),
        ("name: x\n", 1, "give turns, or a dataset"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path, builtins, text, line, says):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, builtins)
    assert str(info.value).startswith(f"{path}:{line}:") and says in str(info.value)


def test_variables_and_relative_recordings(tmp_path, builtins):
    path = write(
        tmp_path,
        "name: x\nvariables: {who: Ada}\nturns:\n  - speak: {text: 'Hello ${who}.'}\n"
        "  - transcribe: {audio: {file: rec/a.wav}}\n",
    )
    scenario = load_scenario(path, builtins)
    assert scenario.turns[0].speak is not None and scenario.turns[0].speak.text == "Hello Ada."
    heard = scenario.turns[1].transcribe
    assert heard is not None and heard.audio.file is not None
    assert scenario.resolve(heard.audio.file) == tmp_path / "rec" / "a.wav"


def test_a_missing_path_is_named(tmp_path, builtins):
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenarios([tmp_path / "nope"], builtins)

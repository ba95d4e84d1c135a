"""`speech-tools eval` as a user runs it: exit codes, reports, baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.evals.conftest import REPO, SCENARIOS

CLI = [sys.executable, "-m", "agent_tools"]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "eval", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_a_run_writes_reports_and_a_worse_run_than_the_baseline_fails(tmp_path, devset):
    scenario = tmp_path / "round-trip.yaml"
    scenario.write_text(
        "name: round trip\nturns:\n  - transcribe:\n      audio:\n"
        "        speak: {text: Good morning to you all.}\n"
        "    expect: {wer_against: Good morning to you all., max_wer: 0.5}\n"
    )
    first = run(
        str(scenario),
        str(SCENARIOS / "policy-cases.yaml"),
        "--report",
        str(tmp_path / "r.html"),
        "--save-baseline",
        str(tmp_path / "base.json"),
    )
    assert first.returncode == 0, first.stderr
    assert "# speech-tools eval: PASS" in first.stdout
    for suffix in (".html", ".md", ".json"):
        assert (tmp_path / f"r{suffix}").is_file()
    base = json.loads((tmp_path / "base.json").read_text())
    assert base["ok"] is True and base["summary"]["passed"] == 2
    base["summary"]["wer_by_voice"] = {"previous": 0.0, "en_US-joe-medium": -1.0}  # a better past
    (tmp_path / "base.json").write_text(json.dumps(base))
    second = run(str(scenario), "--baseline", str(tmp_path / "base.json"))
    assert second.returncode == 1
    assert "## Regressions" in second.stdout and "wer_by_voice[en_US-joe-medium]" in second.stdout


def test_bad_scenarios_and_baselines_are_refused_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nturns:\n  - shout: {text: hi}\n")
    result = run(str(bad))
    assert result.returncode == 2 and f"error [invalid_scenario]: {bad}:3:" in result.stderr
    result = run(str(SCENARIOS / "policy-cases.yaml"), "--baseline", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "error [invalid_baseline]" in result.stderr

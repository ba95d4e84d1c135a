"""The `speech-tools` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wer import normalized_wer


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_tools", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_speak_then_transcribe_round_trips_a_sentence(tmp_path: Path):
    text = "Speech tools can speak and then listen to themselves."
    out = tmp_path / "hello.mp3"
    spoken = run("speak", text, "-o", str(out), "--deterministic")
    assert spoken.returncode == 0, spoken.stderr
    assert out.read_bytes()[:3] == b"ID3"
    heard = run("transcribe", str(out))
    assert heard.returncode == 0, heard.stderr
    assert normalized_wer([text], [heard.stdout]) <= 0.1


def test_speak_reads_text_from_stdin_and_transcribe_writes_json_with_words(tmp_path: Path):
    out = tmp_path / "piped.wav"
    assert run("speak", "-", "-o", str(out), stdin="Reading from standard input.").returncode == 0
    heard = run("transcribe", str(out), "--words", "--format", "json")
    body = json.loads(heard.stdout)
    assert body["untrusted_content"] is True and body["language"] == "en"
    assert body["segments"][0]["words"]


def test_speak_writes_the_format_its_output_suffix_names_and_refuses_an_unknown_one(tmp_path: Path):
    out = tmp_path / "hello.m4a"
    spoken = run("speak", "An answer in an M4A file.", "-o", str(out))
    assert spoken.returncode == 0, spoken.stderr
    assert out.read_bytes()[4:8] == b"ftyp"  # an MP4 container, not a WAV named m4a
    assert "aac" in spoken.stderr
    heard = run("transcribe", str(out))
    assert normalized_wer(["An answer in an M4A file."], [heard.stdout]) <= 0.2
    unknown = run("speak", "Hello.", "-o", str(tmp_path / "hello.xyz"))
    assert unknown.returncode == 2 and "error [invalid_argument]" in unknown.stderr
    assert ".xyz" in unknown.stderr and "--format" in unknown.stderr
    assert not (tmp_path / "hello.xyz").exists()


def test_transcribe_writes_subtitles(tmp_path: Path):
    out = tmp_path / "s.flac"
    run("speak", "First line here. Second line there.", "-o", str(out))
    srt = run("transcribe", str(out), "--format", "srt").stdout
    vtt = run("transcribe", str(out), "--format", "vtt").stdout
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_voices_lists_every_engines_voices_and_filters_by_language():
    listed = json.loads(run("voices", "--json").stdout)
    assert listed[0]["id"] == "en_US-joe-medium" and len(listed) == 55
    assert {v["engine"] for v in listed} == {"piper", "kokoro"}
    spanish = json.loads(run("voices", "--json", "--language", "es").stdout)
    assert {v["id"] for v in spanish} == {"ef_dora", "em_alex", "em_santa"}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("transcribe", "/definitely/not/here.wav"), "invalid_argument"),
        (("transcribe", "/etc/hostname"), "unsupported_media"),
        (("speak", "   ", "-o", "/tmp/never.wav"), "invalid_argument"),
        (("speak", "Hi.", "-o", "/tmp/never.wav", "--voice", "../../x"), "voice_not_found"),
        (("speak", "Hi.", "-o", "/tmp/never.wav", "--speed", "9"), "invalid_argument"),
        (("speak", "Hi.", "-o", "/tmp/never.opus", "--sample-rate", "22050"), "invalid_argument"),
    ],
)
def test_bad_input_is_one_clear_line_on_stderr_and_a_non_zero_exit(args, code):
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error [{code}]: ") and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_bad_setting_is_reported_before_anything_loads():
    result = run("voices", env={"SPEECH_TOOLS_ENGINES__DEVICE": "tpu"})
    assert result.returncode == 2 and "invalid_configuration" in result.stderr


def test_a_malformed_list_setting_is_invalid_configuration_not_a_traceback():
    result = run("voices", env={"SPEECH_TOOLS_SERVICE__FILE_ROOTS": "[/tmp"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error [invalid_configuration]") and "Traceback" not in result.stderr


def test_an_unwritable_audit_path_stops_serve_with_invalid_configuration(tmp_path: Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\naudit:\n  path: /dev/null/audit.log\n")
    result = run("serve", "--port", "0", env={"SPEECH_TOOLS_POLICY_FILE": str(policy)})
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.startswith("error [invalid_configuration]") and "/dev/null/audit.log" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_bad_lexicon_stops_serve_naming_its_line(tmp_path: Path):
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("kubectl: cube control\nnginx: /half ipa\n", encoding="utf-8")
    result = run("serve", "--port", "0", env={"SPEECH_TOOLS_ENGINES__LEXICON_FILE": str(lexicon)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error [invalid_configuration]") and "line 2" in result.stderr
    assert "Traceback" not in result.stderr

"""The package layers and public surface stay as designed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import speech_backend

ROOT = Path(__file__).resolve().parent.parent


def test_import_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_engine_packages_import_the_engine_libraries():
    for path in (ROOT / "speech_backend").rglob("*.py"):
        source = path.read_text()
        package = path.parent.relative_to(ROOT / "speech_backend").as_posix()
        if "import piper" in source or "from piper" in source:
            assert package == "piper", path
        if "faster_whisper" in source.replace("faster_whisper.", "").split('"""', 2)[-1]:
            assert package == "whisper", path


def test_the_backend_public_surface_is_pinned():
    assert sorted(speech_backend.__all__) == sorted(
        [
            "AUDIO_FORMATS",
            "MIME_TYPES",
            "Audio",
            "AudioFormat",
            "AudioLimits",
            "AudioTooLong",
            "BackendUnavailable",
            "Cancelled",
            "DecodeFailed",
            "DecodedAudio",
            "Device",
            "EngineSettings",
            "InvalidArgument",
            "ModelNotFound",
            "PayloadTooLarge",
            "PiperSettings",
            "ProgressHook",
            "RecognitionOptions",
            "Recognizer",
            "Segment",
            "SpeechChunk",
            "SpeechError",
            "SynthesisOptions",
            "Synthesizer",
            "TextTooLong",
            "Transcript",
            "UnsupportedMedia",
            "Voice",
            "VoiceNotFound",
            "WhisperSettings",
            "Word",
            "WordTiming",
            "build_recognizer",
            "build_synthesizer",
            "decode_audio",
            "encode_audio",
            "is_marked_synthetic",
            "output_rate",
            "resample",
            "resolve_device",
            "synthetic_metadata",
            "to_pcm16",
        ]
    )


def test_no_agent_tools_module_is_over_300_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "agent_tools").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert long == {}


def test_no_attributes_are_attached_to_objects_behind_the_type_checkers_back():
    for package in ("agent_tools", "speech_backend", "policies", "evals", "speech_errors"):
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text()
            assert "type: ignore[attr-defined]" not in source, path
            assert "fmt: skip" not in source and "fmt: off" not in source, path


def test_the_embedded_server_loads_neither_ray_nor_redis():
    # `make run` keeps everything in one process: the cluster libraries load only when configured
    code = (
        "import sys; from agent_tools.settings import Settings; "
        "from agent_tools.core.runtime import Runtime; "
        "from agent_tools.web.app import build_app; import agent_tools.cli; "
        "build_app(Runtime.build(Settings())); "
        "print(sorted(m for m in ('ray', 'redis') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_tests_mirror_the_agent_tools_packages():
    packages = {p.parent.name for p in (ROOT / "agent_tools").glob("*/__init__.py")}
    mirrored = {p.parent.name for p in (ROOT / "tests" / "agent_tools").glob("*/__init__.py")}
    assert {"core", "tools", "web"} <= mirrored <= packages


HEAVY = {
    "tests/agent_tools/tools/test_langchain.py",
    "tests/agent_tools/tools/test_typescript_clients.py",
    "tests/agent_tools/web/test_python_clients.py",
    "tests/agent_tools/web/test_playground_browser.py",
    "tests/cluster/test_engine_pool.py",
    "tests/cluster/test_shared_state.py",
}


def test_the_heavy_suites_are_marked_so_a_quick_run_leaves_them_out():
    def collected(expression: str) -> set[str]:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:randomly",
            "-m",
            expression,
        ]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}

    heavy = collected("clients or browser or cluster")
    quick = collected("not (clients or browser or cluster)")
    assert heavy == HEAVY
    assert not heavy & quick and "tests/agent_tools/web/test_realtime.py" in quick

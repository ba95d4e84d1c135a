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


def test_only_the_engine_adapters_import_the_engine_libraries():
    for path in (ROOT / "speech_backend").glob("*.py"):
        source = path.read_text()
        if "import piper" in source or "from piper" in source:
            assert path.name == "piper_synthesizer.py"
        if "faster_whisper" in source.replace("faster_whisper.", "").split('"""', 2)[-1]:
            assert path.name == "whisper_recognizer.py", path.name


def test_the_backend_public_surface_is_pinned():
    assert sorted(speech_backend.__all__) == sorted(
        [
            "AUDIO_FORMATS", "MIME_TYPES", "Audio", "AudioFormat", "AudioLimits", "AudioTooLong",
            "BackendUnavailable", "Cancelled", "DecodeFailed", "DecodedAudio", "Device", "EngineSettings",
            "InvalidArgument", "ModelNotFound", "PayloadTooLarge", "PiperSettings", "ProgressHook",
            "RecognitionOptions", "Recognizer", "Segment", "SpeechChunk", "SpeechError", "SynthesisOptions",
            "Synthesizer", "TextTooLong", "Transcript", "UnsupportedMedia", "Voice", "VoiceNotFound",
            "WhisperSettings", "Word", "WordTiming", "build_recognizer", "build_synthesizer", "decode_audio",
            "encode_audio", "is_marked_synthetic", "output_rate", "resample", "resolve_device",
            "synthetic_metadata", "to_pcm16",
        ]
    )  # fmt: skip

"""The optional multilingual Whisper base model, joined from its two parts."""

from __future__ import annotations

import pytest

from speech_backend import EngineSettings, RecognitionOptions, WhisperSettings, build_recognizer, resample
from speech_backend.whisper.multilingual import MODEL_DIR_NAME, joined_model_dir, part_dirs
from tests.typed import present

pytestmark = [
    pytest.mark.multilingual,
    pytest.mark.skipif(part_dirs() is None, reason="the 'multilingual' extra is not installed"),
]


def test_the_parts_are_joined_once_to_their_combined_size(tmp_path):
    first, second = present(part_dirs())
    expected = (first / "model.bin.part1").stat().st_size + (second / "model.bin.part2").stat().st_size
    folder = present(joined_model_dir(tmp_path))
    assert folder == tmp_path / MODEL_DIR_NAME
    assert (folder / "model.bin").stat().st_size == expected
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert joined_model_dir(tmp_path) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_DIR_NAME]  # no staging left behind


def test_a_half_written_join_is_redone(tmp_path):
    folder = present(joined_model_dir(tmp_path))
    size = (folder / "model.bin").stat().st_size
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(size // 3)
    assert (present(joined_model_dir(tmp_path)) / "model.bin").stat().st_size == size


def test_the_base_model_detects_the_language(tmp_path, cpu, speak):
    settings = EngineSettings(cache_dir=tmp_path, whisper=WhisperSettings(model="base"))
    recognizer = build_recognizer(settings, cpu)
    assert recognizer.multilingual
    transcript = recognizer.transcribe(
        resample(speak("Good morning, how are you today?"), 16000), RecognitionOptions()
    )
    assert transcript.language == "en" and transcript.language_probability > 0.5
    assert "morning" in transcript.text.lower()

"""Moonshine tiny-en with its real model files: what it hears, what it serves, what it refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from speech_backend import Audio, EngineSettings, InvalidArgument, ModelNotFound, RecognitionOptions, resample
from speech_backend.moonshine.recognizer import DECODER, FILES, MAX_SECONDS, MoonshineRecognizer
from tests.wer import normalized_wer

SENTENCES = [
    "Please book a table for four people at seven tonight.",
    "Remind me to call my mother tomorrow afternoon.",  # heard as "to-morrow" before the respelling
    "Set a timer for twenty five minutes.",
    "What is the weather going to be like in Lisbon tomorrow?",
]


@pytest.fixture(scope="module")
def moonshine(engine_settings: EngineSettings) -> MoonshineRecognizer:
    assert MoonshineRecognizer.fetched(engine_settings.cache_dir), "fetched at set-up: run `make live-models`"
    recognizer = MoonshineRecognizer(engine_settings.cache_dir)
    recognizer.load()
    return recognizer


def test_short_utterances_are_heard_in_english(moonshine, speak):
    heard = [moonshine.transcribe(resample(speak(text), 16000), RecognitionOptions()) for text in SENTENCES]
    assert normalized_wer(SENTENCES, [t.text for t in heard]) <= 0.1, [t.text for t in heard]
    first = heard[0]
    assert first.language == "en" and len(first.segments) == 1 and first.segments[0].words == ()
    assert -2.0 < first.segments[0].avg_logprob <= 0.0


def test_it_serves_only_short_english_utterances_without_words_or_prompt():
    plain = RecognitionOptions()
    assert MoonshineRecognizer.accepts(3.0, plain)
    assert MoonshineRecognizer.accepts(3.0, RecognitionOptions(language="en", beam_size=1))
    assert not MoonshineRecognizer.accepts(3.0, RecognitionOptions(word_timestamps=True))
    assert not MoonshineRecognizer.accepts(3.0, RecognitionOptions(initial_prompt="Lisbon"))
    assert not MoonshineRecognizer.accepts(3.0, RecognitionOptions(language="fr"))
    assert not MoonshineRecognizer.accepts(MAX_SECONDS + 0.5, plain)
    assert not MoonshineRecognizer.accepts(0.05, plain)


def test_what_it_cannot_serve_is_refused_typed(moonshine):
    long = Audio(np.zeros(int((MAX_SECONDS + 1) * 16000), np.float32), 16000)
    with pytest.raises(InvalidArgument, match="9 s of audio"):
        moonshine.transcribe(long, RecognitionOptions())
    with pytest.raises(InvalidArgument, match="English only"):
        moonshine.transcribe(Audio(np.zeros(16000, np.float32), 16000), RecognitionOptions(language="de"))
    with pytest.raises(InvalidArgument, match="16000 Hz"):
        moonshine.transcribe(Audio(np.zeros(8000, np.float32), 8000), RecognitionOptions())


def test_a_damaged_model_file_is_refused_by_name(engine_settings, tmp_path: Path):
    for file in FILES.values():
        source = file.path(engine_settings.cache_dir)
        assert source is not None
        shutil.copy(source, tmp_path / file.name)
    with (tmp_path / DECODER.name).open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    with pytest.raises(ModelNotFound, match="moonshine-tiny-en-decoder.ort"):
        MoonshineRecognizer(tmp_path).load()
    (tmp_path / DECODER.name).unlink()
    assert not MoonshineRecognizer.fetched(tmp_path)
    with pytest.raises(ModelNotFound, match="run `make`"):
        MoonshineRecognizer(tmp_path).load()


def test_the_last_words_of_a_turn_come_with_how_sure_the_last_one_is(moonshine, speak):
    clean = moonshine.last_words(resample(speak("Set a timer for twenty five minutes."), 16000).samples)
    assert clean.text.rstrip(".").endswith("minutes") and 0.6 < clean.last_word_probability <= 1.0
    assert moonshine.last_words(np.zeros(800, np.float32)).text == ""  # under 0.1 s: nothing heard

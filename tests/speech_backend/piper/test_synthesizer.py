"""Piper synthesis on the bundled voice."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from speech_backend import (
    InvalidArgument,
    ModelNotFound,
    PiperSettings,
    SynthesisOptions,
    VoiceNotFound,
)
from speech_backend.catalog import VoiceCatalog
from speech_backend.piper.synthesizer import PiperSynthesizer
from tests.conftest import DEFAULT_VOICE
from tests.typed import present

DETERMINISTIC = SynthesisOptions(deterministic=True)


def test_each_sentence_is_its_own_chunk_with_contiguous_timings(synthesizer):
    chunks = list(synthesizer.synthesize("First sentence. Second one! Third?", DEFAULT_VOICE, DETERMINISTIC))
    assert [c.text for c in chunks] == ["First sentence.", "Second one!", "Third?"]
    assert chunks[0].start == 0.0
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start == pytest.approx(before.end)
    assert all(c.audio.sample_rate == 22050 and c.audio.duration > 0.2 for c in chunks)


def test_the_first_chunk_is_ready_before_later_sentences_are_synthesized(synthesizer):
    chunks = synthesizer.synthesize("One. Two. Three. Four.", DEFAULT_VOICE, DETERMINISTIC)
    first = next(iter(chunks))
    assert first.index == 0 and first.text == "One."


def test_deterministic_mode_gives_bit_identical_audio(synthesizer):
    a = [c.audio.samples for c in synthesizer.synthesize("Same words twice.", DEFAULT_VOICE, DETERMINISTIC)]
    b = [c.audio.samples for c in synthesizer.synthesize("Same words twice.", DEFAULT_VOICE, DETERMINISTIC)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_speed_two_roughly_halves_the_duration(synthesizer):
    text = "This sentence is spoken at two different speeds."
    normal = sum(c.audio.duration for c in synthesizer.synthesize(text, DEFAULT_VOICE, DETERMINISTIC))
    fast = sum(
        c.audio.duration
        for c in synthesizer.synthesize(text, DEFAULT_VOICE, SynthesisOptions(speed=2.0, deterministic=True))
    )
    assert 0.4 < fast / normal < 0.65


@pytest.mark.parametrize("speed", [0.0, 0.49, 2.01, -1.0, float("nan")])
def test_speed_outside_half_to_double_is_an_invalid_argument(synthesizer, speed):
    with pytest.raises(InvalidArgument):
        synthesizer.synthesize("Hello.", DEFAULT_VOICE, SynthesisOptions(speed=speed))


@pytest.mark.parametrize("voice", ["nope", "../../etc/passwd", "/tmp/x.onnx", "https://evil/x.onnx", ""])
def test_unknown_voice_ids_and_path_like_ids_are_voice_not_found(synthesizer, voice):
    with pytest.raises(VoiceNotFound):
        synthesizer.synthesize("Hello.", voice, DETERMINISTIC)


def test_a_speaker_on_a_single_speaker_voice_is_an_invalid_argument(synthesizer):
    with pytest.raises(InvalidArgument, match="speaker"):
        synthesizer.synthesize("Hello.", DEFAULT_VOICE, SynthesisOptions(speaker="alice"))


def test_voice_metadata_comes_from_the_voice_config_and_model_card(synthesizer):
    (voice,) = [v for v in synthesizer.voices() if v.id == DEFAULT_VOICE]
    assert (voice.language, voice.sample_rate, voice.quality, voice.licence) == (
        "en_US",
        22050,
        "medium",
        "CC0",
    )
    assert voice.engine == "piper"


def test_a_corrupt_voice_model_is_model_not_found_naming_the_file(tmp_path, synthesizer, cpu):
    from speech_backend.catalog import VOICE_PACKAGES, package_dir

    source = present(package_dir(VOICE_PACKAGES[0])) / "data"
    shutil.copy(source / f"{DEFAULT_VOICE}.onnx.json", tmp_path / "broken-voice.onnx.json")
    (tmp_path / "broken-voice.onnx").write_bytes(b"not an onnx model")
    engine = PiperSynthesizer(VoiceCatalog((tmp_path,), include_packages=False), PiperSettings(), cpu)
    with pytest.raises(ModelNotFound) as info:
        engine.load("broken-voice")
    assert "broken-voice.onnx" in info.value.message and "VOICE_DIRS" in info.value.message


def test_a_voice_config_that_is_not_json_is_skipped_and_logged_naming_the_file(tmp_path, caplog):
    (tmp_path / "bad.onnx").write_bytes(b"x")
    (tmp_path / "bad.onnx.json").write_text("{not json")
    catalog = VoiceCatalog((tmp_path,), include_packages=False)
    assert catalog.voices() == ()
    assert any("bad.onnx.json" in record.getMessage() for record in caplog.records)
    with pytest.raises(VoiceNotFound):
        catalog.get("bad")


def test_a_missing_voice_folder_is_model_not_found_naming_the_setting(tmp_path):
    with pytest.raises(ModelNotFound, match="VOICE_DIRS"):
        VoiceCatalog((tmp_path / "absent",), include_packages=False)


def test_an_extra_voice_folder_adds_its_voices_to_the_catalog(tmp_path):
    from speech_backend.catalog import VOICE_PACKAGES, package_dir

    source = present(package_dir(VOICE_PACKAGES[0])) / "data"
    config = json.loads((source / f"{DEFAULT_VOICE}.onnx.json").read_text())
    config["language"]["code"] = "en_GB"
    (tmp_path / "en_GB-copy-medium.onnx").symlink_to(source / f"{DEFAULT_VOICE}.onnx")
    (tmp_path / "en_GB-copy-medium.onnx.json").write_text(json.dumps(config))
    catalog = VoiceCatalog((tmp_path,))
    assert {v.id for v in catalog.voices()} == {DEFAULT_VOICE, "en_GB-copy-medium"}
    assert catalog.get("en_GB-copy-medium").voice.language == "en_GB"


def quiet_ms(samples: np.ndarray, rate: int, at_end: bool) -> float:
    loud = np.flatnonzero(np.abs(samples) >= 0.01)
    edge = len(samples) - 1 - loud[-1] if at_end else loud[0]
    return 1000 * float(edge) / rate


def test_a_lead_in_cut_between_words_joins_the_rest_with_an_inter_word_pause(synthesizer):
    options = SynthesisOptions(deterministic=True, lead_in_words=5)
    head, rest = list(
        synthesizer.synthesize(
            "Your table for four is booked for seven thirty tonight.", DEFAULT_VOICE, options
        )
    )
    assert (head.text, rest.text) == ("Your table for four", "is booked for seven thirty tonight.")
    rate = head.audio.sample_rate
    join = quiet_ms(head.audio.samples, rate, at_end=True) + quiet_ms(rest.audio.samples, rate, at_end=False)
    assert join < 100  # words within a phrase: no sentence-end pause between them
    assert rest.start == pytest.approx(head.end)


def test_a_lead_in_cut_at_a_comma_keeps_the_pause_a_comma_has(synthesizer):
    options = SynthesisOptions(deterministic=True, lead_in_words=5)
    chunks = list(
        synthesizer.synthesize("Good evening, and welcome to the late news.", DEFAULT_VOICE, options)
    )
    assert [c.text for c in chunks] == ["Good evening,", "and welcome to the late news."]
    assert quiet_ms(chunks[0].audio.samples, chunks[0].audio.sample_rate, at_end=True) > 100

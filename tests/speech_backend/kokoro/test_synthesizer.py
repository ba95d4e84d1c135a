"""Kokoro's voices: its files checked against their pins, speech in each language Whisper hears back,
word timings from the predicted durations, speed and the lead-in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from speech_backend import (
    Audio,
    EngineSettings,
    ModelNotFound,
    RecognitionOptions,
    Recognizer,
    SynthesisOptions,
    Synthesizer,
    VoiceNotFound,
    WhisperSettings,
    build_recognizer,
    build_synthesizer,
    resample,
    resolve_device,
)
from speech_backend.devices import Device
from speech_backend.kokoro.files import MODEL_NAME, TIMED_NAME, manifest, timed_model
from tests.speech_backend.test_devices import HAS_CUDA
from tests.wer import language_wer, normalized_wer


@pytest.fixture(scope="module")
def kokoro(engine_settings: EngineSettings, cpu: Device) -> Synthesizer:
    return build_synthesizer(engine_settings, cpu, "kokoro")


@pytest.fixture(scope="module")
def multilingual(engine_settings: EngineSettings, cpu: Device) -> Recognizer:
    settings = engine_settings.model_copy(update={"whisper": WhisperSettings(model="base")})
    return build_recognizer(settings, cpu)


def said(synthesizer: Synthesizer, text: str, voice: str, **options: object) -> Audio:
    chunks = list(synthesizer.synthesize(text, voice, SynthesisOptions(**options)))  # type: ignore[arg-type]
    return Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)


def test_all_54_voices_of_nine_languages_are_served_and_each_says_who_it_is(kokoro):
    voices = {v.id: v for v in kokoro.voices()}
    assert len(voices) == 54 and {v.engine for v in voices.values()} == {"kokoro"}
    languages = {"en_US", "en_GB", "es", "fr", "hi", "it", "ja", "pt_BR", "zh"}
    assert {v.language for v in voices.values()} == languages
    heart = voices["af_heart"]
    assert (heart.name, heart.gender, heart.sample_rate, heart.licence) == (
        "Heart",
        "female",
        24000,
        "Apache-2.0",
    )
    assert voices["am_onyx"].gender == "male"
    with pytest.raises(VoiceNotFound):
        list(kokoro.synthesize("Hello.", "xf_nobody", SynthesisOptions()))


@pytest.mark.parametrize(
    ("voice", "language", "text"),
    [
        ("af_heart", "en", "The parcel arrives on Thursday before noon, and the driver will call first."),
        ("am_onyx", "en", "Please book a table for four people at seven."),
        ("bf_emma", "en", "The train to London leaves from platform four."),
        ("ef_dora", "es", "El tren sale de la estación a las ocho de la mañana."),
        ("ff_siwis", "fr", "Le colis arrive jeudi avant midi."),
        ("if_sara", "it", "La riunione è stata spostata a giovedì pomeriggio."),
        ("pf_dora", "pt", "A reunião foi transferida para quinta-feira à tarde."),
        ("jf_alpha", "ja", "この荷物を木曜日までに届けてください。"),
        ("zm_yunxi", "zh", "我在车站前面等朋友。"),
    ],
)
def test_a_sentence_in_the_voices_language_comes_back_through_whisper(
    kokoro, recognizer, multilingual, voice, language, text
):
    audio = resample(said(kokoro, text, voice, deterministic=True), 16000)
    heard = (recognizer if language == "en" else multilingual).transcribe(
        audio, RecognitionOptions(language=language)
    )
    error = language_wer(text, heard.text, language)  # per character in Japanese and Chinese
    assert error <= (0.15 if language == "en" else 0.25), heard.text


def test_word_timings_follow_the_words_and_lie_inside_their_sentence(kokoro):
    text = "Good evening. The parcel arrives on Thursday, before noon."
    chunks = list(kokoro.synthesize(text, "af_heart", SynthesisOptions()))
    for chunk in chunks:
        assert [w.text for w in chunk.words] == chunk.text.split()
        starts = [w.start for w in chunk.words]
        assert starts == sorted(starts)
        assert all(chunk.start <= w.start < w.end <= chunk.end + 0.01 for w in chunk.words)
    assert chunks[1].start == pytest.approx(chunks[0].end)


def test_mandarin_is_heard_back_in_simplified_characters(kokoro, multilingual):
    audio = resample(said(kokoro, "图书馆晚上九点关门。", "zm_yunxi", deterministic=True), 16000)
    heard = multilingual.transcribe(audio, RecognitionOptions(language="zh")).text
    assert "图书馆" in heard and "點" not in heard, heard  # (without the script prompt: 圖書館...點)


@pytest.mark.parametrize(
    ("voice", "text", "words"),
    [
        ("jf_alpha", "駅の前で友達と待ち合わせをしました。", ["駅", "の", "前", "で", "友達", "と"]),
        ("zf_xiaobei", "我在车站前面等朋友。", ["我", "在", "车站", "前面", "等", "朋友。"]),
    ],
)
def test_japanese_and_chinese_words_are_timed_in_order_and_join_back_into_the_sentence(
    kokoro, voice, text, words
):
    (chunk,) = kokoro.synthesize(text, voice, SynthesisOptions())
    assert "".join(w.text for w in chunk.words) == text
    assert [w.text for w in chunk.words][: len(words)] == words
    ends = [w.end for w in chunk.words]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)
    assert all(chunk.start <= w.start < w.end <= chunk.end + 0.01 for w in chunk.words)


def test_a_chinese_lead_in_is_its_first_clause(kokoro):
    text = "明天的会议下午三点开始，请大家准时参加。"
    chunks = list(kokoro.synthesize(text, "zf_xiaobei", SynthesisOptions(lead_in_words=5)))
    assert [c.text for c in chunks] == ["明天的会议下午三点开始，", "请大家准时参加。"]


def test_speed_changes_the_length_and_a_lead_in_opens_with_the_first_clause(kokoro):
    text = "When the meeting ends, please send the notes to everyone on the team."
    normal, fast = said(kokoro, text, "am_michael"), said(kokoro, text, "am_michael", speed=1.5)
    assert fast.duration < normal.duration * 0.8
    chunks = list(kokoro.synthesize(text, "am_michael", SynthesisOptions(lead_in_words=5)))
    assert [c.text for c in chunks] == [
        "When the meeting ends,",
        "please send the notes to everyone on the team.",
    ]


def test_a_voice_file_that_is_not_the_pinned_one_is_refused(engine_settings, cpu, tmp_path: Path):
    voices = engine_settings.kokoro.voices_dir or engine_settings.cache_dir / "kokoro-voices"
    copied = tmp_path / "voices"
    shutil.copytree(voices, copied)
    tampered = bytearray((copied / "af_heart.bin").read_bytes())
    tampered[100] ^= 0xFF
    (copied / "af_heart.bin").write_bytes(bytes(tampered))
    kokoro_settings = engine_settings.kokoro.model_copy(update={"voices_dir": copied})
    synthesizer = build_synthesizer(
        engine_settings.model_copy(update={"kokoro": kokoro_settings}), cpu, "kokoro"
    )
    with pytest.raises(ModelNotFound) as refused:
        synthesizer.load("af_heart")
    assert "af_heart.bin" in refused.value.message and "sha256" in refused.value.message
    assert len(manifest()) == 54  # the manifest pins every file of the package


def test_a_damaged_timed_model_is_refused_by_name_and_made_again_once_deleted(
    engine_settings, cpu, tmp_path: Path
):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.link(engine_settings.cache_dir / MODEL_NAME, cache / MODEL_NAME)  # (checked when it was joined)
    voices = engine_settings.kokoro.voices_dir or engine_settings.cache_dir / "kokoro-voices"
    kokoro = engine_settings.kokoro.model_copy(update={"voices_dir": voices})
    settings = engine_settings.model_copy(update={"cache_dir": cache, "kokoro": kokoro})
    timed = timed_model(cache)
    assert timed is not None and timed.name == TIMED_NAME
    timed.write_bytes(timed.read_bytes()[:1000])
    with pytest.raises(ModelNotFound) as refused:
        build_synthesizer(settings, cpu, "kokoro").load("af_heart")
    assert TIMED_NAME in refused.value.message and "delete it" in refused.value.message
    timed.unlink()
    audio = said(build_synthesizer(settings, cpu, "kokoro"), "Made again.", "af_heart")
    assert audio.duration > 0.3


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device usable by onnxruntime and CTranslate2")
def test_kokoro_speaks_on_the_cuda_provider(engine_settings, recognizer):
    kokoro = build_synthesizer(engine_settings, resolve_device("cuda"), "kokoro")
    text = "Please book a table for four people at seven."
    audio = resample(said(kokoro, text, "af_heart", deterministic=True), 16000)
    heard = recognizer.transcribe(audio, RecognitionOptions(language="en"))
    assert normalized_wer([text], [heard.text]) <= 0.15
    assert kokoro._ort().get_providers()[0] == "CUDAExecutionProvider"  # type: ignore[attr-defined]

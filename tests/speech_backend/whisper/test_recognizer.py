"""faster-whisper recognition on the bundled tiny.en model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from speech_backend import (
    Audio,
    Cancelled,
    EngineSettings,
    InvalidArgument,
    ModelNotFound,
    RecognitionOptions,
    WhisperSettings,
    build_recognizer,
    resample,
)
from speech_backend.catalog import BUNDLED_WHISPER_PACKAGE, package_dir
from tests.typed import present
from tests.wer import normalized_wer

SENTENCE = "The weather is lovely today, so we will walk to the park."


@pytest.fixture(scope="module")
def sentence_audio(speak) -> Audio:
    return resample(speak(SENTENCE), 16000)


def test_speech_is_transcribed_with_segments_and_language(recognizer, sentence_audio):
    transcript = recognizer.transcribe(sentence_audio, RecognitionOptions())
    assert normalized_wer([SENTENCE], [transcript.text]) <= 0.1
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(sentence_audio.duration)
    assert transcript.segments and transcript.segments[-1].end <= transcript.duration + 0.5


def test_word_timings_are_ordered_and_inside_the_audio(recognizer, sentence_audio):
    words = recognizer.transcribe(sentence_audio, RecognitionOptions(word_timestamps=True)).words
    assert len(words) >= 10
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(
        0 <= w.start <= w.end <= sentence_audio.duration + 0.1 and 0 <= w.probability <= 1 for w in words
    )


def test_progress_is_reported_up_to_the_whole_duration(recognizer, sentence_audio):
    seen: list[tuple[float, float]] = []
    recognizer.transcribe(
        sentence_audio, RecognitionOptions(), lambda done, total: seen.append((done, total))
    )
    assert seen and seen[-1][1] == pytest.approx(sentence_audio.duration)


def test_a_progress_hook_that_raises_stops_the_work_between_segments(recognizer, speak):
    long_audio = resample(speak(" ".join([SENTENCE] * 6)), 16000)
    calls = 0

    def stop(done: float, total: float) -> None:
        nonlocal calls
        calls += 1
        raise Cancelled("caller went away")

    with pytest.raises(Cancelled):
        recognizer.transcribe(long_audio, RecognitionOptions(), stop)
    assert calls == 1


def test_silence_gives_no_words(recognizer):
    silence = Audio(np.zeros(16000 * 3, dtype=np.float32), 16000)
    transcript = recognizer.transcribe(silence, RecognitionOptions())
    assert len(transcript.text.split()) <= 2


def test_an_english_only_model_refuses_another_language_hint(recognizer, sentence_audio):
    with pytest.raises(InvalidArgument, match="English only"):
        recognizer.transcribe(sentence_audio, RecognitionOptions(language="fr"))


@pytest.mark.parametrize("language", ["xx", "english", "../en", ""])
def test_an_unknown_language_is_an_invalid_argument(recognizer, sentence_audio, language):
    with pytest.raises(InvalidArgument):
        recognizer.transcribe(sentence_audio, RecognitionOptions(language=language))


def test_audio_not_at_16_khz_is_refused(recognizer, speak):
    with pytest.raises(InvalidArgument, match="16000"):
        recognizer.transcribe(speak("Hello."), RecognitionOptions())


def test_an_unknown_model_id_is_model_not_found_listing_what_is_installed(engine_settings, cpu):
    settings = engine_settings.model_copy(update={"whisper": WhisperSettings(model="large-v9")})
    with pytest.raises(ModelNotFound, match="tiny.en"):
        build_recognizer(settings, cpu)


def test_a_model_folder_with_a_corrupt_model_bin_is_model_not_found(tmp_path, cpu, cache_dir):
    folder = tmp_path / "corrupt"
    shutil.copytree(present(package_dir(BUNDLED_WHISPER_PACKAGE)) / "model", folder)
    (folder / "model.bin").write_bytes(b"\0" * 1024)
    settings = EngineSettings(
        cache_dir=cache_dir, whisper=WhisperSettings(model="corrupt", model_dirs=(folder,))
    )
    with pytest.raises(ModelNotFound, match="corrupt"):
        build_recognizer(settings, cpu)


def test_a_configured_model_folder_loads_by_its_name(tmp_path, cpu, cache_dir, sentence_audio):
    folder = tmp_path / "my-tiny.en"
    folder.mkdir()
    for f in (present(package_dir(BUNDLED_WHISPER_PACKAGE)) / "model").iterdir():
        (folder / f.name).symlink_to(f)
    settings = EngineSettings(
        cache_dir=cache_dir, whisper=WhisperSettings(model="my-tiny.en", model_dirs=(folder,))
    )
    recognizer = build_recognizer(settings, cpu)
    assert recognizer.model_id == "my-tiny.en" and not recognizer.multilingual
    assert (
        normalized_wer([SENTENCE], [recognizer.transcribe(sentence_audio, RecognitionOptions()).text]) <= 0.1
    )


def test_long_audio_goes_through_the_batched_pipeline_and_keeps_the_words(cpu, cache_dir, speak):
    text = " ".join([SENTENCE, "Afterwards we will have lunch by the river and read our books."] * 2)
    audio = resample(speak(text), 16000)
    settings = EngineSettings(
        cache_dir=cache_dir, whisper=WhisperSettings(batched_min_seconds=audio.duration - 1)
    )
    recognizer = build_recognizer(settings, cpu)
    progress: list[float] = []
    transcript = recognizer.transcribe(
        audio, RecognitionOptions(word_timestamps=True), lambda d, t: progress.append(d)
    )
    assert normalized_wer([text], [transcript.text]) <= 0.1
    assert transcript.words and progress

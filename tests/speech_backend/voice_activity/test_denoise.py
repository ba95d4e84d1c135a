"""DeepFilterNet on live audio: noise falls away, speech stays (heard back by Whisper), far_field
keeps its attenuation limit, and a stream in small frames gives what the whole gives."""

from __future__ import annotations

import numpy as np
import pytest

from speech_backend import Audio, EngineSettings, RecognitionOptions, Recognizer, resample
from speech_backend.voice_activity.denoise import DenoiserModel, model_file
from tests.wer import normalized_wer

RATE = 16000


@pytest.fixture(scope="module")
def model(engine_settings: EngineSettings) -> DenoiserModel:
    path = model_file(engine_settings.cache_dir)
    assert path is not None, "DeepFilterNet is fetched at set-up: run `make live-models`"
    return DenoiserModel(path)


def pink(seconds: float, seed: int = 0) -> np.ndarray:
    white = np.random.default_rng(seed).standard_normal(int(RATE * seconds))
    spectrum = np.fft.rfft(white) / np.sqrt(np.maximum(np.arange(len(white) // 2 + 1), 1))
    out = np.fft.irfft(spectrum, len(white))
    scaled: np.ndarray = (out / np.sqrt(np.mean(out**2)) * 0.05).astype(np.float32)
    return scaled


def cleaned(
    model: DenoiserModel, samples: np.ndarray, kind: str = "near_field", frame: int = 1600
) -> np.ndarray:
    stream = model.stream(kind)  # type: ignore[arg-type]
    out = [stream.push(samples[i : i + frame]) for i in range(0, len(samples), frame)]
    return np.concatenate([*out, stream.push(np.zeros(0, np.float32), last=True)])


def db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(samples**2) + 1e-12))


def test_noise_alone_falls_by_20_db_near_field_and_by_about_18_at_most_far_field(model):
    noise = pink(4.0)
    near, far = cleaned(model, noise), cleaned(model, noise, "far_field")
    settled = slice(RATE, 4 * RATE)  # after the model's first second of listening
    assert db(noise[settled]) - db(near[settled]) > 20
    assert 12 < db(noise[settled]) - db(far[settled]) < 21


def test_speech_in_noise_keeps_its_words_and_the_length_of_the_stream(model, speak, recognizer: Recognizer):
    text = "Please book a table for four people at seven."
    speech = resample(speak(text), RATE).samples
    noisy = np.concatenate([np.zeros(RATE // 2, np.float32), speech, np.zeros(RATE // 2, np.float32)])
    noisy = noisy + pink(len(noisy) / RATE, seed=1)
    out = cleaned(model, noisy, frame=333)  # frames of any size
    assert abs(len(out) - len(noisy)) < 0.02 * RATE
    heard = recognizer.transcribe(Audio(out, RATE), RecognitionOptions(language="en")).text
    assert normalized_wer([text], [heard]) <= 0.15, heard

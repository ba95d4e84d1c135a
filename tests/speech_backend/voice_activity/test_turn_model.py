"""Semantic end of turn with the real Smart Turn model and Silero VAD: a pause mid-sentence does not
end the turn, a finished one ends at its first pause, an unfinished one at the eagerness's wait."""

from __future__ import annotations

import numpy as np
import pytest

from agent_tools.core.engines import Engines
from speech_backend import Audio, EngineSettings, SynthesisOptions, resample
from speech_backend.voice_activity.endpointing import (
    MAX_WAIT_MS,
    Endpointer,
    EndpointSettings,
    SpeechStarted,
    SpeechStopped,
)
from speech_backend.voice_activity.turn_model import TurnModel, model_file
from speech_backend.voice_activity.vad import VadSession

RATE = 16000
VOICE = "af_heart"


@pytest.fixture(scope="module")
def turn_model(engine_settings: EngineSettings) -> TurnModel:
    path = model_file(engine_settings.cache_dir)
    assert path is not None, "Smart Turn is fetched at set-up: run `make live-models`"
    return TurnModel(path)


@pytest.fixture(scope="module")
def vad() -> VadSession:
    return VadSession()


def spoken(engines: Engines, text: str, until: str | None = None, voice: str = VOICE) -> np.ndarray:
    """`text` in `voice` at 16 kHz; with `until`, cut after that word (the sentence's own prosody:
    it sounds like a speaker stopping mid-sentence, not like a sentence's end)."""
    chunks = list(engines.synthesizer.synthesize(text, voice, SynthesisOptions(deterministic=True)))
    rate = chunks[0].audio.sample_rate
    samples = np.concatenate([c.audio.samples for c in chunks])
    if until is not None:
        word = next(w for c in chunks for w in c.words if w.text.strip(",.?") == until)
        samples = samples[: int(word.end * rate)]
    return resample(Audio(samples, rate), RATE).samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.float32)


def stops(endpointer: Endpointer, stream: np.ndarray, frame: int = 512) -> list[tuple[SpeechStopped, float]]:
    """Each stop, with the stream time at which it was known."""
    found = []
    for start in range(0, len(stream), frame):
        for event in endpointer.push(stream[start : start + frame]):
            if isinstance(event, SpeechStopped):
                found.append((event, (start + frame) / RATE))
    return found


def test_the_model_hears_a_finished_question_as_finished_and_a_stopped_clause_as_not(
    catalog_engines, turn_model
):
    finished = np.concatenate(
        [spoken(catalog_engines, "What time does the store open tomorrow?"), silence(0.3)]
    )
    text = "So I was thinking that maybe we could meet on Tuesday."
    stopped = np.concatenate([spoken(catalog_engines, text, until="could"), silence(0.3)])
    assert turn_model.completion(finished) > 0.8
    assert turn_model.completion(stopped) < 0.2


def test_a_pause_mid_sentence_ends_a_silence_turn_but_not_a_semantic_one(catalog_engines, turn_model, vad):
    text = "So I was thinking that maybe we could meet on Tuesday."
    first, whole = spoken(catalog_engines, text, until="could"), spoken(catalog_engines, text)
    stream = np.concatenate([silence(0.5), first, silence(0.9), whole[len(first) :], silence(4.5)])
    by_silence = stops(Endpointer(vad, EndpointSettings(min_silence_ms=500)), stream)
    semantic = stops(Endpointer(vad, EndpointSettings(), turn_model.completion), stream)
    assert len(by_silence) == 2 and all(stop.reason == "silence" for stop, _ in by_silence)
    assert len(semantic) == 1
    (stop, _), second_half = semantic[0], (0.5 * RATE + len(first)) / RATE + 0.9
    assert stop.reason in ("semantic", "timeout") and stop.start < 0.6 and stop.end > second_half + 0.5


def test_a_finished_turn_ends_at_its_first_pause_and_an_unfinished_one_at_the_eagerness_wait(
    catalog_engines, turn_model, vad
):
    question = spoken(catalog_engines, "What time does the store open tomorrow?")
    stream = np.concatenate([silence(0.5), question, silence(3.0)])
    [(stop, known_at)] = stops(Endpointer(vad, EndpointSettings(), turn_model.completion), stream)
    speech_end = (0.5 * RATE + len(question)) / RATE
    assert stop.reason == "semantic" and known_at - speech_end < 0.6  # the pad (0.3 s) and a VAD lag

    clause = spoken(catalog_engines, "So I was thinking that maybe we could meet on Tuesday.", until="could")
    stream = np.concatenate([silence(0.5), clause, silence(6.0)])
    settings = EndpointSettings(eagerness="high")
    [(stop, known_at)] = stops(Endpointer(vad, settings, turn_model.completion), stream)
    waited = known_at - (0.5 * RATE + len(clause)) / RATE
    assert stop.reason == "timeout" and 1.0 < waited <= MAX_WAIT_MS["high"] / 1000 + 0.3


def test_a_commit_between_turns_takes_the_buffer_when_it_holds_100_ms(vad):
    endpointer = Endpointer(vad, EndpointSettings())
    endpointer.push(silence(0.064))
    assert endpointer.commit() == []  # 64 ms: too little (OpenAI's input_audio_buffer_commit_empty)
    endpointer.push(silence(0.5))
    started, stopped = endpointer.commit()
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert stopped.reason == "commit" and 0.25 <= stopped.audio.duration <= 0.6
    assert endpointer.commit() == []  # the buffer was taken

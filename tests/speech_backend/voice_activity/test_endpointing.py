"""Endpointing on a live stream with the Silero VAD model: where utterances start and stop."""

from __future__ import annotations

import numpy as np
import pytest

from speech_backend import Audio, resample
from speech_backend.voice_activity.endpointing import (
    CommitSegmenter,
    Endpointer,
    EndpointSettings,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
)
from speech_backend.voice_activity.vad import VadSession
from tests.conftest import tone

RATE = 16000


@pytest.fixture(scope="module")
def vad() -> VadSession:
    return VadSession()


def feed(endpointer: Endpointer, samples: np.ndarray, frame: int = 1600) -> list[object]:
    events: list[object] = []
    for start in range(0, len(samples), frame):
        events += endpointer.push(samples[start : start + frame])
    return events + endpointer.finish()


def test_silence_and_a_steady_tone_are_not_speech(vad):
    quiet = np.zeros(RATE * 3, np.float32)
    hum = tone(3.0, RATE, 220.0, 0.3).samples
    noise = np.random.default_rng(0).normal(0, 0.01, RATE * 3).astype(np.float32)
    assert feed(Endpointer(vad, EndpointSettings()), np.concatenate([quiet, hum, noise])) == []


def test_two_utterances_are_found_where_they_are(vad, speak):
    first = resample(speak("Good morning, how can I help you today?"), RATE).samples
    second = resample(speak("I would like to change my delivery address."), RATE).samples
    gap = np.zeros(int(RATE * 1.5), np.float32)
    stream = np.concatenate([gap, first, gap, second, gap])
    events = feed(Endpointer(vad, EndpointSettings()), stream, frame=333)  # frame sizes need not align
    events = [e for e in events if isinstance(e, SpeechStarted | SpeechStopped)]
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped, SpeechStarted, SpeechStopped]
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    truth = [
        (1.5, 1.5 + len(first) / RATE),
        (3.0 + len(first) / RATE, 3.0 + (len(first) + len(second)) / RATE),
    ]
    for stop, (start, end) in zip(stops, truth, strict=True):
        assert start - 0.45 <= stop.start <= start + 0.2 and end - 0.3 <= stop.end <= end + 0.45
        assert not stop.forced and stop.audio.sample_rate == RATE
        assert stop.audio.duration == pytest.approx(stop.end - stop.start, abs=0.002)


def test_an_utterance_past_the_cap_is_ended_where_it_is(vad, speak):
    long = resample(speak("This sentence keeps going on and on for quite a while without a pause."), RATE)
    settings = EndpointSettings(max_utterance_seconds=1.0)
    events = feed(Endpointer(vad, settings), np.concatenate([np.zeros(RATE, np.float32), long.samples]))
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    assert stops and stops[0].forced and stops[0].audio.duration <= 1.0 + 0.05
    assert len(stops) >= 2  # the rest goes on as a new utterance


def test_a_longer_silence_setting_keeps_a_pause_inside_one_utterance(vad, speak):
    words = resample(speak("Yes."), RATE).samples
    pause = np.zeros(int(RATE * 0.7), np.float32)
    stream = np.concatenate([pause, words, pause, words, pause, pause])
    short = feed(Endpointer(vad, EndpointSettings(min_silence_ms=400)), stream)
    patient = feed(Endpointer(vad, EndpointSettings(min_silence_ms=1000)), stream)
    assert sum(isinstance(e, SpeechStopped) for e in short) == 2
    assert sum(isinstance(e, SpeechStopped) for e in patient) == 1


def test_audio_handed_back_is_what_was_fed(vad, speak):
    voice = resample(speak("Check the audio."), RATE).samples
    stream = np.concatenate([np.zeros(RATE, np.float32), voice, np.zeros(RATE, np.float32)])
    (stop,) = [e for e in feed(Endpointer(vad, EndpointSettings()), stream) if isinstance(e, SpeechStopped)]
    offset = round(stop.start * RATE)
    assert np.array_equal(stop.audio.samples, stream[offset : offset + len(stop.audio.samples)])
    assert isinstance(stop.audio, Audio)


def test_commit_ends_the_open_utterance_and_clear_drops_it(vad, speak):
    voice = resample(speak("Book a table for two."), RATE).samples
    lead = np.zeros(RATE // 2, np.float32)
    endpointer = Endpointer(vad, EndpointSettings())
    assert endpointer.commit() == []  # nothing open
    half = len(voice) // 2
    started = endpointer.push(np.concatenate([lead, voice[:half]]))
    assert [type(e) for e in started] == [SpeechStarted] and endpointer.in_speech
    held = endpointer.held()
    assert len(held) >= half and np.array_equal(held[-100:], voice[half - 100 : half])
    (stop,) = endpointer.commit()
    assert isinstance(stop, SpeechStopped) and stop.forced and not endpointer.in_speech
    assert stop.end == pytest.approx((len(lead) + half) / RATE, abs=0.04)
    endpointer.push(voice)
    assert endpointer.in_speech and endpointer.clear() and not endpointer.in_speech
    assert len(endpointer.held()) < 512 and endpointer.finish() == []


def test_commit_segmenter_holds_audio_until_a_commit_of_at_least_100_ms():
    segmenter = CommitSegmenter(max_utterance_seconds=2.0)
    assert segmenter.push(np.zeros(800, np.float32)) == [SpeechStarted(1, 0.0)]
    assert segmenter.commit() == []  # 50 ms: kept, not committed
    segmenter.push(np.ones(1600, np.float32) * 0.1)
    (stop,) = segmenter.commit()
    assert isinstance(stop, SpeechStopped) and (stop.utterance, stop.start, stop.end) == (1, 0.0, 0.15)
    assert len(stop.audio.samples) == 2400 and not segmenter.in_speech
    events = segmenter.push(np.zeros(RATE * 5, np.float32))  # past the cap: ended where it is, twice
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    assert [(s.utterance, s.start, s.end) for s in stops] == [(2, 0.15, 2.15), (3, 2.15, 4.15)]
    assert segmenter.in_speech and segmenter.clear() and segmenter.finish() == []
    assert segmenter.seconds == pytest.approx(5.15)


def test_a_pause_says_ahead_exactly_which_audio_its_stop_will_carry(vad, speak):
    first = resample(speak("Good morning, how can I help you today?"), RATE).samples
    second = resample(speak("I would like to change my delivery address."), RATE).samples
    gap = np.zeros(int(RATE * 1.5), np.float32)
    events = feed(Endpointer(vad, EndpointSettings()), np.concatenate([gap, first, gap, second, gap]))
    stops = [i for i, e in enumerate(events) if isinstance(e, SpeechStopped)]
    assert len(stops) == 2
    for i in stops:  # (a pause inside an utterance, at its comma, may come and go before)
        paused, stop = events[i - 1], events[i]
        assert isinstance(paused, SpeechPaused) and isinstance(stop, SpeechStopped)
        assert paused.utterance == stop.utterance
        assert np.array_equal(paused.audio.samples, stop.audio.samples)


def test_speech_back_within_the_pause_resumes_the_same_utterance(vad, speak):
    first = resample(speak("Please book a table"), RATE).samples
    second = resample(speak("for four people tonight."), RATE).samples
    gap = np.zeros(int(RATE * 1.5), np.float32)
    first, second = first[: voiced(first)[-1]], second[voiced(second)[0] :]  # without the voice's quiet
    hesitation = np.zeros(int(RATE * 0.45), np.float32)  # longer than the pad, shorter than a stop
    events = feed(Endpointer(vad, EndpointSettings()), np.concatenate([gap, first, hesitation, second, gap]))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechStopped]
    hesitated, stop = events[1], events[-1]
    assert isinstance(hesitated, SpeechPaused) and isinstance(stop, SpeechStopped)
    assert hesitated.audio.duration < len(first) / RATE + 0.6 < stop.audio.duration


def voiced(samples: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.abs(samples) > 0.01)


def test_no_pause_is_announced_when_the_pad_is_as_long_as_the_silence_that_stops(vad, speak):
    audio = resample(speak("Good morning, how can I help you today?"), RATE).samples
    gap = np.zeros(int(RATE * 1.5), np.float32)
    settings = EndpointSettings(min_silence_ms=300, pad_ms=400)
    events = feed(Endpointer(vad, settings), np.concatenate([gap, audio, gap]))
    assert {type(e) for e in events} == {SpeechStarted, SpeechStopped}

"""Word timings of Piper's speech (from its phoneme alignment), checked against Whisper's word times."""

from __future__ import annotations

import difflib
import re
import statistics

import numpy as np
import pytest

from speech_backend import Audio, RecognitionOptions, SynthesisOptions, resample
from tests.conftest import DEFAULT_VOICE

DETERMINISTIC = SynthesisOptions(deterministic=True)
TEXT = (
    "The weather today is sunny with a light breeze. Please book a table for four people at seven. "
    "Turn the volume down a little bit. My flight leaves from gate twelve at half past nine. "
    "Could you remind me to call my sister tomorrow afternoon?"
)


def normal(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


@pytest.mark.parametrize(
    "text",
    [
        TEXT,
        "Call me at 555-1234, or e-mail bob@example.com!",
        "It's 42 degrees; the U.S.A. trip costs $3.50.",
        "I don't know — maybe?",
    ],
)
def test_every_written_word_is_timed_in_order_inside_its_sentence(synthesizer, text):
    chunks = list(synthesizer.synthesize(text, DEFAULT_VOICE, DETERMINISTIC))
    for chunk in chunks:
        words = chunk.words
        # every written word, in order (punctuation standing alone joins the word before it)
        assert " ".join(w.text for w in words).split() == chunk.text.split()
        assert all(chunk.start <= w.start < w.end <= chunk.end + 1e-6 for w in words)
        assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))


def test_word_starts_are_within_80_ms_of_whispers_on_a_round_trip(synthesizer, recognizer):
    chunks = list(synthesizer.synthesize(TEXT, DEFAULT_VOICE, DETERMINISTIC))
    ours = [w for c in chunks for w in c.words]
    audio = Audio(np.concatenate([c.audio.samples for c in chunks]), chunks[0].audio.sample_rate)
    heard = recognizer.transcribe(resample(audio, 16000), RecognitionOptions(word_timestamps=True)).words
    matcher = difflib.SequenceMatcher(
        a=[normal(w.text) for w in ours], b=[normal(w.text) for w in heard], autojunk=False
    )
    offsets = [
        ours[i + k].start - heard[j + k].start
        for i, j, size in matcher.get_matching_blocks()
        for k in range(size)
    ]
    assert len(offsets) >= 0.8 * len(ours)  # the words line up
    assert statistics.median(abs(x) for x in offsets) <= 0.08


def test_words_follow_the_speed(synthesizer):
    slow = next(iter(synthesizer.synthesize("Turn the volume down.", DEFAULT_VOICE, DETERMINISTIC)))
    fast_options = SynthesisOptions(deterministic=True, speed=2.0)
    fast = next(iter(synthesizer.synthesize("Turn the volume down.", DEFAULT_VOICE, fast_options)))
    assert [w.text for w in fast.words] == [w.text for w in slow.words]
    assert fast.words[-1].end <= fast.end + 1e-6 and fast.words[-1].end < 0.7 * slow.words[-1].end

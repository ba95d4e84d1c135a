"""The turn judge weighs the sound and the words: the rule as a table (contract), then the real Smart
Turn and Moonshine on a turn whose sound alone is misjudged."""

from __future__ import annotations

import numpy as np
import pytest

from speech_backend.moonshine.recognizer import MoonshineRecognizer
from speech_backend.results import HeardEnd, Samples
from speech_backend.voice_activity.endpointing import COMPLETE, Endpointer, EndpointSettings
from speech_backend.voice_activity.turn_judge import EVEN, UNFINISHED, TurnJudge
from speech_backend.voice_activity.turn_model import TurnModel
from speech_backend.voice_activity.vad import VadSession
from tests.speech_backend.voice_activity.test_turn_model import silence, spoken, stops


def judged(sound: float, words: str | None, sure: float = 1.0) -> float:
    hear = None if words is None else (lambda _: HeardEnd(words, sure))
    return TurnJudge(lambda _: sound, hear)(np.zeros(1600, np.float32))


@pytest.mark.parametrize(
    ("sound", "words", "expected"),
    [
        (0.9, None, 0.9),  # no recognizer for the language: the sound alone
        (0.9, "", 0.9),  # no words heard: the sound alone
        (0.95, "I'd like to book a table for the.", UNFINISHED),  # grammar outweighs the sound
        (0.02, "I'd like to book a table for the.", 0.02),
        (0.95, "I'd like to book a table for.", EVEN),  # open: at most an even doubt
        (0.1, "I'd like to book a table for.", 0.1),
        (0.2, "I'd like a table for four.", COMPLETE),  # closed, the sound not sure it is not
        (0.8, "I'd like a table for four.", 0.8),
        (0.05, "I'd like a table for four.", EVEN),  # closed, the sound sure it is not: an even doubt
    ],
)
def test_the_sound_and_the_words_are_weighed_by_the_rule(sound, words, expected):
    assert judged(sound, words) == pytest.approx(expected)


def test_a_last_word_heard_unsurely_leaves_the_turn_open():
    assert judged(0.9, "Please send the invoice to me.", sure=0.4) == pytest.approx(EVEN)


def test_a_pause_after_a_preposition_that_sounds_final_does_not_end_the_turn(
    catalog_engines, engine_settings
):
    """am_onyx stops after "for" on a falling voice: Smart Turn alone calls the turn finished and cuts
    it at the pause; heard as words, "... a table for" is not a sentence's end."""
    model, vad = catalog_engines.turn_model, VadSession()
    assert isinstance(model, TurnModel)
    moonshine = MoonshineRecognizer(engine_settings.cache_dir)
    text = "I'd like to book a table for four people on Friday evening."
    first = spoken(catalog_engines, text, until="for", voice="am_onyx")
    whole = spoken(catalog_engines, text, voice="am_onyx")
    stream = np.concatenate([silence(0.5), first, silence(0.9), whole[len(first) :], silence(4.5)])

    def sound(samples: Samples) -> float:
        return model.completion(samples)

    by_sound = stops(Endpointer(vad, EndpointSettings(eagerness="high"), sound), stream)
    judge = TurnJudge(sound, moonshine.last_words)
    by_both = stops(Endpointer(vad, EndpointSettings(eagerness="high"), judge), stream)
    assert len(by_sound) == 2 and by_sound[0][0].reason == "semantic"
    assert [stop.reason for stop, _ in by_both] == ["semantic"]
    speech_end = np.nonzero(np.abs(stream) > 0.01)[0][-1] / 16000
    assert by_both[0][1] - speech_end < 0.6  # the closed sentence ends at its first pause

"""How the words of a turn so far end: grammar's unfinished words, the recognizer's open endings."""

from __future__ import annotations

import pytest

from speech_backend.results import HeardEnd
from speech_backend.voice_activity.turn_words import SURE_WORD, words_end


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for the.",  # an article
        "Can you tell me thee?",  # "the" said /ði/ before a pause
        "My account number is four seven one nine and.",  # a conjunction
        "I want to change my flight because",
        "Send it to my",  # a possessive
        "I think it's.",  # a contracted auxiliary
        "So what I'd like is, um.",  # a filled pause
        "Well I\u2019m",  # typographic apostrophe
    ],
)
def test_words_that_cannot_end_a_sentence_leave_the_turn_unfinished(text):
    assert words_end(HeardEnd(text)) == "unfinished"


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for.",  # a preposition ("what is it for?" ends there too)
        "So I was thinking that maybe we could.",  # a modal ("yes, I could" ends there too)
        "I want to change my flight to Boston,",  # the recognizer left it open
        "The package should arrive on Thursday...",
        "The package should arrive on Thursday",  # no closing mark
    ],
)
def test_words_that_rarely_end_a_sentence_leave_it_open(text):
    assert words_end(HeardEnd(text)) == "open"


@pytest.mark.parametrize(
    "text",
    [
        "So I was thinking that maybe we could meet on Tuesday.",
        "Can you tell me the opening hours of the pharmacy on Main Street?",
        "I think so.",  # "so" as an adverb
        "It's fine though!",
        'He said "stop."',
    ],
)
def test_a_sentence_the_recognizer_closed_after_any_other_word_is_closed(text):
    assert words_end(HeardEnd(text)) == "closed"


@pytest.mark.parametrize("text", ["", "   ", "...", "?"])
def test_no_words_leave_the_decision_to_the_sound(text):
    assert words_end(HeardEnd(text, 0.1)) is None


def test_a_closed_sentence_whose_last_word_was_heard_unsurely_is_open():
    """A word cut short by the pause is often heard as another ("to" as "to me")."""
    assert words_end(HeardEnd("Please send the invoice to me.", SURE_WORD - 0.01)) == "open"
    assert words_end(HeardEnd("Please send the invoice to me.", SURE_WORD)) == "closed"
    assert words_end(HeardEnd("Send it to my", 0.1)) == "unfinished"  # grammar does not need the word

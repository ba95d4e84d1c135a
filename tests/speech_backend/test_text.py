"""Text preparation: plain text only, sentences bounded."""

from __future__ import annotations

import pytest

from speech_backend import InvalidArgument
from speech_backend.text import SentenceAssembler, normalize_text, split_sentences


def test_sentences_split_at_terminal_punctuation_and_newlines():
    text = normalize_text("Hello there. How are you? I'm fine!\nNew line here")
    assert split_sentences(text) == ["Hello there.", "How are you?", "I'm fine!", "New line here"]


def test_decimal_numbers_and_times_do_not_split_sentences():
    assert split_sentences("It costs 3.50 dollars at 10:30 today.") == [
        "It costs 3.50 dollars at 10:30 today."
    ]


def test_titles_and_initials_do_not_end_a_sentence():
    text = "Dr. Smith's U.S.A. trip starts today. I met J. R. Doe. Buy eggs, milk, etc. Then rest."
    assert split_sentences(text) == [
        "Dr. Smith's U.S.A. trip starts today.",
        "I met J. R. Doe.",
        "Buy eggs, milk, etc.",
        "Then rest.",
    ]
    assembler = SentenceAssembler()
    assert assembler.push("Mrs. Jones called Dr. ") == []  # waits: "Dr." is a title
    assert assembler.push("Lee. Then ") == ["Mrs. Jones called Dr. Lee."]


def test_phoneme_brackets_are_dropped_so_markup_is_never_interpreted():
    assert "[[" not in normalize_text("say [[ h ə l oʊ ]] now") and "]]" not in normalize_text("a ]] b")


def test_control_and_bidi_characters_are_removed():
    assert normalize_text("a\x00b\u202ec\x07d") == "a b c d"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...!?", "\x00\x01"])
def test_text_with_nothing_to_speak_is_an_invalid_argument(text):
    with pytest.raises(InvalidArgument):
        normalize_text(text)


def test_a_long_run_on_sentence_is_split_within_the_bound_without_losing_words():
    text = ", ".join(f"item number {i}" for i in range(200))
    pieces = split_sentences(text, max_chars=100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_a_single_enormous_word_is_cut_to_the_bound():
    pieces = split_sentences("a" * 1000, max_chars=300)
    assert [len(p) for p in pieces] == [300, 300, 300, 100]


def test_text_in_pieces_is_handed_over_a_sentence_at_a_time():
    assembler = SentenceAssembler()
    pieces = ["It costs 3", ".50 today", ". Really", "? Yes", " it does", "!\nNext line", " without an end"]
    out = [assembler.push(p) for p in pieces]
    assert out == [[], [], ["It costs 3.50 today."], ["Really?"], [], ["Yes it does!"], []]
    assert assembler.pending == "Next line without an end"
    assert assembler.flush() == "Next line without an end" and assembler.flush() == ""

"""Text preparation: plain text only, sentences bounded."""

from __future__ import annotations

import pytest

from speech_backend import InvalidArgument
from speech_backend.text import SentenceAssembler, continuing, lead_in, normalize_text, split_sentences


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


def test_a_lead_in_is_the_first_clause_of_the_first_sentence():
    sentences = split_sentences("Good evening, and welcome to the news. Tonight we start late.")
    assert lead_in(sentences, 5) == ["Good evening,", "and welcome to the news.", "Tonight we start late."]


def test_without_a_clause_mark_a_lead_in_is_a_few_words_never_ending_on_one_that_leans_on_the_next():
    assert lead_in(["Your table for four is booked for seven thirty tonight."], 5) == [
        "Your table for four",
        "is booked for seven thirty tonight.",
    ]
    assert lead_in(["We will meet them at the station after the late train tonight."], 6) == [
        "We will meet them",
        "at the station after the late train tonight.",
    ]
    # a number before its noun leans on it; one that heads its phrase ("for four") does not
    assert lead_in(["The orchestra will play two symphonies and a short piece tonight."], 5) == [
        "The orchestra will play",
        "two symphonies and a short piece tonight.",
    ]
    assert lead_in(["Tomorrow we need 20 chairs in the hall before the guests arrive."], 4) == [
        "Tomorrow we need",
        "20 chairs in the hall before the guests arrive.",
    ]


def test_no_lead_in_where_every_cut_would_end_on_a_leaning_word():
    text = ["It is for the most part a question of the money we have."]
    assert lead_in(text, 4) == text


def test_short_sentences_are_left_whole_and_zero_words_turns_lead_ins_off():
    assert lead_in(["Yes, of course."], 5) == ["Yes, of course."]  # the rest would be too short
    assert lead_in(["Your table is booked for tonight."], 5) == ["Your table is booked for tonight."]
    text = ["Your table for four is booked for seven thirty tonight."]
    assert lead_in(text, 0) == text and lead_in([], 5) == []


def test_a_lead_in_cut_between_words_is_spoken_as_a_phrase_that_goes_on():
    assert continuing("Your table for four") == "Your table for four,"
    assert continuing("Good evening,") == "Good evening,"


def test_japanese_and_chinese_sentences_end_at_their_marks_without_a_space_after_them():
    text = normalize_text("明日の会議は三時に始まります。駅の前で待ちます！我在车站等朋友。你呢？")
    assert split_sentences(text) == [
        "明日の会議は三時に始まります。",
        "駅の前で待ちます！",
        "我在车站等朋友。",
        "你呢？",
    ]
    assembler = SentenceAssembler()
    assert assembler.push("你好。我们") == ["你好。"]
    assert assembler.flush() == "我们"


def test_a_long_chinese_sentence_is_split_at_its_commas_within_the_bound():
    sentence = "我" * 50 + "，" + "你" * 50 + "。"
    assert split_sentences(sentence, 60) == ["我" * 50 + "，", "你" * 50 + "。"]

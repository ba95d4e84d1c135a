"""How sure a decoding was of its last word: its least sure step, counting every token there that
spells the same word."""

from __future__ import annotations

import pytest

from speech_backend.moonshine.word_confidence import Step, last_word_probability

S = "\u2581".encode()


def step(chosen: bytes, p: float, *others: tuple[bytes, float]) -> Step:
    return Step(chosen, ((chosen, p), *others))


def test_the_last_word_is_as_sure_as_its_least_sure_token():
    steps = [step(S + b"on", 0.9), step(S + b"Tues", 0.8), step(b"day", 0.95), step(b".", 0.5)]
    assert last_word_probability(steps) == pytest.approx(0.8)


def test_another_spelling_of_the_same_word_counts_for_it():
    steps = [
        step(S + b"open", 0.99),
        step(S + b"to", 0.6, (S + b"tomorrow", 0.3), (S + b"today", 0.05)),  # "tomorrow": the same word
        step(b"-", 0.7, (b"morrow", 0.25), (b".", 0.04)),  # "morrow" spells it on; "." does not
        step(b"morrow", 0.99),
        step(b"?", 0.8),
    ]
    assert last_word_probability(steps) == pytest.approx(0.9)


def test_a_word_misheard_at_a_cut_stays_unsure():
    steps = [
        step(S + b"invoice", 0.95),
        step(S + b"to", 0.93),
        step(S + b"me", 0.46, (S + b"my", 0.3)),
        step(b".", 0.9),
    ]
    assert last_word_probability(steps) == pytest.approx(0.46)


def test_no_word_is_sure():
    assert last_word_probability([]) == 1.0
    assert last_word_probability([step(b".", 0.2)]) == 1.0

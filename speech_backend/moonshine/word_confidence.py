"""How sure a greedy decoding was of its last word, whatever way the word was spelt in tokens.

Each decoding step keeps its few likeliest tokens with their probabilities. A word's certainty at a
step is the probability of every token there that spells the same word so far: the chosen one and
the alternatives whose letters continue the word's letters ("to-morrow" and "tomorrow" are one word;
the model splits its probability between " to" and " tomorrow" where the spellings part, though the
word is sure). The word's certainty is its least sure step.
"""

from __future__ import annotations

from dataclasses import dataclass

_SPACE = "\u2581".encode()
ALTERNATIVES = 8  # tokens kept per step


@dataclass(frozen=True)
class Step:
    """One decoding step: the token chosen, and the likeliest tokens (the chosen among them) with
    their probabilities."""

    chosen: bytes
    likeliest: tuple[tuple[bytes, float], ...]


def last_word_probability(steps: list[Step]) -> float:
    """The certainty of the last word of `steps` (found back from the end past closing marks, then
    back to the token that opens it with a space marker); 1.0 when there is no word."""
    end = len(steps)
    while end and not _letters(steps[end - 1].chosen):
        end -= 1
    if not end:
        return 1.0
    start = end - 1
    while start > 0 and not steps[start].chosen.startswith(_SPACE):
        start -= 1
    word = "".join(_letters(step.chosen) for step in steps[start:end])
    sure, spelt = 1.0, ""
    for at, step in enumerate(steps[start:end]):
        same = sum(
            p for piece, p in step.likeliest if _spells(piece, step.chosen, spelt, word, opens=at == 0)
        )
        sure, spelt = min(sure, same), spelt + _letters(step.chosen)
    return sure


def _spells(piece: bytes, chosen: bytes, spelt: str, word: str, *, opens: bool) -> bool:
    """Whether `piece`, in place of `chosen` after the word's letters `spelt`, spells the same word."""
    if piece == chosen:
        return True
    letters = _letters(piece)
    if not letters or piece.startswith(_SPACE) != opens:
        return False
    return word.startswith(spelt + letters)


def _letters(piece: bytes) -> str:
    return "".join(c for c in piece.decode("utf-8", "replace").lower() if c.isalnum())

"""Whether a paused turn is finished, from its sound and its words.

The sound is Smart Turn's probability (`turn_model`): prosody and the sound of the last words. On
its own it calls many mid-sentence pauses finished (a speaker who stops after "for" or "the" with a
level voice) and many finished sentences unfinished. The words of the turn so far, heard by a fast
recognizer at the pause, settle what grammar can (`turn_words`):

- unfinished words ("a table for the", "and"): the turn goes on whatever its sound;
- open words (a preposition, a modal, a trailing comma, a last word heard unsurely): at most an
  even doubt, so a pause there waits at least half the eagerness's longest wait;
- closed words ("... on Tuesday."): finished, unless the sound is sure it is not (below
  `SURE_UNFINISHED`); then an even doubt.

No words heard (or no recognizer for the stream's language): the sound alone decides.
Measured in `benchmarks/turns.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from speech_backend.results import HeardEnd, Samples
from speech_backend.voice_activity.endpointing import COMPLETE
from speech_backend.voice_activity.turn_words import words_end

SURE_UNFINISHED = 0.1  # a sound this unlikely to be finished outweighs closed words
UNFINISHED = 0.05  # unfinished words: close to the eagerness's longest wait
EVEN = 0.25  # half of COMPLETE: half the longest wait (see `Endpointer._finished`)


class TurnJudge:
    """The probability that a paused turn is finished (0-1): `sound` scores the audio, `words` (if
    any) hears its words; both take the turn so far at 16 kHz. Called from one stream at a time."""

    def __init__(
        self, sound: Callable[[Samples], float], words: Callable[[Samples], HeardEnd] | None
    ) -> None:
        self._sound = sound
        self._words = words

    def __call__(self, samples: Samples) -> float:
        sound = self._sound(samples)
        ending = words_end(self._words(samples)) if self._words is not None else None
        if ending is None:
            return sound
        if ending == "unfinished":
            return min(sound, UNFINISHED)
        if ending == "open":
            return min(sound, EVEN)
        if sound < SURE_UNFINISHED:
            return EVEN
        return max(sound, COMPLETE)

"""Written words placed on the audio of a sentence, from the spans of its spoken words (an engine's
phoneme alignment or predicted durations), shared by every engine that can say when it spoke.

espeak speaks some written words as several (numbers, symbols, initials) and punctuation as pauses,
so each written word is phonemized alone to learn how many spoken words it makes; when the counts
disagree with the sentence's (context changed a reading), the spoken words are shared out in
proportion. A word's span ends where its last phoneme ends, before any pause after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from speech_backend.results import WordTiming

# Phonemes that are not part of a word: sentence markers, pauses, and punctuation espeak keeps.
NOT_WORD = frozenset('^$_ ,.;:!?¡¿—…"«»“”()')


def spoken_spans(phonemes: Iterable[tuple[str, int]]) -> list[tuple[int, int]]:
    """Sample spans of the spoken words in `phonemes` (each a phoneme and its length in samples, in
    order): words are separated by spaces; punctuation and pauses belong to none."""
    spans: list[tuple[int, int]] = []
    cursor, start, end = 0, None, 0
    for phoneme, samples in phonemes:
        if phoneme == " " or phoneme in NOT_WORD:
            if phoneme == " " and start is not None:
                spans.append((start, end))
                start = None
        else:
            start = cursor if start is None else start
            end = cursor + samples
        cursor += samples
    if start is not None:
        spans.append((start, end))
    return spans


def spoken_word_count(phonemes: str) -> int:
    """How many spoken words a phoneme string holds (0 for punctuation alone)."""
    return sum(1 for group in phonemes.split(" ") if any(p not in NOT_WORD for p in group))


def place_words(
    tokens: Sequence[str],
    spoken: list[tuple[int, int]],
    counts: Sequence[int],
    rate: int,
    offset: float,
    joiner: str = " ",
) -> tuple[WordTiming, ...]:
    """Each written word of a sentence (`tokens`, in order) with where it is spoken, given the sample
    spans of its spoken words and how many spoken words each written one makes (`counts`); times
    shifted by `offset` seconds. A token that makes none (punctuation, or a Japanese ending the
    reading joins to the word before) joins the word before it, after `joiner`."""
    if not spoken:
        return ()
    written: list[tuple[str, int]] = []
    for token, count in zip(tokens, counts, strict=True):
        if count == 0 and written:
            written[-1] = (f"{written[-1][0]}{joiner}{token}", written[-1][1])
        else:
            written.append((token, count))
    total = sum(count for _, count in written)
    if total == 0:
        return ()
    scale = len(spoken) / total
    words, done = [], 0
    for text, count in written:
        first = min(round(done * scale), len(spoken) - 1)
        done += count
        last = max(first, min(round(done * scale), len(spoken)) - 1)
        start, end = spoken[first][0], spoken[last][1]
        words.append(WordTiming(text, offset + start / rate, offset + end / rate))
    return tuple(words)

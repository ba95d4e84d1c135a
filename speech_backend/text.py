"""Text preparation for synthesis: normalisation that never interprets markup, and sentence splitting."""

from __future__ import annotations

import re
import unicodedata

from speech_backend.errors import InvalidArgument

# Piper reads `[[ ... ]]` as raw phonemes; callers' text is plain text, so the brackets are dropped.
_PHONEME_BRACKETS = re.compile(r"\[\[|\]\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACE = re.compile(r"[ \t\r\f\v]+")
# Latin script's end marks need a space after them ("3.5"); Japanese and Chinese ones do not.
_SENTENCE_END = re.compile(r"(?<=[.!?;:…])[\"'”’)\]]*\s+|(?<=[。！？；])[」』）”’]*\s*|\n+")
_SOFT_BREAK = re.compile(r"(?<=[,;:—–-])\s+|(?<=[、，：])")
# A period after these is an abbreviation or an initial, not a sentence's end ("Dr. Smith", "U.S.A.
# trip", "J. Doe"); "etc." is left out, as it often ends a sentence.
_NOT_AN_END = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|Ave|Rd|Gen|Col|Lt|Sgt|Capt|Rev|Hon|vs|No|Fig|approx|e\.g|i\.e)"
    r"|(?<![A-Za-z])[A-Z])\.[\"'”’)\]]*$"
)


def _sentence_ends(text: str) -> list[re.Match[str]]:
    """Where sentences end in `text` (the whitespace after each end mark, or a line break)."""
    return [
        m
        for m in _SENTENCE_END.finditer(text)
        if not _NOT_AN_END.search(text, max(0, m.start() - 16), m.start())
    ]


def _cut(text: str) -> list[str]:
    pieces, start = [], 0
    for end in _sentence_ends(text):
        pieces.append(text[start : end.start()])
        start = end.end()
    return [*pieces, text[start:]]


def normalize_text(text: str) -> str:
    """NFC-normalise, drop control and bidi characters and phoneme brackets, fold spaces.

    Raises:
        InvalidArgument: nothing speakable is left.
    """
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    text = _PHONEME_BRACKETS.sub(" ", text)
    text = "\n".join(_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    text = re.sub(r"\n{2,}", "\n", text).strip()
    if not any(ch.isalnum() for ch in text):
        raise InvalidArgument("text has nothing to speak: send at least one letter or digit")
    return text


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Split normalised text into sentences, none longer than `max_chars` (split at commas, then spaces)."""
    pieces: list[str] = []
    for sentence in _cut(text):
        sentence = sentence.strip()
        if sentence:
            pieces.extend(_bound(sentence, max_chars))
    return [p for p in pieces if any(ch.isalnum() for ch in p)]


class SentenceAssembler:
    """Text arriving in pieces (an LLM's tokens) cut into sentences as each one completes.

    A sentence is complete once its end mark is followed by whitespace, so "3." waits to see
    whether "5" follows; `flush` hands over whatever is left.
    """

    def __init__(self) -> None:
        self._buffer = ""

    @property
    def pending(self) -> str:
        """Text received but not yet handed over."""
        return self._buffer

    def push(self, text: str) -> list[str]:
        """Append `text`; returns the sentences it completed, in order."""
        self._buffer += text
        ends = _sentence_ends(self._buffer)
        if not ends:
            return []
        cut = ends[-1].end()
        done, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return [s.strip() for s in _cut(done) if s.strip()]

    def flush(self) -> str:
        """Everything not yet handed over (maybe empty), and an empty buffer."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest


def _bound(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    current = ""
    for part in _SOFT_BREAK.split(sentence):
        for word in _words_within(part, max_chars):
            joined = f"{current} {word}".strip()
            if len(joined) <= max_chars:
                current = joined
            else:
                out.append(current)
                current = word
    if current:
        out.append(current)
    return [o for o in out if o]


def _words_within(part: str, max_chars: int) -> list[str]:
    if len(part) <= max_chars:
        return [part]
    words: list[str] = []
    for word in part.split(" "):
        words.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return words


# Words that lean on the word after them: a lead-in never ends on one ("the", "of", "to" ...), so
# its cut falls where a speaker could pause.
_LEANING = frozenset(
    (  # noqa: SIM905 - a word list reads best as text
        "a an the of to in on at by for from with into onto over under about as and or but nor so "
        "than that which who whose whom if when while because although though whether unless until "
        "is are was were be been am has have had do does did will would can could shall should may "
        "might must not no "
        "my your his her its our their this these those very more most"
    ).split()
)
# Numbers and quantifiers lean on a noun after them ("two symphonies": said on its own, "two," sounds
# like "too."), not where they are the phrase's head ("a table for four is booked").
_COUNTING = frozenset(
    (  # noqa: SIM905 - a word list reads best as text
        "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
        "sixty seventy eighty ninety hundred thousand million billion some any many few several "
        "each every both"
    ).split()
)
_CLAUSE_END = re.compile(r"[,;:—–、，：]$")
_CJK_CLAUSE = re.compile(r"[、，：]")


def lead_in(sentences: list[str], words: int) -> list[str]:
    """`sentences` with the first one cut after its first clause or about `words` words, so the
    listener hears the opening while the rest is made. Cuts at the first clause mark (comma,
    semicolon, colon, dash) after at least 2 words and within `2 * words`; else, in a sentence of
    more than `words + 3` words, after at most `words` words, moved back past words that lean on
    the next. The rest keeps at least 3 words (a shorter one is not worth a join)."""
    if not sentences or words <= 0:
        return sentences
    tokens = sentences[0].split(" ")
    if len(tokens) == 1:  # Japanese or Chinese: at the first clause mark, with 4 characters each side
        mark = _CJK_CLAUSE.search(sentences[0], 4)
        if mark is None or len(sentences[0]) - mark.end() < 4:
            return sentences
        return [sentences[0][: mark.end()], sentences[0][mark.end() :], *sentences[1:]]
    clause = range(1, min(2 * words, len(tokens) - 3))
    cut = next((i + 1 for i in clause if _CLAUSE_END.search(tokens[i])), 0)
    if not cut:
        if len(tokens) <= words + 3:
            return sentences
        cut = words
        while cut > 3 and _leans(tokens, cut - 1):
            cut -= 1
        if _leans(tokens, cut - 1):
            return sentences
    return [" ".join(tokens[:cut]), " ".join(tokens[cut:]), *sentences[1:]]


def _leans(tokens: list[str], at: int) -> bool:
    """Whether the word at `at` leans on the word after it (a cut after it would not be a pause)."""
    word = _bare(tokens[at])
    if word in _LEANING:
        return True
    counting = word in _COUNTING or word.replace(",", "").isdigit()
    return counting and at + 1 < len(tokens) and _bare(tokens[at + 1]) not in _LEANING


def _bare(token: str) -> str:
    return token.lower().strip("\"'“”‘’(")


def continuing(phrase: str) -> str:
    """`phrase` as the opening of a longer sentence: with a comma when it has no clause mark, so the
    voice ends it on a phrase break rather than the fall of a sentence's end."""
    return phrase if _CLAUSE_END.search(phrase) else f"{phrase},"

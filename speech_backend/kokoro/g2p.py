"""Text to Kokoro's phonemes, per language, and the written words a sentence is heard as.

Chosen per language by the round-trip error through Whisper (`benchmarks/round_trip.py`):
- espeak-ng (the one Piper ships) for English, Spanish, French, Hindi, Italian and Portuguese;
- misaki's Japanese G2P (Hepburn romaji by MeCab on UniDic-lite, mapped to IPA) for Japanese, where
  espeak-ng's reads kanji as "Chinese letter" (mean CER 5.4 against misaki's 0.02);
- misaki's Mandarin G2P (jieba words, pypinyin tones) for Chinese (mean CER 0.71 against 0.12).

The Japanese and Chinese G2Ps are the `cjk` extra; without it those voices are not served. Each
loads on its language's first sentence. `[[ phonemes ]]` blocks (the lexicon's IPA) pass as written.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

from speech_backend.piper.espeak import phonemize
from speech_backend.word_spans import spoken_word_count

logger = logging.getLogger(__name__)

_BLOCK = re.compile(r"(\[\[.*?\]\])")
_HAN = re.compile(r"([\u4e00-\u9fff]+)")
# misaki's G2Ps, and what each needs at run time (its dictionaries ship inside these packages)
NEEDS = {
    "ja": ("misaki", "fugashi", "unidic_lite", "jaconv", "mojimoji"),
    "zh": ("misaki", "jieba", "pypinyin", "cn2an", "ordered_set"),
}


def available(language: str) -> bool:
    """Whether `language` (a base tag: `ja`, `en`) can be phonemized here."""
    return all(find_spec(module) is not None for module in NEEDS.get(language, ()))


@dataclass
class G2P:
    """One language's phonemizer: `phonemes` of a text, the written `words` of a sentence, and the
    text between two written words when they are joined back (a space, or nothing in Japanese and
    Chinese)."""

    convert: Callable[[str], str]
    split: Callable[[str], list[str]] = str.split
    joiner: str = " "
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def phonemes(self, text: str) -> str:
        parts = []
        for piece in _BLOCK.split(text):
            if piece.startswith("[["):
                parts.append(piece[2:-2].strip())
            elif piece.strip():
                with self._lock:  # misaki's taggers are not thread-safe
                    parts.append(self.convert(piece))
        return " ".join(p for p in parts if p)

    def words(self, sentence: str) -> list[str]:
        with self._lock:
            return [w for w in self.split(sentence) if w.strip()]

    def counts(self, tokens: list[str], prepare: Callable[[str], str]) -> list[int]:
        """How many spoken words each written token makes (after `prepare`, the lexicon). Apart
        words are phonemized alone; joined ones (Japanese, Chinese) in context, each token counting
        what it adds to the words before it, as a reading may join a token to the word before."""
        if self.joiner:
            return [spoken_word_count(self.phonemes(prepare(token))) for token in tokens]
        counts, before = [], 0
        for end in range(1, len(tokens) + 1):
            now = spoken_word_count(self.phonemes(prepare(self.joiner.join(tokens[:end]))))
            counts.append(max(0, now - before))
            before = max(before, now)
        return counts


def build(language: str, espeak_voice: str) -> G2P:
    """The G2P of a base language tag, espeak-ng's for all but Japanese and Chinese."""
    if language == "ja":
        return _japanese()
    if language == "zh":
        return _mandarin()
    return G2P(lambda text: phonemize(espeak_voice, text))


def _japanese() -> G2P:
    with warnings.catch_warnings():  # it reads its word list with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        from misaki.cutlet import Cutlet

    cutlet: Any = Cutlet()
    logger.info("loaded the Japanese G2P (misaki, MeCab on UniDic-lite)")
    return G2P(
        lambda text: str(cutlet(text)[0]),
        lambda sentence: [str(w.surface) for w in cutlet.tagger(cutlet._normalize_text(sentence))],
        joiner="",
    )


def _mandarin() -> G2P:
    import jieba
    from misaki import zh

    jieba.setLogLevel(logging.WARNING)  # it announces its dictionary on stderr
    jieba.initialize()
    g2p: Any = zh.ZHG2P()  # the pinyin-to-IPA reading Kokoro v1.0 was trained on

    def words(sentence: str) -> list[str]:
        out: list[str] = []
        for piece in _HAN.split(sentence):
            out.extend(jieba.lcut(piece) if _HAN.fullmatch(piece) else piece.split())
        return out

    logger.info("loaded the Mandarin G2P (misaki, jieba and pypinyin)")
    return G2P(lambda text: str(g2p(text)[0]), words, joiner="")

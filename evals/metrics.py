"""Error rates with Whisper's normalisation (its English one for English), word-level diffs, and
percentiles."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import jiwer
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

from agent_tools.core.verification import UNSPACED_LANGUAGES

_DIGIT_GAP = re.compile(r"(?<=\d)[ -](?=\d)")


@dataclass(frozen=True)
class DiffPart:
    """One aligned piece of a reference/hypothesis pair: equal, substitute, delete or insert."""

    kind: str
    reference: str
    hypothesis: str


class TextScorer:
    """Word and character error rates after Whisper's normaliser for `language` (English's when
    unset; its basic one elsewhere, splitting into characters where words are written without
    spaces, so that Japanese and Chinese "words" are characters); one instance per language."""

    def __init__(self, language: str | None = None) -> None:
        self._english = language in (None, "en")
        self._normalize = (
            EnglishTextNormalizer()
            if self._english
            else BasicTextNormalizer(split_letters=language in UNSPACED_LANGUAGES)
        )

    def normalize(self, text: str) -> str:
        """The text as Whisper's evaluation compares it, with digits grouped one way: a spoken
        "four seven one nine" is `4719` to the normaliser, and a recogniser may write it "4-7-19"
        or "47 19"; the digits, not their grouping, are what was heard."""
        words = " ".join(str(self._normalize(text)).split())
        return _DIGIT_GAP.sub("", words) if self._english else words

    def wer(self, references: list[str], hypotheses: list[str]) -> float:
        """Corpus word error rate (an empty reference with an empty hypothesis is 0)."""
        refs, hyps = self._pairs(references, hypotheses)
        if not refs:
            return 0.0 if not any(hyps) else 1.0
        return float(jiwer.wer(refs, hyps))

    def cer(self, references: list[str], hypotheses: list[str]) -> float:
        """Corpus character error rate."""
        refs, hyps = self._pairs(references, hypotheses)
        if not refs:
            return 0.0 if not any(hyps) else 1.0
        return float(jiwer.cer(refs, hyps))

    def diff(self, reference: str, hypothesis: str) -> list[DiffPart]:
        """The normalised word alignment, for showing what was misheard."""
        ref, hyp = self.normalize(reference), self.normalize(hypothesis)
        if not ref:
            return [DiffPart("insert", "", hyp)] if hyp else []
        out = jiwer.process_words(ref, hyp or "")
        ref_words, hyp_words = out.references[0], out.hypotheses[0]
        parts = []
        for chunk in out.alignments[0]:
            r = " ".join(ref_words[chunk.ref_start_idx : chunk.ref_end_idx])
            h = " ".join(hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx])
            parts.append(DiffPart(chunk.type, r, h))
        return parts

    def _pairs(self, references: list[str], hypotheses: list[str]) -> tuple[list[str], list[str]]:
        pairs = [(self.normalize(r), self.normalize(h)) for r, h in zip(references, hypotheses, strict=True)]
        kept = [(r, h) for r, h in pairs if r]
        return [r for r, _ in kept], [h for _, h in kept]


class Scorers:
    """A `TextScorer` per language, each made on first use, and corpus error rates over turns in
    several languages (each normalised in its own)."""

    def __init__(self) -> None:
        self._by_language: dict[str | None, TextScorer] = {}

    def __call__(self, language: str | None) -> TextScorer:
        key = None if language in (None, "en") else language
        if key not in self._by_language:
            self._by_language[key] = TextScorer(key)
        return self._by_language[key]

    def wer(self, turns: Iterable[tuple[str, str, str | None]]) -> float:
        """Corpus word error rate of (reference, hypothesis, language) triples."""
        pairs = [(self(lang).normalize(r), self(lang).normalize(h)) for r, h, lang in turns]
        kept = [(r, h) for r, h in pairs if r]
        if not kept:
            return 0.0 if not any(h for _, h in pairs) else 1.0
        return float(jiwer.wer([r for r, _ in kept], [h for _, h in kept]))


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

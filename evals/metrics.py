"""Error rates with Whisper's English normalisation, word-level diffs, and percentiles."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_DIGIT_GAP = re.compile(r"(?<=\d)[ -](?=\d)")


@dataclass(frozen=True)
class DiffPart:
    """One aligned piece of a reference/hypothesis pair: equal, substitute, delete or insert."""

    kind: str
    reference: str
    hypothesis: str


class TextScorer:
    """Word and character error rates after Whisper's English normaliser (one instance, reused)."""

    def __init__(self) -> None:
        self._normalize = EnglishTextNormalizer()

    def normalize(self, text: str) -> str:
        """The text as Whisper's evaluation compares it, with digits grouped one way: a spoken
        "four seven one nine" is `4719` to the normaliser, and a recogniser may write it "4-7-19"
        or "47 19"; the digits, not their grouping, are what was heard."""
        return _DIGIT_GAP.sub("", " ".join(str(self._normalize(text)).split()))

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


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

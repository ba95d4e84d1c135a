"""Word error rate after Whisper's English text normalisation."""

from __future__ import annotations

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_normalize = EnglishTextNormalizer()


def normalized_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER of `hypotheses` against `references`, both normalised the way Whisper evaluates."""
    refs = [_normalize(r) for r in references]
    hyps = [_normalize(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))

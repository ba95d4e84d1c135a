"""Word error rate the way the eval suite scores it (Whisper's English normalisation)."""

from __future__ import annotations

from evals.metrics import TextScorer

_scorer = TextScorer()


def normalized_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER of `hypotheses` against `references`, both normalised as the eval suite does."""
    return _scorer.wer(references, hypotheses)

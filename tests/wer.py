"""Error rates the way the eval suite scores them (Whisper's normalisation for the language)."""

from __future__ import annotations

from evals.metrics import TextScorer

_scorer = TextScorer()


def normalized_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER of `hypotheses` against `references`, both normalised as the eval suite does."""
    return _scorer.wer(references, hypotheses)


def language_wer(reference: str, hypothesis: str, language: str) -> float:
    """WER in `language` (per character in Japanese and Chinese, written without spaces)."""
    return TextScorer(language).wer([reference], [hypothesis])

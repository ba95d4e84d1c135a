"""Error rates after Whisper normalisation, diffs, baselines and the dev-set references."""

from __future__ import annotations

import pytest

from evals.baseline import compare
from evals.devset import parse_sphinx_transcription
from evals.metrics import Scorers, TextScorer, percentile
from evals.results import Percentiles, Summary


def test_error_rates_ignore_case_punctuation_and_number_spelling():
    scorer = TextScorer()
    assert (
        scorer.wer(
            ["Ask not what your country can do for you."], ["ask not, what your country can do for you"]
        )
        == 0
    )
    assert scorer.wer(["It costs twenty five dollars."], ["It costs $25."]) == 0
    assert scorer.wer(["the quick brown fox"], ["the quick brow fox"]) == 0.25
    assert scorer.cer(["hello"], ["hallo"]) == 0.2
    parts = scorer.diff("the cat sat on the mat", "the cat sat on a mat today")
    assert [(p.kind, p.reference, p.hypothesis) for p in parts if p.kind != "equal"] == [
        ("substitute", "the", "a"),
        ("insert", "", "today"),
    ]


def test_percentiles_by_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95 and percentile([3.0], 0.95) == 3


def summary(wer: float, p50: float) -> Summary:
    return Summary(
        passed=1,
        failed=0,
        skipped=0,
        wer_by_voice={"v": wer},
        latency_ms={"speak": Percentiles(p50=p50, p95=p50, n=3)},
    )


def test_a_worse_wer_or_a_much_slower_tool_is_a_regression():
    base = summary(0.05, 400)
    assert compare(summary(0.06, 500), base) == []  # within tolerance and ratio
    regressions = compare(summary(0.10, 700), base)
    assert [r.metric for r in regressions] == ["wer_by_voice[v]", "latency_ms[speak].p50"]
    assert "0.100 vs baseline 0.050" in regressions[0].describe()
    assert compare(summary(0.05, 150), summary(0.05, 60)) == []  # under the 100 ms floor


def test_sphinx_transcriptions_parse_to_references():
    text = "<s> ten of clubs  </s> (001)\n<s> he was not an ill disposed young man </s> (x-0880)\n\n"
    assert parse_sphinx_transcription(text) == {
        "001": "ten of clubs",
        "x-0880": "he was not an ill disposed young man",
    }


def test_digits_are_scored_as_digits_however_the_recogniser_groups_them():
    scorer = TextScorer()
    reference = "The order number is four seven one nine."
    for heard in ("The order number is 4719.", "The order number is 4-7-19.", "The order number is 47 19."):
        assert scorer.wer([reference], [heard]) == 0.0
    assert scorer.wer([reference], ["The order number is 4718."]) > 0


def test_japanese_and_chinese_are_scored_per_character_and_other_languages_per_word():
    assert TextScorer("ja").wer(["駅の前で待ちます。"], ["駅の前で待ちました"]) == pytest.approx(2 / 8)
    assert TextScorer("zh").wer(["我在车站等朋友"], ["我在车站等朋友。"]) == 0.0
    assert TextScorer("es").wer(["El tren sale a las ocho."], ["el tren sale a las nueve"]) == pytest.approx(
        1 / 6
    )


def test_a_corpus_in_several_languages_is_scored_each_in_its_own():
    scorers = Scorers()
    turns = [("駅の前で待ちます。", "駅の前で待ちます", "ja"), ("Good morning.", "good morning", None)]
    assert scorers.wer(turns) == 0.0
    assert scorers.wer([*turns, ("我在车站", "我再车站", "zh")]) == pytest.approx(1 / 14)

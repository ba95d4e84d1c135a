"""Comparison of a run's summary against a saved one."""

from __future__ import annotations

import math

from evals.results import Regression, Summary


def compare(
    current: Summary,
    baseline: Summary,
    *,
    wer_tolerance: float = 0.02,
    latency_ratio: float = 1.5,
    latency_floor_ms: float = 100.0,
) -> list[Regression]:
    """Metrics worse than the baseline: a WER up by more than `wer_tolerance` (absolute), or a
    latency p50 over `latency_ratio` times the baseline and more than `latency_floor_ms` above it."""
    out: list[Regression] = []
    for group, now, before in (
        ("wer_by_voice", current.wer_by_voice, baseline.wer_by_voice),
        ("wer_by_scenario", current.wer_by_scenario, baseline.wer_by_scenario),
    ):
        for key, value in now.items():
            old = before.get(key)
            if old is not None and value > old + wer_tolerance:
                out.append(
                    Regression(
                        metric=f"{group}[{key}]", baseline=old, current=value, allowed=old + wer_tolerance
                    )
                )
    for tool, now_p in current.latency_ms.items():
        old_p = baseline.latency_ms.get(tool)
        if old_p is None or math.isnan(old_p.p50):
            continue
        allowed = max(old_p.p50 * latency_ratio, old_p.p50 + latency_floor_ms)
        if now_p.p50 > allowed:
            out.append(
                Regression(
                    metric=f"latency_ms[{tool}].p50", baseline=old_p.p50, current=now_p.p50, allowed=allowed
                )
            )
    return out

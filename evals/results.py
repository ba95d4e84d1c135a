"""What a run produced, as plain models that serialise to the results JSON."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TurnResult(BaseModel):
    """One turn: what was asked, what came back, what it measured, and any failed expectation."""

    index: int
    name: str
    action: str
    ok: bool
    code: str | None = None
    message: str = ""
    latency_ms: float | None = None
    first_audio_ms: float | None = None
    audio_seconds: float | None = None
    rtf: float | None = None
    voice: str | None = None
    language: str | None = None
    reference: str | None = None
    hypothesis: str | None = None
    wer: float | None = None
    cer: float | None = None
    turns: int | None = None  # listened turns: how many turns the speech made
    end_reasons: list[str] = Field(default_factory=list)  # ... and why each ended
    end_ms: float | None = None  # ... end of speech to the last turn's end, in stream time
    failures: list[str] = Field(default_factory=list)


class ScenarioResult(BaseModel):
    """One scenario: passed when no expectation failed."""

    name: str
    path: str
    tags: list[str] = Field(default_factory=list)
    skipped: str | None = None
    failures: list[str] = Field(default_factory=list)
    turns: list[TurnResult] = Field(default_factory=list)
    wer: float | None = Field(None, description="Corpus WER over the turns with a reference.")

    @property
    def passed(self) -> bool:
        """No failure, and not skipped."""
        return self.skipped is None and not self.failures and all(not t.failures for t in self.turns)

    def all_failures(self) -> list[str]:
        """Scenario-level and turn-level failures, each naming its turn."""
        out = list(self.failures)
        for turn in self.turns:
            out.extend(f"turn {turn.index + 1} ({turn.name}): {f}" for f in turn.failures)
        return out


class Percentiles(BaseModel):
    """p50/p95 over `n` samples."""

    p50: float
    p95: float
    n: int


class Summary(BaseModel):
    """The run's metrics, the part a baseline keeps."""

    passed: int
    failed: int
    skipped: int
    latency_ms: dict[str, Percentiles] = Field(default_factory=dict, description="Per tool.")
    first_audio_ms: Percentiles | None = None
    rtf: dict[str, float] = Field(default_factory=dict, description="Median real-time factor per tool.")
    wer_by_voice: dict[str, float] = Field(default_factory=dict, description="Round trips per voice.")
    wer_by_scenario: dict[str, float] = Field(default_factory=dict)
    policy_outcomes: dict[str, int] = Field(default_factory=dict, description="Error codes seen, by count.")


class Regression(BaseModel):
    """A metric worse than the baseline by more than its allowance."""

    metric: str
    baseline: float
    current: float
    allowed: float

    def describe(self) -> str:
        """One readable line."""
        return (
            f"{self.metric}: {self.current:.3f} vs baseline {self.baseline:.3f} (allowed {self.allowed:.3f})"
        )


class SuiteResult(BaseModel):
    """A whole run."""

    target: str
    started_at: str
    duration_s: float
    scenarios: list[ScenarioResult]
    summary: Summary
    regressions: list[Regression] = Field(default_factory=list)
    baseline: str | None = None

    @property
    def ok(self) -> bool:
        """Every scenario passed or was skipped, and nothing regressed."""
        return not self.regressions and all(s.passed or s.skipped for s in self.scenarios)

"""The starter scenarios run through the real agent surface on the real engines, and a broken
server makes the suite fail with a readable reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from evals.report import render_markdown, write_reports
from evals.runner import ScenarioRunner
from evals.scenario import load_scenario, load_scenarios
from evals.targets import InProcessTarget, RemoteTarget
from speech_backend import SpeechChunk, SynthesisOptions
from tests.agent_tools.conftest import runtime_with, serve_http
from tests.evals.conftest import SCENARIOS

pytestmark = pytest.mark.anyio


async def test_the_starter_scenarios_pass_in_process_and_the_report_is_written(
    settings, catalog_engines, builtins, tmp_path
):
    scenarios = load_scenarios([SCENARIOS], builtins)
    async with InProcessTarget.start(settings, catalog_engines) as target:
        result = await ScenarioRunner(target, concurrency=2).run(scenarios)
    failures = [f"{s.name}: {f}" for s in result.scenarios for f in s.all_failures()]
    assert result.ok, failures
    names = {s.name for s in result.scenarios}
    assert {"customer-support call", "policy cases", "recorded speech (dev set)"} <= names
    summary = result.summary
    assert summary.passed == len(scenarios) and summary.failed == summary.skipped == 0
    assert set(summary.latency_ms) == {"speak", "transcribe", "list_voices", "stream", "listen"}
    assert {"forbidden", "policy_denied", "rate_limited", "text_too_long", "unauthorized"} <= set(
        summary.policy_outcomes
    )
    assert summary.wer_by_voice["en_US-joe-medium"] <= 0.1
    assert summary.wer_by_voice["af_heart"] <= 0.15 and summary.wer_by_voice["ef_dora"] <= 0.3
    assert summary.wer_by_voice["recorded"] <= 0.15
    recorded = next(s for s in result.scenarios if s.name == "recorded speech (dev set)")
    assert len(recorded.turns) == 11  # 5 LibriVox, 5 cards, JFK
    listened = {t.name: t for s in result.scenarios for t in s.turns if t.action == "listen"}
    paused = listened["a pause mid-sentence, server VAD at 500 ms (cut early)"]
    assert paused.turns == 2 and paused.end_reasons == ["silence", "silence"]
    assert listened["a finished question, semantic"].end_reasons == ["semantic"]
    markdown = write_reports(result, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "Listened turns" in html
    assert html.count("<svg") == 2 and "customer-support call" in html and "PASS" in html
    assert "# speech-tools eval: PASS" in markdown.read_text()


class SilentSynthesizer:
    """The real voice's timing, with its audio swapped for silence: a deliberately broken server."""

    def __init__(self, real) -> None:
        self.real = real
        self.engine = "silent"

    def voices(self):
        return self.real.voices()

    def load(self, voice_id: str) -> None:
        self.real.load(voice_id)

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        for chunk in self.real.synthesize(text, voice_id, options):
            silent = replace(chunk.audio, samples=np.zeros_like(chunk.audio.samples))
            yield replace(chunk, audio=silent)


async def test_a_voice_swapped_for_silence_fails_the_suite_with_a_readable_reason(
    settings, service, builtins
):
    engines = service.require()
    broken = replace(engines, synthesizer=SilentSynthesizer(engines.synthesizer))
    scenario = load_scenario(SCENARIOS / "customer-support.yaml", builtins)
    async with InProcessTarget.start(settings, broken) as target:
        result = await ScenarioRunner(target).run([scenario])
    assert not result.ok and result.summary.failed == 1
    failures = result.scenarios[0].all_failures()
    reason = next(f for f in failures if f.startswith("turn 2 (caller explains): "))
    assert reason.startswith("turn 2 (caller explains): WER 1.00 above 0.15: heard '")  # silence, misheard
    assert "for 'Hi Ada. My parcel was due on Monday" in reason
    assert "**fail**" in render_markdown(result) and reason in render_markdown(result)


async def test_against_a_running_server_scenarios_with_their_own_policy_are_skipped(
    settings, service, builtins
):
    runtime = runtime_with(service, settings)
    scenarios = [load_scenario(SCENARIOS / name, builtins) for name in ("barge-in.yaml", "policy-cases.yaml")]
    async with serve_http(runtime) as base:
        result = await ScenarioRunner(RemoteTarget(f"{base}/mcp")).run(scenarios)
    streamed, policy = result.scenarios
    assert streamed.passed and streamed.turns[0].first_audio_ms is not None
    assert policy.skipped == "brings its own policy: runs in-process only" and not policy.turns
    assert result.ok and result.summary.skipped == 1

"""Replays scenarios against a target and judges every turn against its expectations."""

from __future__ import annotations

import base64
import json
import math
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2

from evals.client import EvalClient, Outcome
from evals.listen import listen
from evals.metrics import Scorers, percentile
from evals.results import Percentiles, ScenarioResult, SuiteResult, Summary, TurnResult
from evals.scenario import Expect, Scenario, SpeechSource, Turn
from evals.targets import Target, Unsupported


class ScenarioRunner:
    """Runs scenarios on one target; `on_scenario` is told as each one finishes (for progress)."""

    def __init__(
        self,
        target: Target,
        *,
        concurrency: int = 1,
        on_scenario: Callable[[ScenarioResult], None] | None = None,
    ) -> None:
        self.target = target
        self.concurrency = max(1, concurrency)
        self.on_scenario = on_scenario
        self.scorers = Scorers()

    async def run(self, scenarios: list[Scenario]) -> SuiteResult:
        """Every scenario (up to `concurrency` at once), then the summary."""
        started = time.perf_counter()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        results: list[ScenarioResult | None] = [None] * len(scenarios)
        limiter = anyio.CapacityLimiter(self.concurrency)

        async def one(i: int, scenario: Scenario) -> None:
            async with limiter:
                results[i] = await self.run_scenario(scenario)
            if self.on_scenario is not None:
                self.on_scenario(results[i])  # type: ignore[arg-type]

        async with anyio.create_task_group() as tg:
            for i, scenario in enumerate(scenarios):
                tg.start_soon(one, i, scenario)
        done = [r for r in results if r is not None]
        return SuiteResult(
            target=self.target.name,
            started_at=started_at,
            duration_s=round(time.perf_counter() - started, 3),
            scenarios=done,
            summary=summarize(done, self.scorers),
        )

    async def run_scenario(self, scenario: Scenario) -> ScenarioResult:
        """One scenario's turns in order; a turn that fails does not stop the later ones."""
        result = ScenarioResult(name=scenario.name, path=str(scenario.path), tags=scenario.tags)
        try:
            base = await self.target.base_url(scenario)
        except Unsupported as exc:
            result.skipped = str(exc)
            return result
        turns = list(scenario.turns)
        if scenario.dataset is not None:
            try:
                turns += self._dataset_turns(scenario)
            except OSError as exc:
                result.failures.append(str(exc))
        try:
            async with AsyncExitStack() as stack:
                clients: dict[str | None, EvalClient] = {}
                previous: Heard | None = None
                for index, turn in enumerate(turns):
                    token = turn.token or scenario.token or self.target.token
                    if token not in clients:  # one connection per principal
                        try:
                            clients[token] = await stack.enter_async_context(EvalClient.connect(base, token))
                        except Exception as exc:  # refused at the door (a bad token): judge it as the turn
                            refused = await refusal(base, token, exc)
                            result.turns.append(self._judged(index, turn, refused))
                            continue
                    client = clients[token]
                    turn_result, audio = await self._turn(client, scenario, index, turn, previous)
                    result.turns.append(turn_result)
                    previous = audio if audio is not None else previous
        except Exception as exc:  # the server went away or broke the protocol: say so, go on
            result.failures.append(f"the connection failed: {type(exc).__name__}: {exc}")
        scored = [t for t in result.turns if t.reference is not None and t.hypothesis is not None]
        if scored:
            result.wer = round(
                self.scorers.wer((t.reference or "", t.hypothesis or "", t.language) for t in scored), 4
            )
        if scenario.dataset is not None and result.wer is not None and result.wer > scenario.dataset.max_wer:
            result.failures.append(
                f"corpus WER {result.wer:.3f} over {len(scored)} recordings, above {scenario.dataset.max_wer}"
            )
        return result

    def _dataset_turns(self, scenario: Scenario) -> list[Turn]:
        assert scenario.dataset is not None
        manifest = scenario.resolve(scenario.dataset.manifest)
        if not manifest.is_file():
            raise OSError(
                f"the dev set manifest {manifest} is missing: run `make devset` to fetch the recordings"
            )
        turns = []
        item_wer = scenario.dataset.max_item_wer or 10.0
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            path = Path(item["path"])
            path = path if path.is_absolute() else manifest.parent / path
            turns.append(
                Turn.model_validate(
                    {
                        "name": item["id"],
                        "transcribe": {"audio": {"file": str(path)}},
                        "expect": {"wer_against": item["reference"], "max_wer": item_wer},
                    }
                )
            )
        return turns

    async def _turn(
        self, client: EvalClient, scenario: Scenario, index: int, turn: Turn, previous: Heard | None
    ) -> tuple[TurnResult, Heard | None]:
        name = turn.name or turn.action
        result = TurnResult(index=index, name=name, action=turn.action, ok=False)
        try:
            for _ in range(turn.repeat):
                outcome, text, voice = await self._act(client, scenario, turn, previous)
                if (outcome.code or None) == turn.expect.error:
                    break
        except _SetupFailed as exc:
            result.failures.append(str(exc))
            return result, None
        result.ok, result.code, result.message = outcome.ok, outcome.code, outcome.message
        result.latency_ms = round(outcome.latency_s * 1000, 1)
        if outcome.first_audio_s is not None:
            result.first_audio_ms = round(outcome.first_audio_s * 1000, 1)
        result.voice = voice
        structured = outcome.structured
        seconds = structured.get("duration_seconds")
        if turn.action == "stream" and "audio_ms" in structured:
            seconds = structured["audio_ms"] / 1000
        if isinstance(seconds, int | float) and seconds > 0:
            result.audio_seconds = round(float(seconds), 3)
            result.rtf = round(outcome.latency_s / seconds, 4)
        result.language = turn.transcribe.language if turn.transcribe else None
        if turn.listen is not None:
            result.turns, result.end_ms = structured.get("turns"), structured.get("end_ms")
            result.end_reasons = list(structured.get("reasons", []))
        if outcome.ok and turn.expect.wer_against is not None:
            scorer = self.scorers(result.language)
            result.reference, result.hypothesis = turn.expect.wer_against, text
            result.wer = round(scorer.wer([turn.expect.wer_against], [text]), 4)
            result.cer = round(scorer.cer([turn.expect.wer_against], [text]), 4)
        elif outcome.ok and turn.action == "transcribe":
            result.hypothesis = text
        result.failures = self._judge(turn.expect, outcome, text, result)
        return result, (outcome.audio, voice) if outcome.audio is not None else None

    def _judged(self, index: int, turn: Turn, outcome: Outcome) -> TurnResult:
        """A turn that never reached its tool, judged on how it was refused."""
        result = TurnResult(
            index=index,
            name=turn.name or turn.action,
            action=turn.action,
            ok=False,
            code=outcome.code,
            message=outcome.message,
        )
        result.failures = self._judge(turn.expect, outcome, "", result)
        return result

    async def _act(
        self, client: EvalClient, scenario: Scenario, turn: Turn, previous: Heard | None
    ) -> tuple[Outcome, str, str | None]:
        """Run the turn's action; returns the outcome, its text (for expectations) and the voice heard."""
        if turn.speak is not None:
            outcome = await client.call("speak", turn.speak.model_dump())
            return (
                outcome,
                " ".join(s["text"] for s in outcome.structured.get("sentences", [])),
                outcome.structured.get("voice"),
            )
        if turn.list_voices is not None:
            outcome = await client.call("list_voices", turn.list_voices.model_dump())
            return outcome, json.dumps(outcome.structured), None
        if turn.listen is not None:
            outcome = await listen(client, turn.listen)
            return outcome, str(outcome.structured.get("text", "")), turn.listen.speak.voice
        if turn.stream is not None:
            s = turn.stream
            outcome = await client.stream(s.text, s.pieces, s.voice, s.speed, s.cancel_after_sentences)
            return outcome, str(outcome.structured.get("text", "")), outcome.structured.get("voice", s.voice)
        assert turn.transcribe is not None
        audio, voice = await self._source(client, scenario, turn.transcribe.audio, previous)
        arguments = turn.transcribe.model_dump(exclude={"audio"})
        arguments["audio_base64"] = base64.b64encode(audio).decode()
        outcome = await client.call("transcribe", arguments)
        return outcome, str(outcome.structured.get("text", "")), voice

    async def _source(
        self, client: EvalClient, scenario: Scenario, source: SpeechSource, previous: Heard | None
    ) -> tuple[bytes, str | None]:
        if source.file is not None:
            path = scenario.resolve(source.file)
            try:
                return await anyio.Path(path).read_bytes(), "recorded"
            except OSError as exc:
                raise _SetupFailed(f"cannot read the recording {path} ({exc.strerror})") from exc
        if source.speak is not None:
            spoken = await client.call(
                "speak", {**source.speak.model_dump(), "format": source.speak.format or "wav"}
            )
            if not spoken.ok or spoken.audio is None:
                raise _SetupFailed(f"speaking the turn's audio failed: [{spoken.code}] {spoken.message}")
            return spoken.audio, source.speak.voice or str(spoken.structured.get("voice"))
        if previous is None:
            raise _SetupFailed("the turn transcribes the previous turn's audio, but there is none")
        return previous

    def _judge(self, expect: Expect, outcome: Outcome, text: str, result: TurnResult) -> list[str]:
        if expect.error is not None:
            if outcome.ok:
                return [f"expected error {expect.error}, but the call succeeded"]
            if outcome.code != expect.error:
                return [f"expected error {expect.error}, got [{outcome.code}] {outcome.message}"]
            return []
        if not outcome.ok:
            return [f"expected success, got [{outcome.code}] {outcome.message}"]
        return self._text_checks(expect, text, result) + self._measure_checks(
            expect, outcome.structured, result
        )

    def _text_checks(self, expect: Expect, text: str, result: TurnResult) -> list[str]:
        failures = []
        if result.wer is not None and result.wer > expect.max_wer:
            failures.append(
                f"WER {result.wer:.2f} above {expect.max_wer:g}: heard {result.hypothesis!r} "
                f"for {result.reference!r}"
            )
        if expect.max_cer is not None and result.cer is not None and result.cer > expect.max_cer:
            failures.append(f"CER {result.cer:.2f} above {expect.max_cer:g}")
        lowered = text.lower()
        failures += [
            f"result lacks {c!r}: got {text[:200]!r}" for c in expect.contains if c.lower() not in lowered
        ]
        failures += [
            f"result has {c!r}: got {text[:200]!r}" for c in expect.not_contains if c.lower() in lowered
        ]
        return failures

    def _measure_checks(self, expect: Expect, structured: dict[str, Any], result: TurnResult) -> list[str]:
        failures = []
        if expect.audio_seconds is not None and not expect.audio_seconds.holds(result.audio_seconds or 0.0):
            failures.append(f"audio is {result.audio_seconds} s, outside {expect.audio_seconds.model_dump()}")
        if expect.within_ms is not None and (result.latency_ms or 0) > expect.within_ms:
            failures.append(f"took {result.latency_ms:.0f} ms, over the budget of {expect.within_ms:g} ms")
        first = result.first_audio_ms
        if expect.first_audio_within_ms is not None and (
            first is None or first > expect.first_audio_within_ms
        ):
            failures.append(
                f"first audio after {first} ms, over the budget of {expect.first_audio_within_ms:g} ms"
            )
        expected: list[tuple[str, object]] = [
            ("language", expect.language),
            ("reason", expect.reason),
            ("untrusted_content", expect.untrusted),
        ]
        for key, wanted in expected:
            if wanted is not None and structured.get(key) != wanted:
                failures.append(f"{key} is {structured.get(key)!r}, expected {wanted!r}")
        if expect.max_sentences is not None and structured.get("sentences", 0) > expect.max_sentences:
            failures.append(
                f"{structured.get('sentences')} sentences delivered, at most {expect.max_sentences}"
            )
        if expect.turns is not None and result.turns != expect.turns:
            failures.append(
                f"the speech made {result.turns} turns ({result.end_reasons}), expected {expect.turns}"
            )
        if expect.end_within_ms is not None and (
            result.end_ms is None or result.end_ms > expect.end_within_ms
        ):
            failures.append(
                f"the turn ended {result.end_ms} ms after the speech, over {expect.end_within_ms:g} ms"
            )
        return failures


async def refusal(base: str, token: str | None, exc: Exception) -> Outcome:
    """Why the server refused a connection: its error object from a plain route with the same token."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        response = await http.get(f"{base}/v1/models")
    if response.status_code >= 400:
        error = response.json().get("error", {})
        return Outcome(False, str(error.get("code", response.status_code)), str(error.get("message", "")))
    raise exc  # the token is fine: something else broke the connection


Heard = tuple[bytes, str | None]  # audio a turn produced, and the voice that spoke it


class _SetupFailed(Exception):
    """The turn could not be prepared (its audio source failed)."""


def summarize(results: list[ScenarioResult], scorers: Scorers) -> Summary:
    """The run's metrics: latency and real-time factor per tool, WER per voice and scenario, error codes."""
    latency: dict[str, list[float]] = defaultdict(list)
    rtf: dict[str, list[float]] = defaultdict(list)
    first: list[float] = []
    by_voice: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
    codes: Counter[str] = Counter()
    for scenario in results:
        for turn in scenario.turns:
            if turn.latency_ms is not None and turn.ok:
                latency[turn.action].append(turn.latency_ms)
            if turn.rtf is not None and turn.ok:
                rtf[turn.action].append(turn.rtf)
            if turn.first_audio_ms is not None:
                first.append(turn.first_audio_ms)
            if turn.code is not None:
                codes[turn.code] += 1
            if turn.reference is not None and turn.hypothesis is not None and turn.voice:
                by_voice[turn.voice].append((turn.reference, turn.hypothesis, turn.language))
    return Summary(
        passed=sum(r.passed for r in results),
        failed=sum(not r.passed and r.skipped is None for r in results),
        skipped=sum(r.skipped is not None for r in results),
        latency_ms={tool: _percentiles(values) for tool, values in sorted(latency.items())},
        first_audio_ms=_percentiles(first) if first else None,
        rtf={tool: round(statistics.median(v), 4) for tool, v in sorted(rtf.items())},
        wer_by_voice={v: round(scorers.wer(turns), 4) for v, turns in sorted(by_voice.items())},
        wer_by_scenario={r.name: r.wer for r in results if r.wer is not None},
        policy_outcomes=dict(sorted(codes.items())),
    )


def _percentiles(values: list[float]) -> Percentiles:
    return Percentiles(
        p50=round(percentile(values, 0.5), 1), p95=round(percentile(values, 0.95), 1), n=len(values)
    )


def results_json(result: SuiteResult) -> dict[str, Any]:
    """The results as JSON-ready data (NaN as null), with each scenario's verdict."""
    data = result.model_dump(mode="json")
    for scenario, model in zip(data["scenarios"], result.scenarios, strict=True):
        scenario["passed"] = model.passed
    data["ok"] = result.ok
    cleaned: dict[str, Any] = _without_nan(data)
    return cleaned


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value

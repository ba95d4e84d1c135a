"""`speech-tools eval`: replay scenarios, print the summary, write the report, compare to a baseline.

Registered with the `speech-tools` command line through the `speech_tools.commands` entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from tqdm import tqdm

from agent_tools.settings import Settings
from evals.baseline import compare
from evals.report import render_markdown, write_reports
from evals.results import ScenarioResult, SuiteResult, Summary
from evals.runner import ScenarioRunner, results_json
from evals.scenario import ScenarioError, load_scenarios
from evals.targets import InProcessTarget, RemoteTarget

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
DEFAULT_SCENARIOS = Path("evals/scenarios")
DEFAULT_DEVSET = Path(".cache/devset")


def register(sub: Any) -> None:
    """Add the `eval` command to the CLI's subparsers."""
    parser = sub.add_parser("eval", help="replay dialog scenarios and report quality, latency and policy")
    parser.add_argument(
        "paths", nargs="*", type=Path, help=f"scenario files or folders (default {DEFAULT_SCENARIOS})"
    )
    parser.add_argument("--server", help="a running server's URL (…/mcp); default: start one in this process")
    parser.add_argument("--token", help="bearer token for --server (default: $SPEECH_TOOLS_EVAL_TOKEN)")
    parser.add_argument(
        "--report", type=Path, help="write the HTML report here (and .md and .json beside it)"
    )
    parser.add_argument("--baseline", type=Path, help="results JSON of an earlier run to compare against")
    parser.add_argument("--save-baseline", type=Path, help="write this run's results JSON here")
    parser.add_argument("--concurrency", type=int, default=1, help="scenarios run at once (default 1)")
    parser.add_argument(
        "--devset", type=Path, default=DEFAULT_DEVSET, help="the dev-set folder (make devset)"
    )
    parser.add_argument(
        "--wer-tolerance", type=float, default=0.02, help="WER rise allowed over the baseline"
    )
    parser.add_argument("--latency-ratio", type=float, default=1.5, help="latency p50 ratio allowed over it")
    parser.add_argument(
        "--no-deterministic", action="store_true", help="in-process: synthesize with sampling noise"
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the suite; 0 when every expectation held and nothing regressed."""
    try:
        scenarios = load_scenarios(args.paths or [DEFAULT_SCENARIOS], {"devset": str(args.devset.resolve())})
    except ScenarioError as exc:
        print(f"error [invalid_scenario]: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    baseline: Summary | None = None
    if args.baseline is not None:
        try:
            baseline = Summary.model_validate(
                json.loads(args.baseline.read_text(encoding="utf-8"))["summary"]
            )
        except (OSError, ValueError, KeyError) as exc:
            print(f"error [invalid_baseline]: {args.baseline}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if not args.no_deterministic:
        service = settings.service.model_copy(update={"deterministic_speech": True})
        settings = settings.model_copy(update={"service": service})
    token = args.token or os.environ.get("SPEECH_TOOLS_EVAL_TOKEN")
    with tqdm(total=len(scenarios), desc="scenarios", unit="scenario", file=sys.stderr) as bar:

        def progress(result: ScenarioResult) -> None:
            bar.set_postfix_str(
                f"{result.name[:30]}: {'skipped' if result.skipped else 'pass' if result.passed else 'FAIL'}"
            )
            bar.update(1)

        result = anyio.run(_run, scenarios, args, settings, token, progress)
    if baseline is not None:
        result.baseline = str(args.baseline)
        result.regressions = compare(
            result.summary, baseline, wer_tolerance=args.wer_tolerance, latency_ratio=args.latency_ratio
        )
    print(render_markdown(result))
    data = results_json(result)
    if args.report is not None:
        markdown = write_reports(result, args.report, baseline)
        args.report.with_suffix(".json").write_text(json.dumps(data, indent=2), encoding="utf-8")
        print(f"report: {args.report} (summary {markdown})", file=sys.stderr)
    if args.save_baseline is not None:
        args.save_baseline.parent.mkdir(parents=True, exist_ok=True)
        args.save_baseline.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0 if result.ok else EXIT_FAILED


async def _run(
    scenarios: list[Any], args: argparse.Namespace, settings: Settings, token: str | None, progress: Any
) -> SuiteResult:
    if args.server:
        runner = ScenarioRunner(
            RemoteTarget(args.server, token), concurrency=args.concurrency, on_scenario=progress
        )
        return await runner.run(scenarios)
    async with InProcessTarget.start(settings) as target:
        runner = ScenarioRunner(target, concurrency=args.concurrency, on_scenario=progress)
        return await runner.run(scenarios)

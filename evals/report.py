"""The run as a page a person wants to read (HTML with plots) and a Markdown summary."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure

from evals.metrics import DiffPart, Scorers
from evals.results import ScenarioResult, SuiteResult, Summary, TurnResult

WORST_TURNS = 10


@dataclass(frozen=True)
class WorstTurn:
    """A turn with word errors, and its diff."""

    scenario: str
    turn: TurnResult
    diff: list[DiffPart]


def worst_turns(
    scenarios: list[ScenarioResult], scorers: Scorers, limit: int = WORST_TURNS
) -> list[WorstTurn]:
    """The turns with the highest WER (above zero), worst first."""
    scored = [(s.name, t) for s in scenarios for t in s.turns if t.wer]
    scored.sort(key=lambda pair: -(pair[1].wer or 0.0))
    return [
        WorstTurn(name, t, scorers(t.language).diff(t.reference or "", t.hypothesis or ""))
        for name, t in scored[:limit]
    ]


def render_html(result: SuiteResult, baseline: Summary | None = None) -> str:
    """The HTML report."""
    env = Environment(
        loader=PackageLoader("evals", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    template = env.get_template("report.html.j2")
    return template.render(
        result=result,
        s=result.summary,
        baseline=baseline,
        plots=_plots(result),
        worst=worst_turns(result.scenarios, Scorers()),
    )


def render_markdown(result: SuiteResult) -> str:
    """A short Markdown summary: verdict, scenarios, metrics, failures, regressions."""
    s = result.summary
    lines = [
        f"# speech-tools eval: {'PASS' if result.ok else 'FAIL'}",
        "",
        f"{s.passed} passed, {s.failed} failed, {s.skipped} skipped; target {result.target}; "
        f"{result.duration_s:.1f} s; {result.started_at}",
        "",
        "| scenario | result | WER |",
        "|---|---|---|",
    ]
    for sc in result.scenarios:
        verdict = "skipped" if sc.skipped else ("pass" if sc.passed else "**fail**")
        lines.append(f"| {sc.name} | {verdict} | {'' if sc.wer is None else f'{sc.wer:.3f}'} |")
    lines += ["", "| tool | p50 ms | p95 ms | calls | median RTF |", "|---|---|---|---|---|"]
    lines += [f"| {t} | {p.p50} | {p.p95} | {p.n} | {s.rtf.get(t, '')} |" for t, p in s.latency_ms.items()]
    if s.wer_by_voice:
        lines += ["", "| voice / source | WER |", "|---|---|"]
        lines += [f"| {v} | {w:.3f} |" for v, w in s.wer_by_voice.items()]
    failures = [f"- {sc.name}: {f}" for sc in result.scenarios for f in sc.all_failures()]
    if failures:
        lines += ["", "## Failures", "", *failures]
    if result.regressions:
        lines += ["", "## Regressions", "", *[f"- {r.describe()}" for r in result.regressions]]
    return "\n".join(lines) + "\n"


def write_reports(result: SuiteResult, html_path: Path, baseline: Summary | None = None) -> Path:
    """Write the HTML report and the Markdown summary beside it; returns the Markdown path."""
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(result, baseline), encoding="utf-8")
    markdown = html_path.with_suffix(".md")
    markdown.write_text(render_markdown(result), encoding="utf-8")
    return markdown


def _plots(result: SuiteResult) -> list[str]:
    by_tool: dict[str, list[float]] = {}
    for sc in result.scenarios:
        for t in sc.turns:
            if t.ok and t.latency_ms is not None:
                by_tool.setdefault(t.action, []).append(t.latency_ms)
    plots = []
    if by_tool:
        fig = Figure(figsize=(6, 3.2))
        ax = fig.subplots()
        ax.boxplot(list(by_tool.values()), orientation="horizontal", tick_labels=list(by_tool))
        ax.set_xlabel("latency (ms)")
        ax.set_title("Latency per tool")
        plots.append(_svg(fig))
    wer = result.summary.wer_by_voice
    if wer:
        fig = Figure(figsize=(6, 3.2))
        ax = fig.subplots()
        ax.barh(list(wer), list(wer.values()), color="#4a7bd0")
        ax.set_xlabel("word error rate")
        ax.set_title("WER per voice (round trips) and recorded speech")
        plots.append(_svg(fig))
    return plots


def _svg(fig: Figure) -> str:
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]

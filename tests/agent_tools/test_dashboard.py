"""The Grafana dashboard asks only for metrics the server exports, with the labels they carry."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from agent_tools.core.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "speech-tools.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def families(metrics: Metrics) -> list[Metric]:
    """The metric families of /metrics (an unlabelled counter's `_created` timestamp is not one)."""
    parsed = text_string_to_metric_families(metrics.render().decode())
    return [family for family in parsed if not family.name.endswith("_created")]


def exported() -> dict[str, set[str]]:
    """Every sample name /metrics can show, with the labels of its family (histograms add `le`)."""
    metrics = Metrics()
    labels = {c._name: set(c._labelnames) for c in vars(metrics).values() if isinstance(c, MetricWrapperBase)}
    names: dict[str, set[str]] = {}
    for family in families(metrics):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = labels[family.name] | ({"le"} if suffix == "_bucket" else set())
    return names


def queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def test_every_dashboard_query_names_a_metric_the_server_exports_by_its_labels():
    names = exported()
    found = queries()
    assert len(found) >= 9
    for expr in found:
        metrics = re.findall(r"\bspeech_[a-z_]+\b", expr)
        assert metrics, expr
        for metric in metrics:
            assert metric in names, f"{metric} in {expr!r} is not exported"
            for group in re.findall(r"by \(([^)]*)\)", expr):
                for label in (part.strip() for part in group.split(",")):
                    assert label in names[metric], f"{metric} has no label {label!r} ({expr!r})"


def test_every_exported_family_has_a_panel():
    used = {
        re.sub(r"_(total|bucket|sum|count|created)$", "", m)
        for e in queries()
        for m in re.findall(r"\bspeech_[a-z_]+\b", e)
    }
    exported_families = {family.name for family in families(Metrics())}
    assert exported_families <= used, exported_families - used

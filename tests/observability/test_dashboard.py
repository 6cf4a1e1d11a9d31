"""Every expression of deploy/grafana-dashboard.json names only series the server exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import server.observability.metrics  # noqa: F401 - registers the series

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "irate", "increase",
    "histogram_quantile", "topk", "bottomk", "clamp_min", "clamp_max", "and", "or", "unless",
    "on", "ignoring", "group_left", "group_right", "offset", "abs", "delta", "deriv",
}


def exported() -> set[str]:
    names = set()
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    return names


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for v in node.values() for e in expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in expressions(v)]
    return []


def metric_names(expr: str) -> set[str]:
    """Identifiers of `expr` that are neither PromQL words, label names nor literals."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # grouping labels
    return {t for t in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare) if t not in PROMQL_WORDS}


def test_dashboard_expressions_name_exported_series() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = expressions(dashboard)
    assert len(exprs) >= 10
    known = exported()
    used = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= known, (expr, names - known)
        used |= names
    # the series the issue asks the dashboard for
    assert {"comfygen_queue_depth", "comfygen_jobs_total", "comfygen_job_duration_seconds_bucket",
            "comfygen_comfyui_restarts_total"} <= used
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for what in ("queue depth", "throughput", "p50 / p95", "error rate", "restarts"):
        assert what in titles


def test_docs_list_every_metric() -> None:
    doc = (DASHBOARD.parents[1] / "docs" / "observability.md").read_text(encoding="utf-8")
    names = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
             for n in exported() if n.startswith("comfygen_") and not n.endswith("_created")}
    missing = sorted(n for n in names if f"| `{n}` |" not in doc)
    assert missing == []

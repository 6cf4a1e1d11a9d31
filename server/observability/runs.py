"""One run's outcome and timings: the numbers for the sync `stats`, the job view, the metrics and
the log line, all from the same measurements."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from comfygen.comfy.models import PromptResult
from server.errors import ApiError
from server.observability import metrics
from server.observability.context import bind

log = logging.getLogger("comfygen.runs")

CANCELLED_TYPES = frozenset({"interrupted", "cancelled"})


def run_stats(graph: Mapping[str, Any], result: PromptResult, received: float, finished: float,
              done: float) -> dict[str, Any]:
    """`queue_ms` (received to execution start), `execution_ms` (in ComfyUI), `outputs_ms`
    (fetching and converting outputs) and `nodes` [{node, class_type, ms, cached}]."""
    timing = result.timing
    # ComfyUI's own timestamps first: arrival times of websocket messages bunch up when this
    # process is busy (several messages read in one go), ComfyUI's do not.
    execution_ms = result.execution_ms
    if execution_ms is None and timing is not None and timing.execution_seconds is not None:
        execution_ms = int(timing.execution_seconds * 1000)
    if timing is not None and timing.started_at is not None:
        queue_ms: int | None = _ms(received, timing.started_at)
    elif execution_ms is not None:
        queue_ms = max(0, _ms(received, finished) - execution_ms)
    else:
        queue_ms = None
    nodes = []
    for node in (timing.nodes.values() if timing is not None else ()):
        spec = graph.get(node.node)
        class_type = spec.get("class_type") if isinstance(spec, Mapping) else None
        nodes.append({"node": node.node, "class_type": class_type, "ms": node.ms,
                      "cached": node.cached})
    return {"queue_ms": queue_ms, "execution_ms": execution_ms, "outputs_ms": _ms(finished, done),
            "nodes": nodes}


class RunObservation:
    def __init__(self, workflow: str) -> None:
        self.workflow = workflow
        self.stats: Mapping[str, Any] | None = None

    def succeeded(self, stats: Mapping[str, Any]) -> None:
        self.stats = stats


@contextlib.contextmanager
def observe_run(workflow: str, prompt_id: str) -> Iterator[RunObservation]:
    """Count the run's outcome (succeeded, failed, cancelled) and, when it succeeded, its phase
    and node times; log one line about it."""
    bind(prompt_id=prompt_id)
    started = time.monotonic()
    observation = RunObservation(workflow)
    try:
        yield observation
    except ApiError as exc:
        status = "cancelled" if exc.type in CANCELLED_TYPES else "failed"
        _count(workflow, status, exc.type)
        log.info("run %s: %s (%d)", status, exc.type, exc.status,
                 extra={"outcome": status, "error_type": exc.type, "status_code": exc.status})
        raise
    except asyncio.CancelledError:
        _count(workflow, "cancelled", None)
        log.info("run cancelled before it finished", extra={"outcome": "cancelled"})
        raise
    except Exception:
        _count(workflow, "failed", "internal_error")
        raise
    stats = observation.stats or {}
    _count(workflow, "succeeded", None)
    _observe(workflow, stats)
    log.info("run succeeded in %d ms", _ms(started, time.monotonic()),
             extra={"outcome": "succeeded", "queue_ms": stats.get("queue_ms"),
                    "execution_ms": stats.get("execution_ms"),
                    "outputs_ms": stats.get("outputs_ms")})


def _count(workflow: str, status: str, error_type: str | None) -> None:
    metrics.child(metrics.JOBS, workflow, status).inc()
    if status == "failed" and error_type:
        metrics.JOB_ERRORS.labels(workflow, error_type).inc()


def _observe(workflow: str, stats: Mapping[str, Any]) -> None:
    for phase, key in (("queue", "queue_ms"), ("execute", "execution_ms"),
                       ("outputs", "outputs_ms")):
        value = stats.get(key)
        metrics.child(metrics.JOB_DURATION, workflow, phase).observe(
            value / 1000 if value is not None else 0.0)
    for node in stats.get("nodes") or []:
        class_type = node.get("class_type") or "unknown"
        if node.get("cached"):
            metrics.child(metrics.NODES_CACHED, class_type).inc()
        else:
            metrics.child(metrics.NODE_DURATION, class_type).observe(node["ms"] / 1000)


def _ms(a: float, b: float) -> int:
    return max(0, round((b - a) * 1000))

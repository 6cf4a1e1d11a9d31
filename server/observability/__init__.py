"""Observability: Prometheus metrics (`/metrics`), structured logs with request/job ids, run and
node timings, optional OpenTelemetry tracing. The rest of the server calls in through thin hooks:
`install(app, settings)`, `observe_run(...)`, and the counters in `metrics`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.observability.context import bind, current
from server.observability.runs import observe_run, run_stats

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.settings import Settings

__all__ = ["bind", "current", "install", "observe_run", "run_stats"]


def install(app: FastAPI, settings: Settings) -> None:
    """Add `/metrics`, the request-id and HTTP-metrics middleware, secret redaction for logs and,
    when OTEL_* environment variables ask for it, tracing."""
    from server.observability import logs, metrics, tracing

    logs.register_secrets(settings)
    metrics.install(app, settings)
    tracing.install(app)

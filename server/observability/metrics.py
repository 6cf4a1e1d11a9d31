"""Prometheus series of the server, `/metrics`, and the ASGI middleware that counts HTTP requests
and hands out request ids.

Label values are bounded: route templates, methods, status codes, workflow paths, node class
types, outcomes. Never ids, prompts or URLs. With `PROMETHEUS_MULTIPROC_DIR` set (before the
server starts) every worker writes its values there and `/metrics` merges them.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.observability import context

# seconds-to-minutes jobs; sub-second for HTTP and nodes too
JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
NODE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter("comfygen_http_requests", "HTTP requests answered, by route template, "
                        "method and status code", ["method", "route", "status"])
HTTP_DURATION = Histogram("comfygen_http_request_duration_seconds", "Time to answer an HTTP "
                          "request (until its response started)", ["method", "route"],
                          buckets=HTTP_BUCKETS)
JOBS = Counter("comfygen_jobs", "Finished runs (sync requests and async jobs) by workflow and "
               "outcome: succeeded, failed or cancelled", ["workflow", "status"])
JOB_ERRORS = Counter("comfygen_job_errors", "Failed runs by workflow and error type (the `type` "
                     "of the error body)", ["workflow", "type"])
JOB_DURATION = Histogram("comfygen_job_duration_seconds", "Time of succeeded runs by phase: "
                         "queue (received to execution start), execute (in ComfyUI), outputs "
                         "(fetch and convert)", ["workflow", "phase"], buckets=JOB_BUCKETS)
NODE_DURATION = Histogram("comfygen_node_duration_seconds", "Execution time of each executed "
                          "(not cached) node of succeeded runs, by class type", ["class_type"],
                          buckets=NODE_BUCKETS)
NODES_CACHED = Counter("comfygen_nodes_cached", "Nodes ComfyUI served from its cache in "
                       "succeeded runs, by class type", ["class_type"])
QUEUE_DEPTH = Gauge("comfygen_queue_depth", "Prompts waiting or running: the larger of this "
                    "server's runs in flight and ComfyUI's queue (read at scrape time)",
                    multiprocess_mode="livemax")
IN_FLIGHT = Gauge("comfygen_runs_in_flight", "Runs this server admitted and has not finished "
                  "(sync requests and jobs; read at scrape time)", multiprocess_mode="livesum")
COMFYUI_UP = Gauge("comfygen_comfyui_up", "1 while ComfyUI is ready and its websocket is "
                   "connected, else 0 (read at scrape time)", multiprocess_mode="livemax")
COMFYUI_RESTARTS = Counter("comfygen_comfyui_restarts", "Restarts of the launched ComfyUI")
WEBHOOKS = Counter("comfygen_webhook_deliveries", "Webhook deliveries by result: delivered or "
                   "failed (after all attempts)", ["result"])
URL_REFUSALS = Counter("comfygen_url_guard_refusals", "URLs (webhooks, media, redirects) the URL "
                       "guard refused")
MEDIA_BYTES = Counter("comfygen_media_bytes_in", "Bytes of media inputs accepted, by media kind",
                      ["kind"])


_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, cached: prometheus-client's own lookup locks and validates."""
    key = (id(metric), labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def webhook_delivered(delivered: bool) -> None:
    WEBHOOKS.labels("delivered" if delivered else "failed").inc()


def url_refused() -> None:
    URL_REFUSALS.inc()


def media_in(kind: str, size: int) -> None:
    MEDIA_BYTES.labels(kind).inc(size)


# -- /metrics --------------------------------------------------------------------------------------

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    """Prometheus text format; the API key guards it unless `metrics_public` is set."""
    await refresh(request.app)
    return Response(render(), media_type=CONTENT_TYPE_LATEST)


async def refresh(app: Any) -> None:
    """Read the gauges that live elsewhere: ComfyUI's state, the queue, restarts."""
    supervisor = getattr(app.state, "supervisor", None)
    runner = getattr(app.state, "runner", None)
    if supervisor is not None:
        COMFYUI_UP.set(1 if supervisor.ready else 0)
        seen = getattr(app.state, "restarts_counted", 0)
        if supervisor.restarts > seen:
            COMFYUI_RESTARTS.inc(supervisor.restarts - seen)
            app.state.restarts_counted = supervisor.restarts
    if runner is not None:
        QUEUE_DEPTH.set(await runner.admission.depth())
        IN_FLIGHT.set(runner.admission.active)


def render() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# -- the middleware --------------------------------------------------------------------------------

REQUEST_ID_HEADER = b"x-request-id"
_GOOD_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")


class ObservabilityMiddleware:
    """Outermost layer: a request id (`X-Request-ID` if sane, else a new UUID) bound for logs and
    returned in the response header; HTTP requests and durations by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for key, value in scope["headers"]:
            if key == REQUEST_ID_HEADER and _GOOD_ID.match(value):
                rid = value.decode("ascii")
                break
        rid = rid or str(uuid.uuid4())
        raw_id = rid.encode("ascii")
        tokens = [(var, var.set(None)) for var in context._vars.values()]
        context.request_id.set(rid)
        started = time.perf_counter()
        status = 500
        elapsed: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - started
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope["method"]
            child(HTTP_REQUESTS, method, template, str(status)).inc()
            child(HTTP_DURATION, method, template).observe(
                elapsed if elapsed is not None else time.perf_counter() - started)
            for var, token in reversed(tokens):
                var.reset(token)


def install(app: Any, settings: Any) -> None:
    app.include_router(router)
    app.add_middleware(ObservabilityMiddleware)

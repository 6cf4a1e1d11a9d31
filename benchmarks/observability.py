"""p50 overhead of the observability layer per run, at concurrency 1: metrics + JSON logging.

A real run on ComfyUI takes tens of milliseconds with jitter far above the 0.3 ms target, so an
end-to-end A/B cannot see the difference. This script measures the layer itself instead, on the
same request shape the model-free graph (EmptyImage -> ImageInvert -> SaveImage) produces:

- arm `before`: a FastAPI route answering a small JSON body; uvicorn's plain access-log line
  (its default `AccessFormatter`) written to /dev/null, as before observability existed;
- arm `after`: the same route behind `ObservabilityMiddleware` (request id, HTTP counter and
  histogram), the route wrapped in `observe_run` with the 3-node stats of that graph (jobs counter,
  three phase histograms, three node histograms, the `comfygen.runs` JSON line), and the access
  line through the JSON formatter and the context/redaction filter, to /dev/null.

Requests go one at a time through httpx's ASGI transport; the arms alternate request by request.

    .venv/bin/python benchmarks/observability.py           # 4000 requests per arm
    .venv/bin/python benchmarks/observability.py --quick   # 500
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from uvicorn.logging import AccessFormatter

from server.observability import observe_run
from server.observability.logs import ContextFilter, json_formatter
from server.observability.metrics import ObservabilityMiddleware

STATS: dict[str, Any] = {
    "preprocess_time": 1, "comfy_round_trip": 35, "comfy_execution": 28, "postprocess_time": 4,
    "total_time": 40, "queue_ms": 6, "execution_ms": 29, "outputs_ms": 4,
    "nodes": [{"node": "1", "class_type": "EmptyImage", "ms": 3, "cached": False},
              {"node": "2", "class_type": "ImageInvert", "ms": 2, "cached": False},
              {"node": "3", "class_type": "SaveImage", "ms": 21, "cached": False}],
}
BODY = {"id": "r", "images": ["iVBORw0KGgo="], "filenames": ["x.png"], "stats": STATS}
ACCESS = '%s - "%s %s HTTP/%s" %d'


def logger(name: str, formatter: logging.Formatter, filtered: bool) -> logging.Logger:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as we do
    handler.setFormatter(formatter)
    if filtered:
        handler.addFilter(ContextFilter())
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def app(observed: bool) -> FastAPI:
    api = FastAPI()
    access = logging.getLogger("bench.access.after" if observed else "bench.access.before")

    @api.post("/workflow/test/invert")
    async def run() -> dict[str, Any]:
        if observed:
            with observe_run("test/invert", str(uuid.uuid4())) as observation:
                observation.succeeded(STATS)
        access.info(ACCESS, "127.0.0.1:5000", "POST", "/workflow/test/invert", "1.1", 200)
        return BODY

    if observed:
        api.add_middleware(ObservabilityMiddleware)
    return api


async def measure(n: int) -> dict[str, list[float]]:
    logger("bench.access.before", AccessFormatter('%(client_addr)s - "%(request_line)s" '
                                                  "%(status_code)s", use_colors=False), False)
    logger("bench.access.after", json_formatter(), True)
    logger("comfygen.runs", json_formatter(), True)
    clients = {}
    for name, observed in (("before", False), ("after", True)):
        transport = httpx.ASGITransport(app(observed))
        clients[name] = httpx.AsyncClient(transport=transport, base_url="http://bench")
    times: dict[str, list[float]] = {"before": [], "after": []}
    for i in range(n * 2 + 200):  # the first 100 of each arm warm up
        name = ("before", "after")[(i + i // 2) % 2]  # ABBA
        started = time.perf_counter()
        r = await clients[name].post("/workflow/test/invert", json={"input": {}})
        elapsed = time.perf_counter() - started
        assert r.status_code == 200
        if i >= 200:
            times[name].append(elapsed * 1000)
    for client in clients.values():
        await client.aclose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    n = 500 if parser.parse_args().quick else 4000
    times = asyncio.run(measure(n))
    p50 = {k: statistics.median(v) for k, v in times.items()}
    p95 = {k: statistics.quantiles(v, n=20)[-1] for k, v in times.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}, Python {platform.python_version()}")
    print("| arm | requests | p50 ms | p95 ms |\n|---|---|---|---|")
    for name in ("before", "after"):
        print(f"| {name} | {len(times[name])} | {p50[name]:.3f} | {p95[name]:.3f} |")
    print(f"\np50 overhead of metrics + JSON logging per run: "
          f"{p50['after'] - p50['before']:.3f} ms (target: under 0.3 ms)")


if __name__ == "__main__":
    main()

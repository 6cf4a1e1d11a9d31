"""Overhead of comfygen's endpoint over a direct ComfyUI client, on one model-free graph.

Both arms run EmptyImage(W x H, colour) -> ImageInvert -> SaveImage on the same real ComfyUI and
return the PNG as base64; the colour changes on every request so ComfyUI executes each one (it
caches identical prompts). Batches of the two arms alternate, at concurrency 1 and 16, at 512² and
1024². The comfygen arm is `server.main.serve` in a child process (uvicorn on loopback), attached
to that ComfyUI; the direct arm is a careful client in this process: POST /prompt with its own
prompt id, one shared websocket, /history, /view, base64.

    .venv/bin/python benchmarks/overhead.py            # a few minutes on 2 cores
    .venv/bin/python benchmarks/overhead.py --quick    # a smoke run, under a minute

It prints a markdown table (paste it into docs/performance.md) and stops by itself.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import ConfigDict, Field
from websockets.asyncio.client import connect

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home, free_port
from comfygen.runtime import Target, Workflow, WorkflowInput

SIZES = (512, 1024)
CONCURRENCY = (1, 16)

# -- the graph, shared by both arms ------------------------------------------------------------


def invert_graph(color: int, width: int, height: int, prefix: str = "bench") -> dict[str, Any]:
    """EmptyImage -> ImageInvert -> SaveImage."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


class InvertInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    color: Annotated[int, Field(ge=0, le=0xFFFFFF, description="Fill colour, 0xRRGGBB")] = 0
    width: Annotated[int, Field(ge=16, le=2048)] = 512
    height: Annotated[int, Field(ge=16, le=2048)] = 512


def _build(data: InvertInput) -> dict[str, Any]:
    return invert_graph(data.color, data.width, data.height)


WORKFLOW = Workflow(
    model="bench", name="invert", summary="Invert a solid image",
    description="EmptyImage → ImageInvert → SaveImage", input_model=InvertInput, builder=_build,
    graph=invert_graph(0, 512, 512),
    targets={"color": (Target("1", "color"),), "width": (Target("1", "width"),),
             "height": (Target("1", "height"),)},
    outputs=("3",), source="benchmarks/overhead.py",
)

# -- the comfygen arm: a server process --------------------------------------------------------


def serve_child(config: dict[str, Any]) -> None:
    """In the child process: serve the benchmark workflow (what `comfygen serve` runs)."""
    from server.main import serve
    from server.settings import Settings

    serve(Settings(**config), {WORKFLOW.path: WORKFLOW})


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    start_to_ready: float

    @classmethod
    def start(cls, comfy: ComfyUIProcess, log: Path, timeout: float = 60.0) -> ServerProcess:
        port = free_port()
        config = {
            "host": "127.0.0.1", "port": port, "log_level": "warning",
            "comfyui_url": comfy.url, "comfyui_output_dir": str(comfy.base_dir / "output"),
            "comfyui_temp_dir": str(comfy.base_dir / "temp"),
            "jobs_db": str(log.parent / "jobs.sqlite3"),
        }
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", json.dumps(config)], stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                cwd=log.parent,
            )
        deadline = t0 + timeout
        with httpx.Client(base_url=url, timeout=2, trust_env=False) as http:
            while True:
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the server exited with {proc.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/ready").status_code == 200:
                        break
                if time.perf_counter() > deadline:
                    proc.kill()
                    raise TimeoutError(f"the server was not ready after {timeout}s; see {log}")
                time.sleep(0.005)
        return cls(proc, url, time.perf_counter() - t0)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ComfygenArm:
    name = "comfygen"

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=url, timeout=120, trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self.phases: list[tuple[int, float, float, float, float]] = []
        """(size, latency - server total, preprocess, round trip, postprocess) in ms"""

    async def run(self, color: int, size: int) -> None:
        t0 = time.perf_counter()
        r = await self.http.post("/workflow/bench/invert",
                                 json={"input": {"color": color, "width": size, "height": size}})
        if r.status_code != 200:
            raise RuntimeError(f"comfygen answered {r.status_code}: {r.text[:500]}")
        body = r.json()
        if len(body["images"]) != 1 or not base64.b64decode(body["images"][0]).startswith(b"\x89PNG"):
            raise RuntimeError("comfygen returned no PNG")
        s = body["stats"]
        outside = (time.perf_counter() - t0) * 1000 - s["total_time"]
        self.phases.append((size, outside, s["preprocess_time"], s["comfy_round_trip"],
                            s["postprocess_time"]))

    async def close(self) -> None:
        await self.http.aclose()


# -- the direct arm: a well-written client of ComfyUI ------------------------------------------


class DirectArm:
    """POST /prompt (own prompt id), one shared websocket, /history, /view, base64."""

    name = "direct"

    def __init__(self, url: str, output_dir: Path) -> None:
        self.url = url
        self.output_dir = output_dir
        self.client_id = uuid.uuid4().hex
        self.http = httpx.AsyncClient(
            base_url=url, timeout=120, trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.phases: list[tuple[int, float, float]] = []  # (size, round trip, postprocess) ms
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        ws = await connect(ws_url, proxy=None, max_size=None)
        first = json.loads(await ws.recv())  # `status`: the socket is registered
        assert first["type"] == "status", first
        self.reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: Any) -> None:
        async with ws:
            async for raw in ws:
                if not isinstance(raw, str):
                    continue  # binary previews
                msg = json.loads(raw)
                data = msg.get("data") or {}
                future = self.waiting.get(str(data.get("prompt_id")))
                if future is None or future.done():
                    continue
                if msg["type"] == "execution_error":
                    future.set_exception(RuntimeError(data.get("exception_message")))
                elif msg["type"] == "executing" and data.get("node") is None:
                    future.set_result(None)  # sent after ComfyUI stored the history entry

    async def run(self, color: int, size: int) -> None:
        t0 = time.perf_counter()
        prompt_id = str(uuid.uuid4())
        done = self.waiting[prompt_id] = asyncio.get_running_loop().create_future()
        try:
            r = await self.http.post("/prompt", json={
                "prompt": invert_graph(color, size, size, prefix=prompt_id),
                "prompt_id": prompt_id, "client_id": self.client_id})
            r.raise_for_status()
            await done
        finally:
            del self.waiting[prompt_id]
        r = await self.http.get(f"/history/{prompt_id}")
        r.raise_for_status()
        t1 = time.perf_counter()
        files = r.json()[prompt_id]["outputs"]["3"]["images"]
        datas = await asyncio.gather(*(self.http.get("/view", params=f) for f in files))
        images = []
        for f, v in zip(files, datas, strict=True):
            v.raise_for_status()
            images.append(base64.b64encode(v.content).decode())
            (self.output_dir / f["subfolder"] / f["filename"]).unlink(missing_ok=True)
        if len(images) != 1:
            raise RuntimeError("ComfyUI returned no image")
        self.phases.append((size, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        await self.http.aclose()


# -- measuring ---------------------------------------------------------------------------------

COLORS = itertools.count(int.from_bytes(os.urandom(2)) * 256)  # a fresh colour per request


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def p(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] * 1000

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


async def batch(run: Callable[[int, int], Awaitable[None]], size: int, concurrency: int,
                requests: int, cell: Cell | None) -> None:
    """`requests` calls with `concurrency` in flight; record latencies and wall time."""
    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            t0 = time.perf_counter()
            await run(next(COLORS) % 0x1000000, size)
            if cell is not None:
                cell.latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if cell is not None:
        cell.seconds += time.perf_counter() - t0
        cell.requests += requests


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GB RAM"
    return (f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}")


async def measure(args: argparse.Namespace, comfy: ComfyUIProcess, server: ServerProcess
                  ) -> list[str]:
    comfygen, direct = ComfygenArm(server.url), DirectArm(comfy.url, comfy.base_dir / "output")
    arms = [comfygen, direct]
    await direct.start()
    try:
        for arm in arms:  # warm both paths (imports, pools, ComfyUI's first run)
            for size in SIZES:
                await batch(arm.run, size, 2, 4, None)
        floor = []
        for _ in range(100):  # one HTTP round trip through uvicorn and the middleware stack
            t0 = time.perf_counter()
            (await comfygen.http.get("/health")).raise_for_status()
            floor.append((time.perf_counter() - t0) * 1000)
        rows = []
        phases: dict[str, list[tuple[float, ...]]] = {"comfygen": [], "direct": []}
        for size in SIZES:
            for conc in CONCURRENCY:
                # concurrency 1: the arms alternate request by request (ABBA...), so both see
                # the same machine; 16: they alternate batches of two waves
                per_batch = 1 if conc == 1 else 2 * conc
                rounds = max(2, args.requests // per_batch) if conc == 1 else args.rounds
                cells = {arm.name: Cell() for arm in arms}
                comfygen.phases.clear()
                direct.phases.clear()
                for r in range(rounds):
                    for arm in (arms if r % 2 == 0 else arms[::-1]):
                        await batch(arm.run, size, conc, per_batch, cells[arm.name])
                rows.append((size, conc, cells))
                if conc == 1:
                    phases["comfygen"] += comfygen.phases
                    phases["direct"] += direct.phases
                c, d = cells["comfygen"], cells["direct"]
                print(f"  {size}² c={conc}: comfygen p50 {c.p(.5):.1f} ms, direct p50 "
                      f"{d.p(.5):.1f} ms", file=sys.stderr, flush=True)
    finally:
        for arm in arms:
            await arm.close()
    return table(rows) + breakdown(phases) + [
        "", f"- HTTP floor, `GET /health` on the server: p50 {statistics.median(floor):.2f} ms"]


def table(rows: list[tuple[int, int, dict[str, Cell]]]) -> list[str]:
    lines = ["| size | concurrency | arm | requests | p50 ms | p95 ms | req/s | p50 − direct "
             "| p50 ratio | throughput ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for size, conc, cells in rows:
        d = cells["direct"]
        for name in ("direct", "comfygen"):
            c = cells[name]
            extra = "| | | |" if name == "direct" else (
                f"| {c.p(.5) - d.p(.5):+.1f} ms | {c.p(.5) / d.p(.5):.3f} "
                f"| {c.throughput / d.throughput:.3f} |")
            lines.append(f"| {size}² | {conc} | {name} | {c.requests} | {c.p(.5):.1f} "
                         f"| {c.p(.95):.1f} | {c.throughput:.1f} {extra}")
    for size, conc, cells in rows:
        if conc == 1:
            paired = [a - b for a, b in zip(cells["comfygen"].latencies,
                                            cells["direct"].latencies, strict=False)]
            lines.append(f"\n- {size}², concurrency 1: median of paired differences (each "
                         f"comfygen request minus the direct one beside it) "
                         f"{statistics.median(paired) * 1000:+.1f} ms")
    return lines


def breakdown(phases: dict[str, list[tuple[float, ...]]]) -> list[str]:
    """Where a request's time goes at concurrency 1 (medians, ms)."""
    lines = ["", "At concurrency 1, medians in ms (comfygen's from its `stats`, whole ms):", "",
             "| size | arm | HTTP + validation + JSON outside the handler | before "
             "POST /prompt | POST /prompt → /history read | /view + base64 (+ cleanup) |",
             "|---|---|---|---|---|---|"]
    med = statistics.median
    for size in SIZES:
        d = [x for x in phases["direct"] if x[0] == size]
        c = [x for x in phases["comfygen"] if x[0] == size]
        if not (c and d):
            continue
        lines.append(f"| {size}² | direct | — | — | {med(x[1] for x in d):.1f} "
                     f"| {med(x[2] for x in d):.1f} |")
        lines.append(f"| {size}² | comfygen | {med(x[1] for x in c):.1f} "
                     f"| {med(x[2] for x in c):.0f} | {med(x[3] for x in c):.0f} "
                     f"| {med(x[4] for x in c):.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=80,
                        help="requests per arm per cell at concurrency 1")
    parser.add_argument("--rounds", type=int, default=10,
                        help="alternating batches per arm at concurrency 16 (32 requests each)")
    parser.add_argument("--quick", action="store_true", help="--requests 8 --rounds 2")
    args = parser.parse_args()
    if args.serve:
        serve_child(json.loads(args.serve))
        return
    if args.quick:
        args.requests, args.rounds = 8, 2

    with tempfile.TemporaryDirectory(prefix="comfygen-bench-") as tmp:
        base = Path(tmp)
        comfy = ComfyUIProcess.from_home(default_comfyui_home(), base / "comfyui")
        comfy.start()
        server = None
        try:
            comfy.wait_ready()
            load_before = os.getloadavg()
            server = ServerProcess.start(comfy, base / "server.log")
            time.sleep(2)
            idle_rss = server.rss_mb()
            started = time.perf_counter()
            lines = asyncio.run(measure(args, comfy, server))
            elapsed = time.perf_counter() - started
            loaded_rss = server.rss_mb()
        finally:
            if server is not None:
                server.stop()
            comfy.stop()
    load_after = os.getloadavg()
    print(f"Machine: {machine()}")
    print(f"Graph: EmptyImage → ImageInvert → SaveImage (PNG), ComfyUI 0.3.75 --cpu. Per size: "
          f"{args.requests} requests per arm at concurrency 1 (alternating one by one), "
          f"{args.rounds} alternating batches of 32 per arm at 16. Measured in {elapsed:.0f} s; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after.")
    print()
    print("\n".join(lines))
    print()
    print(f"- server start to ready (ComfyUI already up): {server.start_to_ready:.2f} s")
    print(f"- server RSS: {idle_rss:.0f} MB idle, {loaded_rss:.0f} MB after the run")


if __name__ == "__main__":
    main()

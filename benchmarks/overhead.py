"""Overhead of comfygen's endpoints over a direct ComfyUI client, on model-free graphs.

Every arm runs the same graph on the same real ComfyUI and returns the PNG as base64: EmptyImage
(W x H, colour) -> ImageInvert -> SaveImage at 512² and 1024², and EmptyImage -> ImageAddNoise ->
SaveImage at 1024² (a noisy PNG of about 2.4 MB; at concurrency 1 only). The colour (and the noise seed) changes on
every request so ComfyUI executes each one (it caches identical prompts). The arms alternate
request by request at concurrency 1 and batch by batch at 16, in a rotating order. The comfygen
arms are `server.main.serve` in a child process (uvicorn on loopback), attached to that ComfyUI,
called on the typed endpoint and on `/prompt`; the direct arm is a careful client in this
process: POST /prompt with its own prompt id, one shared websocket, /history, /view, base64.
With `--baseline DIR`, a second server runs the code of the source tree DIR (a checkout of an
earlier commit) as two more arms, "(before)", in the same run.

    .venv/bin/python benchmarks/overhead.py            # several minutes on 2 cores
    .venv/bin/python benchmarks/overhead.py --quick    # a smoke run, about a minute

It prints markdown tables (paste them into docs/performance.md) and stops by itself.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
from pydantic import ConfigDict, Field
from websockets.asyncio.client import connect

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home, free_port
from comfygen.runtime import Target, Workflow, WorkflowInput

CONCURRENCY = (1, 16)
PER_BATCH = 32  # requests per arm per batch at concurrency 16: two waves


@dataclass(frozen=True)
class Case:
    label: str
    size: int
    noise: float = 0.0  # > 0: ImageAddNoise instead of ImageInvert (a large, incompressible PNG)


CASES = (Case("512²", 512), Case("1024²", 1024), Case("1024² noisy", 1024, 0.5))

# -- the graph, shared by every arm ------------------------------------------------------------


def bench_graph(color: int, width: int, height: int, noise: float = 0.0,
                prefix: str = "bench") -> dict[str, Any]:
    """EmptyImage -> ImageInvert -> SaveImage, or with `noise` ImageAddNoise for ImageInvert."""
    second = ({"class_type": "ImageAddNoise",
               "inputs": {"image": ["1", 0], "seed": color, "strength": noise}} if noise else
              {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}})
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": width, "height": height, "batch_size": 1, "color": color}},
        "2": second,
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


class InvertInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    color: Annotated[int, Field(ge=0, le=0xFFFFFF, description="Fill colour, 0xRRGGBB")] = 0
    width: Annotated[int, Field(ge=16, le=2048)] = 512
    height: Annotated[int, Field(ge=16, le=2048)] = 512
    noise: Annotated[float, Field(ge=0, le=1, description="Noise strength; 0: invert")] = 0.0


def _build(data: InvertInput) -> dict[str, Any]:
    return bench_graph(data.color, data.width, data.height, data.noise)


WORKFLOW = Workflow(
    model="bench", name="invert", summary="Invert (or add noise to) a solid image",
    description="EmptyImage → ImageInvert (or ImageAddNoise) → SaveImage", input_model=InvertInput,
    builder=_build, graph=bench_graph(0, 512, 512),
    targets={"color": (Target("1", "color"),), "width": (Target("1", "width"),),
             "height": (Target("1", "height"),)},
    outputs=("3",), source="benchmarks/overhead.py",
)

# -- the comfygen arms: a server process -------------------------------------------------------


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
    log: Path

    @classmethod
    def start(cls, comfy: ComfyUIProcess, log: Path, source: Path | None = None,
              timeout: float = 60.0) -> ServerProcess:
        """Serve from this checkout, or from the source tree `source` (its code first on the
        path: the shared environment's editable install is not used)."""
        port = free_port()
        config = {
            "host": "127.0.0.1", "port": port, "log_level": "warning",
            "comfyui_url": comfy.url, "comfyui_output_dir": str(comfy.base_dir / "output"),
            "comfyui_temp_dir": str(comfy.base_dir / "temp"),
            "jobs_db": str(log.parent / f"jobs-{port}.sqlite3"),
        }
        env = dict(os.environ)
        root = source or Path(__file__).resolve().parent.parent
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(":")
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", json.dumps(config)], stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                cwd=log.parent, env=env,
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
        return cls(proc, url, time.perf_counter() - t0, log)

    def log_tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
"""Every arm's connection pool. Idle connections are dropped after 2 s, before a server closes
them: uvicorn does so after 5 s, which is also httpx's default. With equal timers, a connection
reused at the end of a phase (16 of them sat idle through the concurrency-1 phase) can race the
server's close and fail with ReadError."""


class ComfygenArm:
    """One comfygen endpoint: the typed workflow endpoint, or `/prompt` with the raw graph."""

    def __init__(self, name: str, server: ServerProcess, raw: bool) -> None:
        self.name = name
        self.server = server
        self.raw = raw
        self.http = httpx.AsyncClient(
            base_url=server.url, timeout=120, trust_env=False,
            limits=LIMITS)
        self.phases: list[tuple[str, float, float, float, float]] = []
        """(case, latency - server total, preprocess, round trip, postprocess) in ms"""

    async def run(self, color: int, case: Case) -> float:
        """One request; returns when its answer was complete (the checks after it are not part
        of the latency: a client of the direct arm would not pay for them either)."""
        t0 = time.perf_counter()
        if self.raw:
            r = await self.http.post("/prompt", json={
                "prompt": bench_graph(color, case.size, case.size, case.noise)})
        else:
            r = await self.http.post("/workflow/bench/invert", json={"input": {
                "color": color, "width": case.size, "height": case.size, "noise": case.noise}})
        done = time.perf_counter()
        if r.status_code != 200:
            raise RuntimeError(f"{self.name} answered {r.status_code}: {r.text[:500]}")
        body = orjson.loads(r.content)
        if len(body["images"]) != 1 or not base64.b64decode(body["images"][0][:12]).startswith(
                b"\x89PNG"):
            raise RuntimeError(f"{self.name} returned no PNG")
        s = body["stats"]
        outside = (done - t0) * 1000 - s["total_time"]
        self.phases.append((case.label, outside, s["preprocess_time"], s["comfy_round_trip"],
                            s["postprocess_time"]))
        return done

    async def close(self) -> None:
        await self.http.aclose()


# -- the direct arm: a well-written client of ComfyUI ------------------------------------------


class DirectArm:
    """POST /prompt (own prompt id), one shared websocket, /history, /view, base64."""

    name = "direct"
    server = None

    def __init__(self, url: str, output_dir: Path) -> None:
        self.url = url
        self.output_dir = output_dir
        self.client_id = uuid.uuid4().hex
        self.http = httpx.AsyncClient(
            base_url=url, timeout=120, trust_env=False,
            limits=LIMITS)
        self.waiting: dict[str, asyncio.Future[None]] = {}
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

    async def run(self, color: int, case: Case) -> float:
        prompt_id = str(uuid.uuid4())
        done = self.waiting[prompt_id] = asyncio.get_running_loop().create_future()
        try:
            r = await self.http.post("/prompt", json={
                "prompt": bench_graph(color, case.size, case.size, case.noise, prefix=prompt_id),
                "prompt_id": prompt_id, "client_id": self.client_id})
            r.raise_for_status()
            await done
        finally:
            del self.waiting[prompt_id]
        r = await self.http.get(f"/history/{prompt_id}")
        r.raise_for_status()
        files = r.json()[prompt_id]["outputs"]["3"]["images"]
        datas = await asyncio.gather(*(self.http.get("/view", params=f) for f in files))
        images = []
        for f, v in zip(files, datas, strict=True):
            v.raise_for_status()
            images.append(base64.b64encode(v.content).decode())
            (self.output_dir / f["subfolder"] / f["filename"]).unlink(missing_ok=True)
        done = time.perf_counter()
        if len(images) != 1:
            raise RuntimeError("ComfyUI returned no image")
        return done

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        await self.http.aclose()


Arm = ComfygenArm | DirectArm

# -- measuring ---------------------------------------------------------------------------------

COLORS = itertools.count(int.from_bytes(os.urandom(2)) * 256)  # a fresh colour per request


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    steady_requests: int = 0  # completions after the first one of each batch
    steady_seconds: float = 0.0  # first to last completion of each batch
    batch_rates: list[float] = field(default_factory=list)  # req/s of each batch, in pass order
    cpu: float = 0.0  # server CPU seconds during the batches

    def p(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] * 1000

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def steady(self) -> float:
        return self.steady_requests / self.steady_seconds


async def batch(arm: Arm, case: Case, concurrency: int, requests: int, cell: Cell | None) -> None:
    """`requests` calls with `concurrency` in flight; record latencies and wall time."""
    left = iter(range(requests))
    completions: list[float] = []

    async def worker() -> None:
        for _ in left:
            t0 = time.perf_counter()
            completions.append(await arm.run(next(COLORS) % 0x1000000, case))
            if cell is not None:
                cell.latencies.append(completions[-1] - t0)

    cpu0 = arm.server.cpu_seconds() if arm.server is not None else 0.0
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    if cell is not None:
        cell.seconds += seconds
        cell.requests += requests
        cell.batch_rates.append(requests / seconds)
        if requests > 1:
            cell.steady_requests += requests - 1
            cell.steady_seconds += max(completions) - min(completions)
        if arm.server is not None:
            cell.cpu += arm.server.cpu_seconds() - cpu0


def rotated(arms: list[Arm], r: int) -> list[Arm]:
    """The arms in a different order each round, so each takes every position in turn."""
    k = r % len(arms)
    return arms[k:] + arms[:k]


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


Rows = list[tuple[Case, int, dict[str, Cell]]]


async def measure(args: argparse.Namespace, comfy: ComfyUIProcess,
                  servers: dict[str, ServerProcess]) -> list[str]:
    direct = DirectArm(comfy.url, comfy.base_dir / "output")
    arms: list[Arm] = [direct]
    for suffix, server in servers.items():
        arms += [ComfygenArm(f"typed{suffix}", server, raw=False),
                 ComfygenArm(f"/prompt{suffix}", server, raw=True)]
    await direct.start()
    try:
        for arm in arms:  # warm every path (imports, pools, ComfyUI's first run)
            for case in CASES:
                await batch(arm, case, 2, 4, None)
        floor = []
        async with httpx.AsyncClient(base_url=servers[""].url, trust_env=False) as http:
            for _ in range(100):  # one HTTP round trip through uvicorn and the middleware stack
                t0 = time.perf_counter()
                (await http.get("/health")).raise_for_status()
                floor.append((time.perf_counter() - t0) * 1000)
        rows: Rows = []
        for case in CASES:
            for conc in CONCURRENCY if not case.noise else (1,):  # noisy: its latency only
                # concurrency 1: the arms take turns request by request; 16: batch by batch
                cells = {arm.name: Cell() for arm in arms}
                rounds = args.rounds if conc > 1 else (
                    max(4, args.requests // 2) if case.noise else args.requests)
                for r in range(rounds):
                    for arm in rotated(arms, r):
                        await batch(arm, case, conc, 1 if conc == 1 else PER_BATCH,
                                    cells[arm.name])
                rows.append((case, conc, cells))
                d = cells["direct"]
                print(f"  {case.label} c={conc}: direct p50 {d.p(.5):.1f} ms; " + ", ".join(
                    f"{n} {c.p(.5) - d.p(.5):+.1f} ms {c.throughput / d.throughput:.3f}x"
                    for n, c in cells.items() if n != "direct"), file=sys.stderr, flush=True)
        soak = await soak_cells(arms, args.soak) if args.soak else None
    finally:
        for arm in arms:
            await arm.close()
    phases = {arm.name: arm.phases for arm in arms if isinstance(arm, ComfygenArm)}
    return (table(rows) + paired(rows) + estimators(rows) + breakdown(phases)
            + (soak_table(soak, args.soak) if soak else [])
            + ["", f"- HTTP floor, `GET /health` on the server: p50 "
                   f"{statistics.median(floor):.2f} ms"])


async def soak_cells(arms: list[Arm], seconds: float) -> dict[str, Cell]:
    """512², concurrency 1, the arms taking turns for `seconds`: what a periodic stall does to
    the tail (comfygen used to refresh /object_info every 10 s)."""
    cells = {arm.name: Cell() for arm in arms}
    deadline = time.perf_counter() + seconds
    r = 0
    while time.perf_counter() < deadline:
        for arm in rotated(arms, r):
            await batch(arm, CASES[0], 1, 1, cells[arm.name])
        r += 1
    return cells


def table(rows: Rows) -> list[str]:
    lines = ["| size | concurrency | arm | requests | p50 ms | p95 ms | p99 ms | req/s "
             "| p50 − direct | p99 ratio | throughput ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, conc, cells in rows:
        d = cells["direct"]
        for name, c in cells.items():
            extra = "| | | |" if name == "direct" else (
                f"| {c.p(.5) - d.p(.5):+.1f} ms | {c.p(.99) / d.p(.99):.2f} "
                f"| {c.throughput / d.throughput:.3f} |")
            lines.append(f"| {case.label} | {conc} | {name} | {c.requests} | {c.p(.5):.1f} "
                         f"| {c.p(.95):.1f} | {c.p(.99):.1f} | {c.throughput:.1f} {extra}")
    return lines


def paired(rows: Rows) -> list[str]:
    lines = [""]
    for case, conc, cells in rows:
        if conc != 1:
            continue
        d = cells["direct"].latencies
        parts = [f"{name} {statistics.median(a - b for a, b in zip(c.latencies, d, strict=False)) * 1000:+.1f} ms"
                 for name, c in cells.items() if name != "direct"]
        lines.append(f"- {case.label}, concurrency 1: median of paired differences (each "
                     f"request minus the direct one of the same round): {', '.join(parts)}")
    return lines


def estimators(rows: Rows) -> list[str]:
    """Throughput at concurrency 16 against the direct client, three ways, and server CPU."""
    lines = ["", "At concurrency 16, throughput over the direct client's: aggregate (all requests "
             "over all batch time), steady (first to last completion of each batch, so no ramp-up"
             " or drain), block median (median of the per-round ratios of adjacent batches); and "
             "the server's CPU time per request:", "",
             "| size | arm | rounds | aggregate | steady | block median | server CPU ms/request |",
             "|---|---|---|---|---|---|---|"]
    for case, conc, cells in rows:
        if conc == 1:
            continue
        d = cells["direct"]
        for name, c in cells.items():
            if name == "direct":
                continue
            blocks = statistics.median(a / b for a, b in zip(c.batch_rates, d.batch_rates,
                                                             strict=True))
            lines.append(f"| {case.label} | {name} | {len(c.batch_rates)} "
                         f"| {c.throughput / d.throughput:.3f} | {c.steady / d.steady:.3f} "
                         f"| {blocks:.3f} | {c.cpu / c.requests * 1000:.2f} |")
    return lines


def breakdown(phases: dict[str, list[tuple[str, float, float, float, float]]]) -> list[str]:
    """Where a request's time goes (medians over every run, ms)."""
    lines = ["", "Medians in ms over all requests (comfygen's from its `stats`, whole ms):", "",
             "| size | arm | HTTP + validation + JSON outside the handler | before "
             "POST /prompt | POST /prompt → outputs listed | outputs read + base64 (+ cleanup) |",
             "|---|---|---|---|---|---|"]
    med = statistics.median
    for case in CASES:
        for name, xs in phases.items():
            c = [x for x in xs if x[0] == case.label]
            if c:
                lines.append(f"| {case.label} | {name} | {med(x[1] for x in c):.1f} "
                             f"| {med(x[2] for x in c):.0f} | {med(x[3] for x in c):.0f} "
                             f"| {med(x[4] for x in c):.0f} |")
    return lines


def soak_table(cells: dict[str, Cell], seconds: float) -> list[str]:
    d = cells["direct"]
    lines = ["", f"512², concurrency 1, arms taking turns for {seconds:.0f} s (a periodic stall "
             "shows in p99 and max):", "",
             "| arm | requests | p50 ms | p99 ms | max ms | over 50 ms | p99 ratio |",
             "|---|---|---|---|---|---|---|"]
    for name, c in cells.items():
        slow = sum(1 for x in c.latencies if x > 0.05)
        lines.append(f"| {name} | {c.requests} | {c.p(.5):.1f} | {c.p(.99):.1f} "
                     f"| {max(c.latencies) * 1000:.1f} | {slow} | {c.p(.99) / d.p(.99):.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=80,
                        help="requests per arm per size at concurrency 1")
    parser.add_argument("--rounds", type=int, default=10,
                        help=f"alternating batches per arm at concurrency 16 ({PER_BATCH} each)")
    parser.add_argument("--soak", type=float, default=60.0,
                        help="seconds of the 512² concurrency-1 tail run (0: none)")
    parser.add_argument("--baseline", type=Path,
                        help="also serve this source tree (an earlier checkout) as '(before)'")
    parser.add_argument("--quick", action="store_true", help="--requests 8 --rounds 2 --soak 0")
    args = parser.parse_args()
    if args.serve:
        serve_child(json.loads(args.serve))
        return
    if args.quick:
        args.requests, args.rounds, args.soak = 8, 2, 0.0

    with tempfile.TemporaryDirectory(prefix="comfygen-bench-") as tmp:
        base = Path(tmp)
        comfy = ComfyUIProcess.from_home(default_comfyui_home(), base / "comfyui")
        comfy.start()
        servers: dict[str, ServerProcess] = {}
        try:
            comfy.wait_ready()
            load_before = os.getloadavg()
            servers[""] = ServerProcess.start(comfy, base / "server.log")
            if args.baseline:
                servers[" (before)"] = ServerProcess.start(comfy, base / "before.log",
                                                           args.baseline.resolve())
            time.sleep(2)
            idle_rss = servers[""].rss_mb()
            started = time.perf_counter()
            try:
                lines = asyncio.run(measure(args, comfy, servers))
            except Exception:
                # what the servers said (and whether they are still alive) before the logs go
                for name, server in servers.items():
                    state = server.proc.poll()
                    print(f"--- server{name}: {'running' if state is None else f'exited {state}'}"
                          f"; the end of its log:\n{server.log_tail()}", file=sys.stderr)
                raise
            elapsed = time.perf_counter() - started
            loaded_rss = servers[""].rss_mb()
        finally:
            for server in servers.values():
                server.stop()
            comfy.stop()
    load_after = os.getloadavg()
    print(f"Machine: {machine()}")
    print(f"Graphs: EmptyImage → ImageInvert → SaveImage (PNG) at 512² and 1024², EmptyImage → "
          f"ImageAddNoise → SaveImage at 1024² (noisy); ComfyUI 0.3.75 --cpu. Per size: "
          f"{args.requests} requests per arm at concurrency 1 (taking turns one by one; half that "
          f"for the noisy PNG), "
          f"{args.rounds} rounds of batches of {PER_BATCH} per arm at 16. Measured in "
          f"{elapsed:.0f} s; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after.")
    print()
    print("\n".join(lines))
    print()
    server = servers[""]
    print(f"- server start to ready (ComfyUI already up): {server.start_to_ready:.2f} s")
    print(f"- server RSS: {idle_rss:.0f} MB idle, {loaded_rss:.0f} MB after the run")


if __name__ == "__main__":
    main()

"""Faults: websocket cut, ComfyUI SIGKILLed mid-request, SIGTERM drain, 200 concurrent requests."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from server.app import create_app
from server.settings import Settings
from tests.comfyui_testing import TcpProxy, invert_graph, rgb, slow_graph
from tests.jobs_api.live import live

from .helpers import running, settings_for
from .server_workflows import registry

pytestmark = pytest.mark.comfyui
ROOT = Path(__file__).resolve().parents[2]


async def test_websocket_cut_does_not_hang(make_settings: Callable[..., Settings],
                                           comfyui: ComfyUIProcess) -> None:
    proxy = await TcpProxy(comfyui.host, comfyui.port).start()
    settings = make_settings(comfyui_url=proxy.url, fast_poll_interval=0.3)
    try:
        async with running(create_app(settings, registry())) as http:
            request = asyncio.create_task(http.post("/prompt", json={
                "prompt": slow_graph(blurs=3, color=random.randrange(99999))}))
            await asyncio.sleep(0.4)
            proxy.block_websocket = True
            proxy.cut()
            t0 = time.monotonic()
            await asyncio.sleep(0.2)
            ready = await http.get("/ready")
            assert ready.status_code == 503 and "websocket" in ready.json()["reason"]
            r = await asyncio.wait_for(request, 30)
            assert r.status_code == 200, r.text
            assert r.json()["outputs"]["99"]["files"][0]["type"] == "temp"
            assert time.monotonic() - t0 < 15
            assert proxy.websocket_refusals >= 1
            proxy.block_websocket = False
            await asyncio.sleep(0.5)
            assert (await http.get("/ready")).status_code in (200, 503)
            from .helpers import wait_ready
            await wait_ready(http, timeout=15)
    finally:
        await proxy.stop()


async def test_200_concurrent_requests(comfyui: ComfyUIProcess) -> None:
    """200 requests at once over real sockets to a uvicorn server: all succeed, each with its
    own image (every request has its own colour, so ComfyUI really runs each one)."""
    colors = random.sample(range(0xFFFFFF), 200)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with live(create_app(settings_for(comfyui), registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        t0 = time.monotonic()
        responses = await asyncio.gather(*(
            http.post("/workflow/test/invert", json={"input": {"color": c, "size": 4},
                                                     "id": f"c{i}"})
            for i, c in enumerate(colors)))
        elapsed = time.monotonic() - t0
    for i, (color, r) in enumerate(zip(colors, responses, strict=True)):
        assert r.status_code == 200, r.text
        assert r.json()["id"] == f"c{i}" and r.json()["filenames"][0].startswith(f"c{i}_")
        img = Image.open(io.BytesIO(base64.b64decode(r.json()["images"][0]))).convert("RGB")
        expected = tuple(255 - v for v in rgb(color))
        assert all(abs(a - b) <= 1 for a, b in zip(img.getpixel((1, 1)), expected, strict=True))
    print(f"\n200 concurrent requests over uvicorn: {elapsed:.2f}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


async def _wait_ready(http: httpx.AsyncClient, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await http.get("/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("server not ready in time")


async def test_sigkill_restart_then_sigterm_drains(comfyui_home: Path, tmp_path: Path) -> None:
    """`serve()` in a child process launching its own ComfyUI: crash, restart, drain, no orphan."""
    port = free_port()
    env = {**os.environ, "COMFYGEN_PORT": str(port), "COMFYGEN_COMFYUI_HOME": str(comfyui_home),
           "COMFYGEN_COMFYUI_BASE_DIR": str(tmp_path / "base"),
           "COMFYGEN_JOBS_DB": str(tmp_path / "jobs.sqlite3"), "COMFYGEN_DRAIN_TIMEOUT": "30",
           "COMFYGEN_FAST_POLL_INTERVAL": "0.3", "COMFYGEN_LOG_LEVEL": "warning"}
    server = subprocess.Popen([sys.executable, "-m", "server.main"], cwd=ROOT, env=env,
                              stdout=open(tmp_path / "server.log", "wb"), stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            await _wait_ready(http, 90)
            first = (await http.get("/health")).json()["comfyui"]["pid"]

            # SIGKILL ComfyUI while a request runs: a clear 503 within seconds
            slow = asyncio.create_task(http.post("/prompt", json={"prompt": slow_graph(blurs=12)}))
            await asyncio.sleep(1.0)
            os.kill(first, signal.SIGKILL)
            t0 = time.monotonic()
            r = await asyncio.wait_for(slow, 15)
            took = time.monotonic() - t0
            assert r.status_code == 503, r.text
            assert r.json()["type"] == "comfyui_unavailable" and "exited" in r.json()["error"]
            assert r.headers["retry-after"]
            assert took < 5, took
            print(f"\nrequest failed {took:.2f}s after SIGKILL")
            assert (await http.get("/ready")).status_code == 503
            t1 = time.monotonic()
            await _wait_ready(http, 90)
            print(f"ComfyUI back and ready {time.monotonic() - t1:.1f}s later")
            health = (await http.get("/health")).json()["comfyui"]
            assert health["restarts"] == 1 and health["pid"] != first
            second = health["pid"]
            r = await http.post("/prompt", json={"prompt": invert_graph(0x123456)})
            assert r.status_code == 200

            # SIGTERM: the in-flight request completes, then the child stops
            slow = asyncio.create_task(http.post("/prompt", json={
                "prompt": slow_graph(blurs=3, color=7)}))
            await asyncio.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            r = await asyncio.wait_for(slow, 60)
            assert r.status_code == 200, r.text
        assert server.wait(40) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its drain
        deadline = time.monotonic() + 10
        while _alive(second) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not _alive(second), "ComfyUI outlived the server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

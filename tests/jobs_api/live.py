"""Helpers shared by the jobs, fuzz and CLI tests: settings on the session ComfyUI, a live server."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from server.settings import Settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def settings_for(comfyui: ComfyUIProcess, **overrides: Any) -> Settings:
    """Settings attached to the session ComfyUI, with a fresh job database unless given one."""
    values: dict[str, Any] = {
        "comfyui_url": comfyui.url, "comfyui_output_dir": comfyui.base_dir / "output",
        "comfyui_temp_dir": comfyui.base_dir / "temp", "webhook_secret": SECRET,
        "webhook_allow_cidrs": "127.0.0.0/8", "media_allow_cidrs": "127.0.0.0/8",
        "webhook_backoff": 0.2, "object_info_ttl": 30,
        "jobs_db": Path(tempfile.mkdtemp(prefix="comfygen-jobs-")) / "jobs.sqlite3",
    }
    values.update(overrides)
    return Settings(**values)


async def wait_ready(http: httpx.AsyncClient, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while (await http.get("/ready")).status_code != 200:
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def live(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port (in this event loop); yield its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await wait_ready(http)
        yield url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def sse(http: httpx.AsyncClient, url: str, **kwargs: Any) -> list[tuple[str, dict]]:
    """Every (event, data) of an event stream until the server ends it."""
    import json

    events: list[tuple[str, dict]] = []
    async with http.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                events.append((kind, json.loads(data)))
                kind, data = "message", ""
    return events

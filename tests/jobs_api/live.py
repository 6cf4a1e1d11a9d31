"""Helpers shared by the jobs, fuzz and CLI tests: settings on the session ComfyUI, a live server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from tests.server.helpers import SECRET, settings_for, wait_ready

__all__ = ["SECRET", "comfy_queue", "live", "settings_for", "sse", "wait_state"]

@contextlib.asynccontextmanager
async def live(app: FastAPI, **config: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port (in this event loop); yield its URL.
    `config`: more uvicorn.Config options (a log configuration, say)."""
    from server.main import CoalescingProtocol

    port = free_port()
    options = {"log_level": "warning", "http": CoalescingProtocol, **config}  # as `serve` does
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           timeout_graceful_shutdown=5, **options))
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


async def wait_state(http: httpx.AsyncClient, job_id: str, states: set[str],
                     timeout: float = 60) -> dict:
    """Poll `/jobs/{id}` until the job is in one of `states`; its view."""
    async with asyncio.timeout(timeout):
        while True:
            job = (await http.get(f"/jobs/{job_id}")).json()
            if job["state"] in states:
                return job
            await asyncio.sleep(0.05)


async def comfy_queue(comfyui: ComfyUIProcess) -> dict:
    """ComfyUI's own `/queue`."""
    async with httpx.AsyncClient(base_url=comfyui.url) as comfy:
        return (await comfy.get("/queue")).json()

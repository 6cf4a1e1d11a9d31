"""Helpers shared by the server, jobs, fuzz and CLI tests: settings attached to the session
ComfyUI, and a running app behind an in-process client."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from comfygen.comfy.launcher import ComfyUIProcess
from server.settings import Settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"



async def wait_ready(http: httpx.AsyncClient, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await http.get("/ready")
        if r.status_code == 200:
            return
        assert asyncio.get_running_loop().time() < deadline, r.json()
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running(app: FastAPI, ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api",
                                     timeout=60) as http:
            if ready:
                await wait_ready(http)
            yield http


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def settings_for(comfyui: ComfyUIProcess, **overrides: Any) -> Settings:
    """Settings attached to the session ComfyUI, with a fresh job database unless given one."""
    values: dict[str, Any] = {
        "comfyui_url": comfyui.url, "comfyui_output_dir": comfyui.base_dir / "output",
        "comfyui_temp_dir": comfyui.base_dir / "temp",
        "comfyui_input_dir": comfyui.base_dir / "input", "webhook_secret": SECRET,
        "webhook_allow_cidrs": "127.0.0.0/8", "media_allow_cidrs": "127.0.0.0/8",
        "webhook_backoff": 0.2, "object_info_ttl": 30,
        "jobs_db": Path(tempfile.mkdtemp(prefix="comfygen-jobs-")) / "jobs.sqlite3",
    }
    values.update(overrides)
    return Settings(**values)

"""Helpers shared by the server tests: a running app behind an in-process client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

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

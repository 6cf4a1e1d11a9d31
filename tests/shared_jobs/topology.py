"""2 API replicas + 2 workers (each on its own ComfyUI) around one Valkey, on loopback."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings
from tests.jobs_api.live import live, settings_for
from tests.shared_jobs.valkey import Valkey

ASYNC = {"Prefer": "respond-async"}


@dataclass
class Topology:
    prefix: str
    api: list[httpx.AsyncClient]
    workers: list[str]
    settings: Settings


def shared_settings(comfyui: ComfyUIProcess, valkey: Valkey, prefix: str, role: str,
                    **overrides: Any) -> Settings:
    return settings_for(comfyui, redis_url=valkey.url, redis_prefix=prefix, role=role,
                        **overrides)


@contextlib.asynccontextmanager
async def topology(valkey: Valkey, comfyuis: list[ComfyUIProcess], *, apis: int = 2,
                   api_comfyui: ComfyUIProcess | None = None,
                   registry: dict[str, Any] | None = None,
                   **overrides: Any) -> AsyncIterator[Topology]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for comfy in comfyuis:
            settings = shared_settings(comfy, valkey, prefix, "worker", **overrides)
            workers.append(await stack.enter_async_context(
                live(create_app(settings, registry or {}))))
        clients = []
        # an API replica never contacts a ComfyUI; settings_for just needs one for its paths
        settings = shared_settings(api_comfyui or comfyuis[0], valkey, prefix, "api",
                                   **overrides)
        for _ in range(apis):
            url = await stack.enter_async_context(live(create_app(settings, registry or {})))
            clients.append(await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=60)))
        yield Topology(prefix, clients, workers, settings)

"""ComfyUI's `/object_info`, fetched once and parsed once into `NodeDefs`, kept fresh off the
request path: a stale copy is answered at once while a background task refreshes it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from comfygen.comfy.errors import ComfyError
from comfygen.nodedefs import NodeDefs

T = TypeVar("T")

DEFAULT_TTL = 10.0
"""Seconds a copy is fresh; older copies are still answered while a refresh runs."""


class ObjectInfoCache:
    """The live node definitions of one ComfyUI: `get()` to read, `latest` for the last copy."""

    def __init__(self, fetch: Callable[[], Awaitable[bytes]], ttl: float = DEFAULT_TTL) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._nodedefs: NodeDefs | None = None
        self._at = 0.0
        self._digest = ""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def latest(self) -> NodeDefs | None:
        """The last copy fetched (no I/O), or None before the first fetch."""
        return self._nodedefs

    @property
    def digest(self) -> str:
        """sha256 of the last `/object_info` body: it changes when models or nodes change."""
        return self._digest

    async def get(self, refresh: bool = False) -> NodeDefs:
        """The node definitions; `refresh=True` fetches now (a miss in the cache calls for it)."""
        if self._nodedefs is not None and not refresh:
            stale = time.monotonic() - self._at >= self.ttl
            if stale and (self._task is None or self._task.done()):
                self._task = asyncio.create_task(self._refresh_quietly(), name="comfy-object-info")
            return self._nodedefs
        async with self._lock:
            if self._nodedefs is None or refresh:
                await self._load()
            assert self._nodedefs is not None
            return self._nodedefs

    async def lookup(self, check: Callable[[NodeDefs], list[T]]) -> list[T]:
        """`check` against the cached definitions; when it finds something, once more against a
        fresh copy (a model installed a moment ago is not a miss)."""
        found = check(await self.get())
        if found:
            found = check(await self.get(refresh=True))
        return found

    async def close(self) -> None:
        """Stop a refresh in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _load(self) -> None:
        body = await self._fetch()
        self._digest = hashlib.sha256(body).hexdigest()
        self._nodedefs = NodeDefs.from_json(body)
        self._at = time.monotonic()

    async def _refresh_quietly(self) -> None:
        async with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return  # someone refreshed it meanwhile
            with contextlib.suppress(ComfyError):  # ComfyUI away: keep the last known copy
                await self._load()

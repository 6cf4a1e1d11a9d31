"""ComfyUI's `/object_info`, fetched and parsed into `NodeDefs` only when something can have
changed, never on the request path and never on a timer.

A copy is fetched once at start. After that it is fetched again only:

- when a check finds a value missing from it (`lookup`: a model installed a moment ago is not a
  miss): the one refresh a request waits for, and only a request that would fail without it;
- when the websocket reconnects (ComfyUI restarted, or came back: nodes or models may differ);
- when ComfyUI's model lists change (`watch`: a cheap check of `/models/{folder}`, one small
  request at a time, every `interval` seconds).

A refresh fetches the body on the loop (network I/O) and hashes and parses it in a worker thread;
a body whose digest did not change is not parsed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from comfygen.comfy.errors import ComfyError
from comfygen.nodedefs import NodeDefs

T = TypeVar("T")

log = logging.getLogger("comfygen.comfy")

DEFAULT_TTL = 10.0
"""Seconds between checks of ComfyUI's model lists (0: no checks)."""


class ObjectInfoCache:
    """The live node definitions of one ComfyUI: `get()` to read, `latest` for the last copy."""

    def __init__(self, fetch: Callable[[], Awaitable[bytes]]) -> None:
        self._fetch = fetch
        self._nodedefs: NodeDefs | None = None
        self._digest = ""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False

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

    def invalidate(self) -> None:
        """Something may have changed: refresh in the background (the cached copy answers
        meanwhile). Nothing to do before the first copy: `get()` fetches it."""
        if self._nodedefs is None:
            return
        if self._task is not None and not self._task.done():
            self._again = True  # it may have fetched before the change: once more after it
            return
        self._task = asyncio.create_task(self._refresh_quietly(), name="comfy-object-info")

    async def watch(self, signature: Callable[[], Awaitable[str]], interval: float) -> None:
        """Every `interval` seconds, compare `signature()` (a digest of the model lists) with
        the last one, and refresh when it changed. Runs until cancelled."""
        last: str | None = None
        while True:
            with contextlib.suppress(ComfyError):  # ComfyUI away: the reconnect refreshes
                current = await signature()
                if last is not None and current != last:
                    log.info("ComfyUI's model lists changed: refreshing /object_info")
                    self.invalidate()
                last = current
            await asyncio.sleep(interval)

    async def close(self) -> None:
        """Stop a refresh in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _load(self) -> None:
        body = await self._fetch()
        digest, nodedefs = await asyncio.to_thread(_parse, body, self._digest)
        if nodedefs is not None:
            self._digest, self._nodedefs = digest, nodedefs

    async def _refresh_quietly(self) -> None:
        while True:
            self._again = False
            async with self._lock:
                with contextlib.suppress(ComfyError):  # ComfyUI away: keep the last known copy
                    await self._load()
            if not self._again:
                return


def _parse(body: bytes, digest: str) -> tuple[str, NodeDefs | None]:
    """In a worker thread: the body's digest, and its definitions unless the digest is `digest`."""
    new = hashlib.sha256(body).hexdigest()
    return new, (None if new == digest else NodeDefs.from_json(body))

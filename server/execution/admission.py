"""Admission control: 429 with Retry-After instead of piling work onto a full ComfyUI queue."""

from __future__ import annotations

import asyncio
import time

from comfygen.comfy.errors import ComfyError
from comfygen.comfy.supervisor import Supervisor
from server.errors import ApiError


class Admission:
    """Counts this server's runs in flight and compares them and ComfyUI's queue to a limit.

    ComfyUI's queue is read at most once per `refresh` seconds, so admission costs no round trip
    on most requests; the local count is exact, so a burst from this server is never let through.
    """

    def __init__(self, supervisor: Supervisor, limit: int, retry_after: int,
                 refresh: float = 1.0) -> None:
        self.supervisor = supervisor
        self.limit = limit
        self.retry_after = retry_after
        self.refresh = refresh
        self.active = 0
        self._remote = 0
        self._read_at = -1e9
        self._lock = asyncio.Lock()

    async def depth(self) -> int:
        """Prompts waiting or running: the larger of ours in flight and ComfyUI's queue."""
        if time.monotonic() - self._read_at >= self.refresh and not self._lock.locked():
            async with self._lock:
                try:
                    self._remote = (await self.supervisor.client.queue()).size
                except ComfyError:
                    self._remote = 0  # the run itself will answer 503
                self._read_at = time.monotonic()
        return max(self.active, self._remote)

    async def acquire(self) -> Slot:
        """Take a slot or raise 429; release it by leaving its `async with` block."""
        if self.limit:
            depth = await self.depth()
            if depth >= self.limit:
                raise ApiError(
                    429, "queue_full",
                    f"ComfyUI's queue is full ({depth} prompts waiting or running, limit "
                    f"{self.limit}); retry after {self.retry_after} s",
                    headers={"Retry-After": str(self.retry_after)}, queue=depth, limit=self.limit,
                )
        self.active += 1
        return Slot(self)


class Slot:
    """One run's place in the admission count. Released once, by the `async with` block that
    holds it; `hand_over()` gives it to another holder (a background job) instead."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def hand_over(self) -> Slot:
        """A slot that now holds this place; leaving this one's block no longer releases it."""
        admission, self._admission = self._admission, None
        if admission is None:
            raise RuntimeError("this admission slot was already released or handed over")
        return Slot(admission)

    def release(self) -> None:
        if self._admission is not None:
            self._admission.active -= 1
            self._admission = None

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

"""Keep one ComfyUI available: launch it as a child (or attach to a URL), watch it, restart it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import httpx

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.errors import ComfyError, ComfyUnavailableError
from comfygen.comfy.launcher import ComfyUIProcess

log = logging.getLogger("comfygen.supervisor")


class State(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DOWN = "down"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class Supervisor:
    """Owns the ComfyUI connection: `client` stays the same object across restarts."""

    def __init__(
        self,
        *,
        url: str | None = None,
        process: ComfyUIProcess | None = None,
        warmup: Mapping[str, Any] | None = None,
        restart: bool = True,
        startup_timeout: float = 180.0,
        check_interval: float = 0.25,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if (url is None) == (process is None):
            raise ValueError("give exactly one of `url` (attach) or `process` (launch)")
        self.process = process
        self.url = url or process.url  # type: ignore[union-attr]
        self.warmup = warmup
        self.restart = restart
        self.startup_timeout = startup_timeout
        self.check_interval = check_interval
        self.client = ComfyClient(self.url, **dict(client_options or {}))
        self.state = State.STARTING
        self.warm = False  # reached READY at least once
        self.restarts = 0
        self.last_error: str | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def ready(self) -> bool:
        """ComfyUI is up and the shared websocket is connected."""
        return self.state == State.READY and self.client.connected

    def check_available(self) -> None:
        """Raise ComfyUnavailableError unless ComfyUI can take work now."""
        if self.state != State.READY:
            why = f": {self.last_error}" if self.last_error else ""
            raise ComfyUnavailableError(f"ComfyUI is {self.state.value}{why}")

    async def start(self) -> None:
        """Launch or reach ComfyUI, open the client, run the warmup; then watch it."""
        await self.client.start()
        await self._bring_up()
        self._monitor = asyncio.create_task(self._watch(), name="comfy-supervisor")

    async def start_in_background(self) -> asyncio.Task[None]:
        """Like `start` without blocking; failures are recorded in `last_error`."""
        async def run() -> None:
            try:
                await self.start()
            except Exception as exc:  # noqa: BLE001 - reported through readiness
                self.state = State.DOWN
                self.last_error = f"startup failed: {exc}"
                log.error("ComfyUI startup failed: %s", exc)
                if self._monitor is None and not self._stopping:
                    self._monitor = asyncio.create_task(self._watch(), name="comfy-supervisor")
        return asyncio.create_task(run(), name="comfy-startup")

    async def stop(self) -> None:
        """Stop watching, close the client, stop the child (SIGTERM, then SIGKILL)."""
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._monitor
        await self.client.close()
        if self.process is not None:
            await asyncio.to_thread(self.process.stop)
        self.state = State.STOPPED

    async def _bring_up(self) -> None:
        if self.process is not None:
            self.process.start()  # from the loop's thread: the parent-death signal follows it
            await asyncio.to_thread(self.process.wait_ready, self.startup_timeout)
        else:
            await self._wait_url(self.startup_timeout)
        await self.client.wait_connected(timeout=30)
        if self.warmup:
            t0 = time.monotonic()
            await self.client.run(self.warmup, timeout=self.startup_timeout)
            log.info("warmup workflow ran in %.2fs", time.monotonic() - t0)
        await self.client.object_info(refresh=True)
        self.state = State.READY
        self.warm = True
        self.last_error = None

    async def _wait_url(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if await self._probe():
                return
            if time.monotonic() > deadline:
                raise ComfyUnavailableError(f"ComfyUI at {self.url} not up after {timeout:g}s")
            await asyncio.sleep(0.5)

    async def _probe(self) -> bool:
        try:
            await self.client.system_stats()
            return True
        except (ComfyError, httpx.HTTPError):
            return False

    async def _watch(self) -> None:
        failures = 0
        last_probe = 0.0
        retry_delay, retry_at = 2.0, time.monotonic() + 2.0
        while not self._stopping:
            await asyncio.sleep(self.check_interval)
            if self.process is not None:
                proc = self.process.proc
                if proc is not None and proc.poll() is not None:
                    await self._on_exit(proc.returncode)
                elif self.state == State.DOWN and self.restart:
                    await self._on_exit(None)
                continue
            # attached: probe now and then; readiness follows the answers
            if time.monotonic() - last_probe < 2.0 and self.state == State.READY:
                continue
            last_probe = time.monotonic()
            if await self._probe():
                failures = 0
                if self.state != State.READY and not self.warm:
                    # Never came all the way up (a failed warmup, say): retry the whole bring-up,
                    # warmup included, with backoff, instead of declaring it ready without it.
                    if time.monotonic() >= retry_at:
                        try:
                            await self._bring_up()
                        except Exception as exc:  # noqa: BLE001 - reported through readiness
                            self.last_error = f"startup failed: {exc}"
                            retry_delay = min(retry_delay * 2, 60.0)
                            retry_at = time.monotonic() + retry_delay
                elif self.state != State.READY:
                    with contextlib.suppress(ComfyError):
                        await self.client.wait_connected(timeout=5)
                        self.state, self.last_error = State.READY, None
            else:
                failures += 1
                if failures >= 2 and self.state == State.READY:
                    self.state = State.DOWN
                    self.last_error = f"ComfyUI at {self.url} does not answer"

    async def _on_exit(self, returncode: int | None) -> None:
        what = "ComfyUI is down"
        if returncode is not None:
            what = f"ComfyUI exited with code {returncode}"
        log.error("%s%s", what, "; restarting" if self.restart else "")
        self.state = State.DOWN
        self.last_error = what
        tail = "; it is being restarted" if self.restart else ""
        self.client.fail_pending(ComfyUnavailableError(f"{what} while running this prompt{tail}"))
        if not self.restart or self._stopping:
            return
        delay = min(2.0 ** min(self.restarts, 5) * 0.5, 15.0) if self.restarts else 0.0
        await asyncio.sleep(delay)
        self.state = State.RESTARTING
        self.restarts += 1
        try:
            assert self.process is not None
            await asyncio.to_thread(self.process.stop, 5.0)
            await self._bring_up()
            log.info("ComfyUI restarted (restart #%d)", self.restarts)
        except Exception as exc:  # noqa: BLE001 - try again on the next round
            self.state = State.DOWN
            self.last_error = f"{what}; restart failed: {exc}"

"""An async client of one ComfyUI: its REST calls, plus prompts followed to their end.

`ComfyClient` is the REST half (`ComfyRest`) with prompt tracking (`comfygen.comfy.tracking`) and
the node definitions cache (`comfygen.comfy.object_info`) on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from comfygen.comfy.errors import (
    ComfyError,
    ComfyInterruptedError,
    ComfyTimeoutError,
    ComfyUnavailableError,
    ComfyValidationError,
)
from comfygen.comfy.model_files import LOADER_FOLDERS
from comfygen.comfy.models import ProgressEvent, PromptResult
from comfygen.comfy.object_info import DEFAULT_TTL, ObjectInfoCache
from comfygen.comfy.rest import ComfyRest
from comfygen.comfy.tracking import CancelOutcome, PromptWatcher

log = logging.getLogger("comfygen.comfy")


class ComfyClient(ComfyRest):
    """Talk to one ComfyUI: submit, wait, fetch outputs, upload, cancel, inspect."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        http_timeout: float = 30.0,
        poll_interval: float = 3.0,
        fast_poll_interval: float = 0.5,
        heartbeat: float = 10.0,
        reconnect_max_delay: float = 5.0,
        unavailable_grace: float = 5.0,
        object_info_ttl: float = DEFAULT_TTL,
        max_connections: int = 100,
        strict: bool = True,
    ) -> None:
        super().__init__(url, timeout=http_timeout, max_connections=max_connections)
        self.client_id = client_id or uuid.uuid4().hex
        self.strict = strict  # refuse prompts whose outputs only partly validate
        self.watcher = PromptWatcher(
            self, self.client_id, heartbeat=heartbeat, poll_interval=poll_interval,
            fast_poll_interval=fast_poll_interval, reconnect_max_delay=reconnect_max_delay,
            unavailable_grace=unavailable_grace)
        self.watcher.on_connect = self._on_connect
        self.node_info = ObjectInfoCache(self.object_info_body)
        """The live node definitions (`/object_info`), parsed once per change."""
        self.models_check_interval = object_info_ttl
        """Seconds between checks of the model lists that refresh `node_info` (0: none)."""
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the shared websocket and start the /history poller."""
        if not self._tasks:
            self.watcher.closing = False
            self._tasks = [
                asyncio.create_task(self.watcher.ws_loop(), name="comfy-ws"),
                asyncio.create_task(self.watcher.poll_loop(), name="comfy-poll"),
            ]
            if self.models_check_interval > 0:
                self._tasks.append(asyncio.create_task(
                    self.node_info.watch(functools.partial(self.models_signature, LOADER_FOLDERS),
                                         self.models_check_interval),
                    name="comfy-models-watch"))

    async def close(self) -> None:
        """Stop background tasks, fail open waiters, and close the HTTP pool."""
        self.watcher.closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.node_info.close()
        self.fail_pending(ComfyUnavailableError("the ComfyUI client was closed"))
        await self.aclose()

    async def __aenter__(self) -> ComfyClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _on_connect(self) -> None:
        if self.watcher.ws_connects > 1:  # a reconnect: ComfyUI may have restarted
            self.node_info.invalidate()

    @property
    def connected(self) -> bool:
        """True while the shared websocket is open."""
        return self.watcher.connected.is_set()

    @property
    def ws_connects(self) -> int:
        """How many times the websocket (re)connected."""
        return self.watcher.ws_connects

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the websocket is open (raise ComfyUnavailableError otherwise)."""
        try:
            await asyncio.wait_for(self.watcher.connected.wait(), timeout)
        except TimeoutError as exc:
            raise ComfyUnavailableError(
                f"no websocket to ComfyUI at {self.url} after {timeout:g}s"
            ) from exc

    def fail_pending(self, error: ComfyError) -> None:
        """End every open wait with `error` (the supervisor calls this when the child dies)."""
        self.watcher.fail_pending(error)

    @property
    def pending(self) -> int:
        """How many submitted prompts are still awaited."""
        return sum(1 for t in self.watcher.trackers.values() if not t.done)

    # -- prompts -------------------------------------------------------------------------------

    async def submit(
        self,
        graph: Mapping[str, Any],
        prompt_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        keep_images: Collection[str] | None = None,
    ) -> str:
        """POST /prompt with our own prompt id; return it. 400 → ComfyValidationError.
        `keep_images`: the nodes whose websocket images the result keeps (None: all)."""
        prompt_id = prompt_id or str(uuid.uuid4())
        tracker = self.watcher.track(prompt_id)
        tracker.keep_images = keep_images
        body: dict[str, Any] = {"prompt": graph, "prompt_id": prompt_id,
                                "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            answer = await self.post_prompt(body)
        except ComfyError:
            self.watcher.trackers.pop(prompt_id, None)
            raise
        tracker.accepted_at = time.monotonic()
        node_errors = answer.get("node_errors") or {}
        if node_errors and self.strict:
            # ComfyUI queued only the outputs that validated; the rest would vanish silently.
            await self._cancel_quietly(prompt_id)
            self.watcher.trackers.pop(prompt_id, None)
            raise ComfyValidationError(
                {"type": "prompt_outputs_failed_validation",
                 "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
                node_errors,
            )
        return prompt_id

    async def wait(self, prompt_id: str, timeout: float | None = None) -> PromptResult:
        """Wait for the prompt to end; return its outputs or raise a typed error."""
        return await self.watcher.wait(prompt_id, timeout)

    async def run(
        self, graph: Mapping[str, Any], prompt_id: str | None = None, timeout: float | None = None,
        extra_data: Mapping[str, Any] | None = None, keep_images: Collection[str] | None = None,
    ) -> PromptResult:
        """Submit and wait; on timeout or cancellation, take the prompt off ComfyUI too."""
        prompt_id = await self.submit(graph, prompt_id, extra_data, keep_images)
        try:
            return await self.wait(prompt_id, timeout)
        except ComfyTimeoutError as exc:
            exc.cancelled = await self._cancel_quietly(prompt_id)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_quietly(prompt_id))
            raise

    async def _cancel_quietly(self, prompt_id: str) -> str | None:
        try:
            return await self.cancel(prompt_id)
        except ComfyError as exc:
            log.warning("could not cancel prompt %s: %s", prompt_id, exc)
            return None

    async def cancel(self, prompt_id: str) -> CancelOutcome:
        """Remove the prompt from the queue if pending, interrupt it if running; say which."""
        tracker = self.watcher.trackers.get(prompt_id)
        for _ in range(3):
            q = await self.queue()
            if prompt_id in q.pending:
                await self.delete_pending(prompt_id)
                q = await self.queue()
                if prompt_id in q.running:
                    continue  # it started meanwhile: interrupt it next round
                if tracker is not None:
                    tracker.cancelled = "deleted"
                    tracker.end(ComfyInterruptedError(prompt_id, {"removed": True}))
                return "deleted"
            if prompt_id in q.running:
                await self.interrupt(prompt_id)
                if tracker is not None:
                    tracker.cancelled = "interrupted"
                return "interrupted"
            return "not_found"
        return "not_found"

    def events(self, prompt_id: str) -> AsyncIterator[ProgressEvent]:
        """Progress events of one prompt as they arrive, ending when the prompt ends."""
        return self.watcher.events(prompt_id)

    # -- node definitions ----------------------------------------------------------------------

    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """GET /object_info as ComfyUI sends it, cached (see `node_info` for the parsed form)."""
        return (await self.node_info.get(refresh)).raw  # type: ignore[return-value]

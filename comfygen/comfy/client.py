"""An async client of ComfyUI's web API with one shared websocket and a /history fallback.

Every prompt gets a tracker before it is submitted (we choose the prompt id), so no websocket
message is missed. A waiter ends when the websocket closes the prompt (`executing` with
`node: null`, sent after ComfyUI stores the history entry) or when the poller finds the entry in
`/history`. The poller runs whether or not the websocket is up (faster while it is down), and
declares a prompt lost when ComfyUI neither queues nor remembers it, so no wait can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import httpx
from websockets.asyncio.client import connect

from comfygen.comfy.errors import (
    ComfyError,
    ComfyExecutionError,
    ComfyHTTPError,
    ComfyInterruptedError,
    ComfyTimeoutError,
    ComfyUnavailableError,
    ComfyValidationError,
)
from comfygen.comfy.models import OutputFile, ProgressEvent, PromptResult, QueueInfo

log = logging.getLogger("comfygen.comfy")

CancelOutcome = Literal["deleted", "interrupted", "not_found"]

TERMINAL_EVENTS = frozenset({"execution_success", "execution_error", "execution_interrupted"})


class _Tracker:
    """What we know about one submitted prompt."""

    def __init__(self, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        self.accepted_at: float | None = None  # monotonic time POST /prompt returned
        self.closed_by_ws = False  # `executing` node=null seen: history is stored
        self.ws_outputs: dict[str, Any] | None = None  # `executed` outputs, once the start is seen
        self.ws_success = False  # `execution_success` seen on the websocket
        self.ws_messages: list[list[Any]] = []  # status messages, as /history records them
        self.entry: dict[str, Any] | None = None  # the /history entry, once known
        self.failure: ComfyError | None = None
        self.cancelled: CancelOutcome | None = None
        self.signal = asyncio.Event()
        self.events: deque[ProgressEvent] = deque(maxlen=256)
        self.subscribers: list[asyncio.Queue[ProgressEvent | None]] = []

    @property
    def done(self) -> bool:
        return self.entry is not None or self.failure is not None

    def push(self, event: ProgressEvent) -> None:
        self.events.append(event)
        for q in self.subscribers:
            q.put_nowait(event)

    def wake(self) -> None:
        self.signal.set()

    def close_subscribers(self) -> None:
        for q in self.subscribers:
            q.put_nowait(None)


class ComfyClient:
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
        object_info_ttl: float = 30.0,
        max_connections: int = 100,
        strict: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.strict = strict  # refuse prompts whose outputs only partly validate
        self.poll_interval = poll_interval
        self.fast_poll_interval = fast_poll_interval
        self.heartbeat = heartbeat
        self.reconnect_max_delay = reconnect_max_delay
        self.unavailable_grace = unavailable_grace
        self.object_info_ttl = object_info_ttl
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=http_timeout,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        )
        self._trackers: dict[str, _Tracker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._poke = asyncio.Event()
        self._ws_connected = asyncio.Event()
        self._closing = False
        self._down_since: float | None = None
        self._object_info: dict[str, Any] | None = None
        self._object_info_at = 0.0
        self._object_info_hash = ""
        self._object_info_lock = asyncio.Lock()
        self._object_info_task: asyncio.Task[None] | None = None
        self.ws_connects = 0  # how many times the websocket (re)connected; for probes and tests

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the shared websocket and start the /history poller."""
        if not self._tasks:
            self._closing = False
            self._tasks = [
                asyncio.create_task(self._ws_loop(), name="comfy-ws"),
                asyncio.create_task(self._poll_loop(), name="comfy-poll"),
            ]

    async def close(self) -> None:
        """Stop background tasks, fail open waiters, and close the HTTP pool."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._object_info_task is not None:
            self._object_info_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._object_info_task
        self.fail_pending(ComfyUnavailableError("the ComfyUI client was closed"))
        await self._http.aclose()

    async def __aenter__(self) -> ComfyClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True while the shared websocket is open."""
        return self._ws_connected.is_set()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the websocket is open (raise ComfyUnavailableError otherwise)."""
        try:
            await asyncio.wait_for(self._ws_connected.wait(), timeout)
        except TimeoutError as exc:
            raise ComfyUnavailableError(
                f"no websocket to ComfyUI at {self.url} after {timeout:g}s"
            ) from exc

    def fail_pending(self, error: ComfyError) -> None:
        """End every open wait with `error` (the supervisor calls this when the child dies)."""
        for tracker in list(self._trackers.values()):
            if not tracker.done:
                tracker.failure = error
                tracker.wake()
                tracker.close_subscribers()

    @property
    def pending(self) -> int:
        """How many submitted prompts are still awaited."""
        return sum(1 for t in self._trackers.values() if not t.done)

    # -- HTTP helpers --------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ComfyUnavailableError(
                f"ComfyUI at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            ) from exc

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        r = await self._request(method, path, **kwargs)
        if r.status_code != 200:
            raise ComfyHTTPError(method, path, r.status_code, r.text)
        return r.json()

    # -- prompts -------------------------------------------------------------------------------

    async def submit(
        self,
        graph: Mapping[str, Any],
        prompt_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> str:
        """POST /prompt with our own prompt id; return it. 400 → ComfyValidationError."""
        prompt_id = prompt_id or str(uuid.uuid4())
        tracker = self._trackers.setdefault(prompt_id, _Tracker(prompt_id))
        body: dict[str, Any] = {"prompt": graph, "prompt_id": prompt_id,
                                "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            r = await self._request("POST", "/prompt", json=body)
        except ComfyError:
            self._trackers.pop(prompt_id, None)
            raise
        if r.status_code == 400:
            self._trackers.pop(prompt_id, None)
            try:
                data = r.json()
            except ValueError:
                data = {"error": {"type": "bad_request", "message": r.text}}
            raise ComfyValidationError(data.get("error", {}), data.get("node_errors", {}))
        if r.status_code != 200:
            self._trackers.pop(prompt_id, None)
            raise ComfyHTTPError("POST", "/prompt", r.status_code, r.text)
        tracker.accepted_at = time.monotonic()
        node_errors = (r.json() or {}).get("node_errors") or {}
        if node_errors and self.strict:
            # ComfyUI queued only the outputs that validated; the rest would vanish silently.
            await self._cancel_quietly(prompt_id)
            self._trackers.pop(prompt_id, None)
            raise ComfyValidationError(
                {"type": "prompt_outputs_failed_validation",
                 "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
                node_errors,
            )
        return prompt_id

    async def wait(self, prompt_id: str, timeout: float | None = None) -> PromptResult:
        """Wait for the prompt to end; return its outputs or raise a typed error."""
        tracker = self._trackers.setdefault(prompt_id, _Tracker(prompt_id))
        if tracker.accepted_at is None:
            tracker.accepted_at = time.monotonic()  # submitted elsewhere: poll it like ours
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                if tracker.failure is not None:
                    raise tracker.failure
                if tracker.entry is not None:
                    return _result(prompt_id, tracker.entry)
                if tracker.closed_by_ws and tracker.ws_success and tracker.ws_outputs is not None:
                    # The websocket saw the whole run: its `executed` messages carry exactly
                    # what /history would list, so skip that round trip.
                    tracker.entry = {"outputs": tracker.ws_outputs,
                                     "status": {"status_str": "success", "completed": True,
                                                "messages": tracker.ws_messages}}
                    continue
                if tracker.closed_by_ws:
                    tracker.closed_by_ws = False
                    with contextlib.suppress(ComfyError):
                        entry = await self.history(prompt_id)
                        if entry is not None:
                            tracker.entry = entry
                            continue
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise ComfyTimeoutError(prompt_id, timeout or 0.0)
                tracker.signal.clear()
                if tracker.done or tracker.closed_by_ws:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tracker.signal.wait(), remaining)
        finally:
            if tracker.done or (deadline is not None and loop.time() >= deadline):
                tracker.close_subscribers()
            self._trackers.pop(prompt_id, None)

    async def run(
        self, graph: Mapping[str, Any], prompt_id: str | None = None, timeout: float | None = None
    ) -> PromptResult:
        """Submit and wait; on timeout or cancellation, take the prompt off ComfyUI too."""
        prompt_id = await self.submit(graph, prompt_id)
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
        tracker = self._trackers.get(prompt_id)
        for _ in range(3):
            q = await self.queue()
            if prompt_id in q.pending:
                await self._request("POST", "/queue", json={"delete": [prompt_id]})
                q = await self.queue()
                if prompt_id in q.running:
                    continue  # it started meanwhile: interrupt it next round
                if tracker is not None:
                    tracker.cancelled = "deleted"
                    if not tracker.done:
                        tracker.failure = ComfyInterruptedError(prompt_id, {"removed": True})
                        tracker.wake()
                        tracker.close_subscribers()
                return "deleted"
            if prompt_id in q.running:
                await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})
                if tracker is not None:
                    tracker.cancelled = "interrupted"
                return "interrupted"
            return "not_found"
        return "not_found"

    async def events(self, prompt_id: str) -> AsyncIterator[ProgressEvent]:
        """Progress events of one prompt as they arrive, ending when the prompt ends."""
        tracker = self._trackers.setdefault(prompt_id, _Tracker(prompt_id))
        q: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()
        for ev in tracker.events:
            q.put_nowait(ev)
        if tracker.done:
            q.put_nowait(None)
        tracker.subscribers.append(q)
        try:
            while (ev := await q.get()) is not None:
                yield ev
        finally:
            with contextlib.suppress(ValueError):
                tracker.subscribers.remove(q)

    def forget(self, prompt_id: str) -> None:
        """Stop tracking a prompt nobody will wait for."""
        tracker = self._trackers.pop(prompt_id, None)
        if tracker is not None:
            tracker.close_subscribers()

    # -- reading ComfyUI -----------------------------------------------------------------------

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The /history entry of a prompt, or None while ComfyUI has none."""
        data = await self._json("GET", f"/history/{prompt_id}")
        return data.get(prompt_id) if isinstance(data, dict) else None

    async def queue(self) -> QueueInfo:
        """Prompt ids running and pending in ComfyUI's queue."""
        data = await self._json("GET", "/queue")
        return QueueInfo(
            running=[str(item[1]) for item in data.get("queue_running", [])],
            pending=[str(item[1]) for item in data.get("queue_pending", [])],
        )

    async def system_stats(self) -> dict[str, Any]:
        return await self._json("GET", "/system_stats")

    async def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """GET /object_info, cached. Past `object_info_ttl` the cached copy is still answered at
        once while a background task refreshes it (no request waits on the 0.5 MB fetch);
        `refresh=True` fetches now (a value missing from the cache triggers that)."""
        if self._object_info is not None and not refresh:
            stale = time.monotonic() - self._object_info_at >= self.object_info_ttl
            if stale and (self._object_info_task is None or self._object_info_task.done()):
                self._object_info_task = asyncio.create_task(
                    self._refresh_object_info_quietly(), name="comfy-object-info")
            return self._object_info
        async with self._object_info_lock:
            if self._object_info is None or refresh:
                await self._fetch_object_info()
            assert self._object_info is not None
            return self._object_info

    async def _fetch_object_info(self) -> None:
        r = await self._request("GET", "/object_info")
        if r.status_code != 200:
            raise ComfyHTTPError("GET", "/object_info", r.status_code, r.text)
        self._object_info_hash = hashlib.sha256(r.content).hexdigest()
        self._object_info = r.json()
        self._object_info_at = time.monotonic()

    async def _refresh_object_info_quietly(self) -> None:
        async with self._object_info_lock:
            if time.monotonic() - self._object_info_at < self.object_info_ttl:
                return  # someone refreshed it meanwhile
            with contextlib.suppress(ComfyError):  # ComfyUI away: keep the last known copy
                await self._fetch_object_info()

    @property
    def object_info_hash(self) -> str:
        """Digest of the last /object_info body: changes when models or nodes change."""
        return self._object_info_hash

    async def model_folders(self) -> list[str]:
        return list(await self._json("GET", "/models"))

    async def models(self, folder: str | None = None) -> Any:
        """Files of one model folder, or {folder: [files]} for every folder."""
        if folder is not None:
            return list(await self._json("GET", f"/models/{folder}"))
        folders = await self.model_folders()
        lists = await asyncio.gather(*(self._json("GET", f"/models/{f}") for f in folders))
        return dict(zip(folders, (list(x) for x in lists), strict=True))

    async def fetch(self, file: OutputFile) -> bytes:
        """The bytes of an output file through /view (works with a remote ComfyUI)."""
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        r = await self._request("GET", "/view", params=params)
        if r.status_code != 200:
            raise ComfyHTTPError("GET", f"/view?filename={file.filename}", r.status_code, r.text)
        return r.content

    async def upload(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        overwrite: bool = True,
        kind: Literal["input", "temp", "output"] = "input",
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """POST /upload/image; returns {"name", "subfolder", "type"} (name may be renamed)."""
        files = {"image": (filename, data, content_type)}
        form = {"overwrite": "true" if overwrite else "false", "subfolder": subfolder,
                "type": kind}
        return await self._json("POST", "/upload/image", files=files, data=form)

    # -- background: websocket and poller ------------------------------------------------------

    def _poke_all(self) -> None:
        self._poke.set()

    async def _ws_loop(self) -> None:
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        delay = 0.1
        while not self._closing:
            try:
                async with connect(
                    ws_url, proxy=None, open_timeout=5, ping_interval=self.heartbeat,
                    compression=None,  # loopback or LAN: deflate costs CPU on both ends
                    ping_timeout=self.heartbeat, close_timeout=2, max_size=None, max_queue=1024,
                ) as ws:
                    self._ws_connected.set()
                    self.ws_connects += 1
                    delay = 0.1
                    self._poke_all()  # catch up on anything that ended while we were away
                    async for message in ws:
                        if isinstance(message, str):
                            self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                log.debug("ComfyUI websocket dropped: %r", exc)
            finally:
                if self._ws_connected.is_set():
                    self._ws_connected.clear()
                    self._poke_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_delay)

    def _dispatch(self, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        kind = msg.get("type")
        data = msg.get("data") or {}
        if not isinstance(data, dict):
            return
        tracker = self._trackers.get(str(data.get("prompt_id")))
        if tracker is None:
            return
        tracker.push(ProgressEvent(kind, data))
        if kind in ("execution_start", "execution_cached", "execution_success"):
            tracker.ws_messages.append([kind, data])
        if kind == "execution_start":
            tracker.ws_outputs = {}
        elif kind == "executed" and tracker.ws_outputs is not None and data.get("output"):
            tracker.ws_outputs[str(data.get("node"))] = data["output"]
        elif kind == "execution_success":
            tracker.ws_success = True
        if kind == "executing" and data.get("node") is None:
            tracker.closed_by_ws = True
            tracker.wake()
            tracker.close_subscribers()

    async def _poll_loop(self) -> None:
        while not self._closing:
            interval = self.poll_interval if self.connected else self.fast_poll_interval
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), interval)
            if not any(not t.done and t.accepted_at is not None for t in self._trackers.values()):
                continue
            try:
                await self._poll_once()
                self._down_since = None
            except ComfyError as exc:
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now - self._down_since >= self.unavailable_grace:
                    self.fail_pending(ComfyUnavailableError(
                        f"ComfyUI at {self.url} has been unreachable for "
                        f"{now - self._down_since:.1f}s: {exc}"))
            except Exception:  # noqa: BLE001 - the poller must survive anything
                log.exception("ComfyUI poller failed")

    async def _poll_once(self) -> None:
        snapshot = time.monotonic()
        q = await self.queue()
        queued = set(q.running) | set(q.pending)
        for tracker in list(self._trackers.values()):
            if tracker.done or tracker.accepted_at is None or tracker.prompt_id in queued:
                continue
            if tracker.accepted_at > snapshot:
                continue  # accepted after the queue snapshot: look next round
            entry = await self.history(tracker.prompt_id)
            if entry is not None:
                tracker.entry = entry
            elif tracker.cancelled == "deleted":
                tracker.failure = ComfyInterruptedError(tracker.prompt_id, {"removed": True})
            else:
                tracker.failure = ComfyUnavailableError(
                    f"ComfyUI no longer knows prompt {tracker.prompt_id}: it was neither queued "
                    "nor in its history (ComfyUI restarted or the prompt was deleted)")
            tracker.wake()
            tracker.close_subscribers()


def _result(prompt_id: str, entry: Mapping[str, Any]) -> PromptResult:
    """Turn a /history entry into a result, or raise the error it records."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    for item in messages:
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        event, data = item
        if event == "execution_error":
            raise ComfyExecutionError(prompt_id, data)
        if event == "execution_interrupted":
            raise ComfyInterruptedError(prompt_id, data)
    if status.get("status_str") == "error":
        raise ComfyExecutionError(prompt_id, {"exception_message": "ComfyUI reported an error"})
    return PromptResult.from_history(prompt_id, entry)

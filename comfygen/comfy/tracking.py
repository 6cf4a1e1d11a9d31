"""Follow submitted prompts to their end: one shared websocket, and a `/history` poller behind it.

Every prompt gets a tracker before it is submitted (we choose the prompt id), so no websocket
message is missed. A tracker ends when the websocket closes the prompt (`executing` with
`node: null`, sent after ComfyUI stores the history entry) or when the poller finds the entry in
`/history`. The poller runs whether or not the websocket is up (faster while it is down), and
declares a prompt lost when ComfyUI neither queues nor remembers it, so no wait can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import replace
from typing import Any, Literal

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode

from comfygen.comfy.errors import (
    ComfyError,
    ComfyExecutionError,
    ComfyInterruptedError,
    ComfyTimeoutError,
    ComfyUnavailableError,
)
from comfygen.comfy.models import ProgressEvent, PromptResult, WebsocketImage
from comfygen.comfy.rest import ComfyRest
from comfygen.comfy.timing import PromptTiming

log = logging.getLogger("comfygen.comfy")

SKIPPED = ('{"type": "status"', '{"type": "progress_state"')
"""How the websocket messages no prompt's tracker reads begin (ComfyUI writes them with
`json.dumps`' default separators): dropped unread when no listener wants every message."""

FEATURE_FLAGS = '{"type": "feature_flags", "data": {"supports_preview_metadata": true}}'
IMAGE, IMAGE_WITH_METADATA = 1, 4
"""ComfyUI's binary message types that carry an image (`protocol.BinaryEventTypes`): 1 with a
format word (1 JPEG, 2 PNG), 4 with a JSON header naming the prompt and node."""

CancelOutcome = Literal["deleted", "interrupted", "not_found"]
ENDED_KEPT = 64


class PromptTracker:
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
        self.timing = PromptTiming()  # execution and node times, from websocket arrivals
        self.ws_images: list[WebsocketImage] = []  # binary image messages, in order
        self.keep_images: Collection[str] | None = None
        """Nodes whose images are kept in `ws_images` (its output nodes; None: every node's).
        The others' (a sampler's previews) only go to the listeners of `events()`."""
        self.ws_epoch: int | None = None  # the websocket connection that saw the start
        self.ws_whole = False  # that connection saw the end too (`executing` node=null)

    @property
    def done(self) -> bool:
        return self.entry is not None or self.failure is not None

    def push(self, event: ProgressEvent) -> None:
        self.events.append(event)
        self.announce(event)

    def announce(self, event: ProgressEvent) -> None:
        """Hand an event to the listeners there are now, without keeping it for later ones."""
        for q in self.subscribers:
            q.put_nowait(event)

    def end(self, failure: ComfyError | None = None) -> None:
        """Record a failure (if given and nothing ended it before), wake the waiter, close
        the event listeners."""
        if failure is not None and not self.done:
            self.failure = failure
        self.signal.set()
        self.close_subscribers()

    def close_subscribers(self) -> None:
        for q in self.subscribers:
            q.put_nowait(None)


class PromptWatcher:
    """Trackers of one client's prompts, fed by the websocket and the `/history` poller."""

    def __init__(self, rest: ComfyRest, client_id: str, *, heartbeat: float,
                 poll_interval: float, fast_poll_interval: float, reconnect_max_delay: float,
                 unavailable_grace: float) -> None:
        self.rest = rest
        self.client_id = client_id
        self.heartbeat = heartbeat
        self.poll_interval = poll_interval
        self.fast_poll_interval = fast_poll_interval
        self.reconnect_max_delay = reconnect_max_delay
        self.unavailable_grace = unavailable_grace
        self.trackers: dict[str, PromptTracker] = {}
        self.ended: OrderedDict[str, PromptTracker] = OrderedDict()
        """The last prompts whose wait ended, so that a late `events()` replays them and ends."""
        self.connected = asyncio.Event()
        self.ws_connects = 0  # how many times the websocket (re)connected; for probes and tests
        self._connection = 0
        """Number of the websocket connection whose frames are being handled: counted when it
        is made, before its first frame (`ws_connects` counts after the handshake)."""
        self.on_connect: Callable[[], None] | None = None  # called on every (re)connect
        self.listener: Callable[[str, dict[str, Any]], None] | None = None
        """Called with the type and data of every JSON message (status news too); it must
        not block (the websocket reader calls it)."""
        self.closing = False
        self.executing: tuple[str, str] | None = None
        """(prompt id, node) ComfyUI said it is executing: whose a preview without metadata is."""
        self._poke = asyncio.Event()
        self._down_since: float | None = None

    def track(self, prompt_id: str) -> PromptTracker:
        return self.trackers.setdefault(prompt_id, PromptTracker(prompt_id))

    def fail_pending(self, error: ComfyError) -> None:
        """End every open wait with `error`."""
        for tracker in list(self.trackers.values()):
            if not tracker.done:
                tracker.end(error)

    async def wait(self, prompt_id: str, timeout: float | None) -> PromptResult:
        """Wait for the prompt to end; return its outputs or raise a typed error."""
        tracker = self.track(prompt_id)
        if tracker.accepted_at is None:
            tracker.accepted_at = time.monotonic()  # submitted elsewhere: poll it like ours
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                if tracker.failure is not None:
                    raise tracker.failure
                if tracker.entry is not None:
                    images, tracker.ws_images = tuple(tracker.ws_images), []  # not kept in `ended`
                    return replace(result_of(prompt_id, tracker.entry), timing=tracker.timing,
                                   ws_images=images, ws_whole=tracker.ws_whole)
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
                        entry = await self.rest.history(prompt_id)
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
                    async with asyncio.timeout(remaining):  # no task of its own, unlike wait_for
                        await tracker.signal.wait()
        finally:
            if tracker.done or (deadline is not None and loop.time() >= deadline):
                tracker.close_subscribers()
            self.trackers.pop(prompt_id, None)
            if tracker.done:
                self.ended[prompt_id] = tracker
                while len(self.ended) > ENDED_KEPT:
                    self.ended.popitem(last=False)

    async def events(self, prompt_id: str) -> AsyncIterator[ProgressEvent]:
        """Progress events of one prompt as they arrive, ending when the prompt ends (at once,
        after replaying them, when it already ended)."""
        tracker = self.trackers.get(prompt_id) or self.ended.get(prompt_id) or self.track(prompt_id)
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

    # -- the websocket -------------------------------------------------------------------------

    def _on_text(self, raw: str) -> None:
        try:
            self.dispatch(raw)
        except Exception:  # noqa: BLE001 - runs in the connection's data callback: never stop it
            log.exception("ComfyUI websocket message could not be routed")

    def _on_binary(self, data: bytes) -> None:
        try:
            self.dispatch_binary(data)
        except Exception:  # noqa: BLE001 - as _on_text
            log.exception("ComfyUI binary websocket message could not be routed")

    def _new_connection(self, *args: Any, **kwargs: Any) -> DispatchingConnection:
        self._connection += 1
        return DispatchingConnection(*args, on_text=self._on_text, on_binary=self._on_binary,
                                     **kwargs)

    async def ws_loop(self) -> None:
        ws_url = self.rest.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        delay = 0.1
        while not self.closing:
            try:
                async with connect(
                    ws_url, proxy=None, open_timeout=5, ping_interval=self.heartbeat,
                    compression=None,  # loopback or LAN: deflate costs CPU on both ends
                    ping_timeout=self.heartbeat, close_timeout=2, max_size=None, max_queue=1024,
                    create_connection=self._new_connection,
                ) as ws:
                    # ask for images with their prompt and node (ComfyUI reads a first
                    # `feature_flags` message; older ones ignore it)
                    await ws.send(FEATURE_FLAGS)
                    self.connected.set()
                    self.ws_connects += 1
                    if self.on_connect is not None:
                        self.on_connect()
                    delay = 0.1
                    self._poke.set()  # catch up on anything that ended while we were away
                    async for message in ws:  # what the connection did not dispatch itself
                        if isinstance(message, str):
                            self.dispatch(message)
                        else:
                            self.dispatch_binary(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                log.debug("ComfyUI websocket dropped: %r", exc)
            finally:
                if self.connected.is_set():
                    self.connected.clear()
                    self._poke.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_delay)

    def dispatch(self, raw: str) -> None:
        """Route one websocket message to the tracker of its prompt."""
        if self.listener is None and raw.startswith(SKIPPED):
            # queue news for every client (several per prompt, no prompt of ours in it), and
            # the whole-prompt node states sent at every node's start and end (what a prompt's
            # tracker needs comes in `executing`, `progress` and `executed`)
            return
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                msg = json.loads(raw)  # NaN or Infinity in an output, say
            except ValueError:
                return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        data = msg.get("data") or {}
        if not isinstance(data, dict):
            return
        if self.listener is not None:
            try:
                self.listener(str(kind), data)
            except Exception:  # noqa: BLE001 - a listener never stops the prompts' tracking
                log.exception("websocket listener failed on a %r message", kind)
        if kind == "executing":
            node = data.get("node")
            self.executing = None if node is None else (str(data.get("prompt_id")), str(node))
        tracker = self.trackers.get(str(data.get("prompt_id")))
        if tracker is None:
            return
        tracker.timing.observe(kind, data, time.monotonic())
        tracker.push(ProgressEvent(kind, data))
        if kind in ("execution_start", "execution_cached", "execution_success"):
            tracker.ws_messages.append([kind, data])
        if kind == "execution_start":
            tracker.ws_outputs = {}
            tracker.ws_epoch = self._connection
        elif kind == "executed" and tracker.ws_outputs is not None and data.get("output"):
            tracker.ws_outputs[str(data.get("node"))] = data["output"]
        elif kind == "execution_success":
            tracker.ws_success = True
        if kind == "executing" and data.get("node") is None:
            tracker.closed_by_ws = True
            tracker.ws_whole = tracker.ws_epoch == self._connection
            tracker.end()

    def dispatch_binary(self, data: bytes) -> None:
        """Keep an image a node sent over the websocket with the tracker of its prompt: with
        its prompt and node in the message (what `FEATURE_FLAGS` asks for), or, from a
        ComfyUI that does not send those, the node ComfyUI last said it was executing."""
        if len(data) < 8:
            return
        kind, second = struct.unpack_from(">II", data)
        if kind == IMAGE_WITH_METADATA:
            end = 8 + second
            try:
                meta = orjson.loads(data[8:end])
            except orjson.JSONDecodeError:
                return
            if not isinstance(meta, dict):
                return
            where = (str(meta.get("prompt_id")),
                     str(meta.get("display_node_id") or meta.get("node_id")))
            content_type, image = str(meta.get("image_type") or "image/png"), data[end:]
        elif kind == IMAGE and self.executing is not None:
            where = self.executing
            content_type, image = ("image/png" if second == 2 else "image/jpeg"), data[8:]
        else:
            return
        tracker = self.trackers.get(where[0])
        if tracker is not None and not tracker.done:
            sent = WebsocketImage(where[1], content_type, bytes(image))
            output = tracker.keep_images is None or sent.node in tracker.keep_images
            if output:
                tracker.ws_images.append(sent)
            if tracker.subscribers:  # `events()` listeners: as an `image` event
                tracker.announce(ProgressEvent("image", {"image": sent, "output": output}))

    # -- the poller ----------------------------------------------------------------------------

    async def poll_loop(self) -> None:
        while not self.closing:
            interval = self.poll_interval if self.connected.is_set() else self.fast_poll_interval
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), interval)
            if not any(not t.done and t.accepted_at is not None for t in self.trackers.values()):
                continue
            try:
                await self._poll_once()
                self._down_since = None
            except ComfyError as exc:
                now = time.monotonic()
                self._down_since = self._down_since or now
                if now - self._down_since >= self.unavailable_grace:
                    self.fail_pending(ComfyUnavailableError(
                        f"ComfyUI at {self.rest.url} has been unreachable for "
                        f"{now - self._down_since:.1f}s: {exc}"))
            except Exception:  # noqa: BLE001 - the poller must survive anything
                log.exception("ComfyUI poller failed")

    async def _poll_once(self) -> None:
        snapshot = time.monotonic()
        q = await self.rest.queue()
        queued = set(q.running) | set(q.pending)
        for tracker in list(self.trackers.values()):
            if tracker.done or tracker.accepted_at is None or tracker.prompt_id in queued:
                continue
            if tracker.accepted_at > snapshot:
                continue  # accepted after the queue snapshot: look next round
            entry = await self.rest.history(tracker.prompt_id)
            if entry is not None:
                tracker.entry = entry
            elif tracker.cancelled == "deleted":
                tracker.failure = ComfyInterruptedError(tracker.prompt_id, {"removed": True})
            else:
                tracker.failure = ComfyUnavailableError(
                    f"ComfyUI no longer knows prompt {tracker.prompt_id}: it was neither queued "
                    "nor in its history (ComfyUI restarted or the prompt was deleted)")
            tracker.end()


def result_of(prompt_id: str, entry: Mapping[str, Any]) -> PromptResult:
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


class DispatchingConnection(ClientConnection):
    """A websocket connection that hands each unfragmented text message to `on_text` in its
    data callback, instead of queueing it for a reader task to pick up: one event-loop wake-up
    per message instead of two. ComfyUI sends about 17 messages per prompt, so this is a good part
    of the server's CPU per request (docs/performance.md). Unfragmented binary messages (images)
    go to `on_binary` the same way, in order with the text ones; fragmented messages still go
    through the queue (`async for message in ws`)."""

    def __init__(self, *args: Any, on_text: Callable[[str], None],
                 on_binary: Callable[[bytes], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_text = on_text
        self.on_binary = on_binary

    def process_event(self, event: Any) -> None:
        if self.response is not None and isinstance(event, Frame) and event.fin:
            # binary messages too, so that an image is kept before the text message that
            # ends its prompt is handled
            if event.opcode is Opcode.TEXT:
                self.on_text(bytes(event.data).decode(errors="replace"))
                return
            if event.opcode is Opcode.BINARY:
                self.on_binary(bytes(event.data))
                return
        super().process_event(event)

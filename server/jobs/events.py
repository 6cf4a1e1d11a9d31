"""Per-job event broadcast for server-sent events: replay past events, then follow live ones."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

COALESCED = frozenset({"progress"})
"""Event types where only the latest one is kept in history (a new one replaces the last)."""


@dataclass(frozen=True)
class JobEvent:
    """One event of one job; `seq` grows by one per job and doubles as the SSE id."""

    seq: int
    type: str
    data: dict[str, Any]
    final: bool = False
    transient: bool = False
    """Seen only by those listening when it happened (a preview): no seq or history of its own
    (`seq` is the last kept event's), and dropped rather than crowding a slow listener."""


@dataclass
class _Channel:
    history: deque[JobEvent]
    subscribers: set[Subscription] = field(default_factory=set)
    seq: int = 0
    closed: bool = False


class Subscription:
    """Events of one job for one listener; iterate it, and close it (or use `async with`)."""

    def __init__(self, hub: JobEvents, job_id: str, backlog: list[JobEvent], size: int) -> None:
        self.job_id = job_id
        self.dropped = 0
        self._hub = hub
        self._size = size
        self._items: deque[JobEvent] = deque(backlog)
        self._wake = asyncio.Event()
        self._ended = False
        self._closed = False

    def _push(self, event: JobEvent) -> None:
        if len(self._items) >= self._size:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._wake.set()

    def _end(self) -> None:
        self._ended = True
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> JobEvent:
        while not self._items:
            if self._ended or self._closed:
                self.close()
                raise StopAsyncIteration
            self._wake.clear()
            try:
                await self._wake.wait()
            except asyncio.CancelledError:
                self.close()
                raise
        event = self._items.popleft()
        if event.final:
            self._ended = True
            self._items.clear()
        return event

    def close(self) -> None:
        """Stop listening; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._hub._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class JobEvents:
    """In-process broadcaster of job events, with bounded history and bounded listener queues."""

    def __init__(self, *, history: int = 256, queue_size: int = 64, keep_closed: int = 1024):
        self._history = history
        self._queue_size = queue_size
        self._keep_closed = keep_closed
        self._channels: dict[str, _Channel] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()

    def publish(
        self, job_id: str, type: str, data: dict[str, Any] | None = None, *, final: bool = False
    ) -> JobEvent | None:
        """Record an event and hand it to listeners; `final` ends the stream; None once ended."""
        channel = self._channel(job_id)
        if channel.closed:
            return None
        channel.seq += 1
        event = JobEvent(channel.seq, type, dict(data or {}), final)
        history = channel.history
        if history and type in COALESCED and history[-1].type == type:
            history.pop()
        history.append(event)
        for subscription in list(channel.subscribers):
            subscription._push(event)
        if final:
            self._close(job_id, channel)
        return event

    def flash(self, job_id: str, type: str, data: dict[str, Any]) -> int:
        """Hand a transient event to the job's current listeners that have room for it (half
        their queue free); how many got it."""
        channel = self._channels.get(job_id)
        if channel is None or channel.closed:
            return 0
        event = JobEvent(channel.seq, type, data, transient=True)
        handed = 0
        for subscription in list(channel.subscribers):
            if len(subscription._items) < self._queue_size // 2:
                subscription._push(event)
                handed += 1
        return handed

    def subscribe(self, job_id: str, *, after: int = 0) -> Subscription:
        """Listen to a job: first its kept events with seq > `after`, then live ones."""
        channel = self._channel(job_id)
        backlog = [event for event in channel.history if event.seq > after]
        subscription = Subscription(self, job_id, backlog, self._queue_size)
        if channel.closed:
            subscription._end()
        else:
            channel.subscribers.add(subscription)
        return subscription

    def subscriber_count(self, job_id: str) -> int:
        """How many listeners a job has now."""
        channel = self._channels.get(job_id)
        return len(channel.subscribers) if channel else 0

    def is_finished(self, job_id: str) -> bool:
        """True once the job's final event was published."""
        channel = self._channels.get(job_id)
        return bool(channel and channel.closed)

    def __len__(self) -> int:
        return len(self._channels)

    def _channel(self, job_id: str) -> _Channel:
        channel = self._channels.get(job_id)
        if channel is None:
            channel = self._channels[job_id] = _Channel(deque(maxlen=self._history))
        return channel

    def _close(self, job_id: str, channel: _Channel) -> None:
        channel.closed = True
        for subscription in list(channel.subscribers):
            subscription._end()
        channel.subscribers.clear()
        self._closed[job_id] = None
        while len(self._closed) > self._keep_closed:
            old, _ = self._closed.popitem(last=False)
            self._channels.pop(old, None)

    def _unsubscribe(self, subscription: Subscription) -> None:
        channel = self._channels.get(subscription.job_id)
        if channel is None:
            return
        channel.subscribers.discard(subscription)
        if not channel.subscribers and not channel.history and not channel.closed:
            del self._channels[subscription.job_id]

"""A value fetched at most once per `max_age` seconds, by one caller at a time: the queue
snapshot behind `queue_position`, which every waiting job's event stream looks at."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """`await recent.get()`: the last value of `fetch` if it was fetched less than `max_age`
    seconds ago, else a new one (callers arriving meanwhile wait for it and share it);
    `get(fresh=True)`: one fetched after the call (a job created a moment ago is in it). A
    failed fetch is raised to the caller that made it and not kept."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], max_age: float = 1.0) -> None:
        self._fetch = fetch
        self.max_age = max_age
        self._value: T | None = None
        self._at = float("-inf")  # when the kept value's fetch started
        self._lock = asyncio.Lock()

    async def get(self, fresh: bool = False) -> T:
        asked = time.monotonic()
        if not fresh and asked - self._at < self.max_age:
            return self._value  # type: ignore[return-value]
        async with self._lock:
            stale = self._at < asked if fresh else time.monotonic() - self._at >= self.max_age
            if stale:
                started = time.monotonic()
                self._value = await self._fetch()
                self._at = started
            return self._value  # type: ignore[return-value]

"""The queue snapshot shared by every waiting job's stream: one fetch for concurrent callers,
a new one once it is older than `max_age`, a failure never kept."""

from __future__ import annotations

import asyncio

import pytest

from server.jobs.recent import Recent


async def test_one_fetch_serves_everyone_until_it_is_old() -> None:
    calls = []

    async def fetch() -> int:
        calls.append(None)
        await asyncio.sleep(0.01)
        if len(calls) == 2:
            raise ConnectionError("down")
        return len(calls)

    recent = Recent(fetch, max_age=0.05)
    assert await asyncio.gather(*(recent.get() for _ in range(20))) == [1] * 20
    assert len(calls) == 1
    await asyncio.sleep(0.06)
    with pytest.raises(ConnectionError):
        await recent.get()
    assert await recent.get() == 3  # the failure was not kept
    assert await recent.get() == 3 and len(calls) == 3


async def test_a_fresh_look_is_one_fetched_after_the_call() -> None:
    """What a job created a moment ago needs: the kept value is young but older than the job."""
    values = iter(range(1, 10))

    async def fetch() -> int:
        await asyncio.sleep(0.01)
        return next(values)

    recent = Recent(fetch, max_age=60)
    assert await recent.get() == 1 and await recent.get() == 1
    assert await recent.get(fresh=True) == 2
    both = await asyncio.gather(recent.get(fresh=True), recent.get(fresh=True))
    assert both == [3, 3] or both == [3, 4]  # the second may share the first's fetch
    assert await recent.get() == both[1]

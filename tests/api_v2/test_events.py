"""The SSE translation's own logic (no server): a queued job's position frames and what happens to
the engine's event stream when a client leaves while the job waits. The live streams are tested
against a real ComfyUI and Valkey in test_sdk.py and test_shared.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from server.jobs import Job, JobState
from server.jobs.shared.store import StreamEvent as Event
from server.v2.events import translate


class Engine:
    """A shared-mode job engine (`local` False) whose event stream the test feeds by hand."""

    local = False

    def __init__(self, positions: list[int | None]) -> None:
        self.events: asyncio.Queue[Event | None] = asyncio.Queue()
        self.positions = positions  # one per look at the queue; the last one repeats
        self.looks = 0
        self.closed = asyncio.Event()
        self.state = JobState.QUEUED

    async def stream(self, job_id: str, last: str | None, *,
                     previews: bool = False) -> AsyncIterator[Event]:
        try:
            while (event := await self.events.get()) is not None:
                yield event
        finally:
            self.closed.set()

    async def get(self, job_id: str) -> Job:
        now = datetime.now(UTC)
        return Job(id=job_id, workflow="prompt", state=self.state, created_at=now, updated_at=now)

    async def queue_positions(self, jobs: list[Job]) -> dict[str, int]:
        position = self.positions[min(self.looks, len(self.positions) - 1)]
        self.looks += 1
        return {} if position is None else {j.id: position for j in jobs}


def event(seq: int, kind: str, **data: Any) -> Event:
    return Event(id=str(seq), type=kind, data=data)


async def test_a_waiting_job_gets_a_status_frame_each_time_it_moves_up() -> None:
    engine = Engine([3, 3, 2, 2, 1, None])
    job = await engine.get("j1")
    frames = translate(engine, job, None, view=lambda j: None, every=0.01)  # type: ignore[arg-type]
    await engine.events.put(event(1, "queued"))
    async with asyncio.timeout(5):
        got = [await anext(frames) for _ in range(3)]
    assert got == [("1", "status", {"status": "queued", "queue_position": 3}),
                   ("1", "status", {"status": "queued", "queue_position": 2}),
                   ("1", "status", {"status": "queued", "queue_position": 1})]
    await asyncio.sleep(0.05)  # the position is gone (a worker took it): no frame says null
    engine.state = JobState.RUNNING
    await engine.events.put(event(2, "running"))
    assert await anext(frames) == ("2", "status", {"status": "running", "queue_position": None})
    looks = engine.looks
    await engine.events.put(event(3, "progress", percent=50, nodes_done=1, nodes_total=2))
    assert (await anext(frames))[:2] == ("3", "progress")
    assert engine.looks == looks  # a running job's queue is not looked at
    await frames.aclose()
    assert engine.closed.is_set()


async def test_a_client_leaving_while_the_job_waits_closes_the_engine_stream() -> None:
    engine = Engine([5])
    job = await engine.get("j2")
    frames = translate(engine, job, None, view=lambda j: None, every=0.01)  # type: ignore[arg-type]
    await engine.events.put(event(1, "queued"))
    assert await anext(frames) == ("1", "status", {"status": "queued", "queue_position": 5})
    await asyncio.sleep(0.05)  # it polls; the position does not change: no new frame
    await frames.aclose()
    async with asyncio.timeout(1):
        await engine.closed.wait()
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_a_client_back_while_the_job_waits_goes_on_following_it() -> None:
    """Reconnecting with the `queued` frame's id replays nothing, yet the stream says where
    the job is now and follows it; a look at the queue that fails sends nothing and ends
    nothing."""
    engine = Engine([2, 1])
    job = await engine.get("j3")
    frames = translate(engine, job, "1", view=lambda j: None, every=0.01)  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        assert await anext(frames) == ("1", "status", {"status": "queued", "queue_position": 2})
        assert await anext(frames) == ("1", "status", {"status": "queued", "queue_position": 1})

        async def broken(jobs: list[Job]) -> dict[str, int]:
            raise ConnectionError("queue unreachable")

        engine.queue_positions = broken  # type: ignore[method-assign]
        await asyncio.sleep(0.05)
        engine.state = JobState.RUNNING
        await engine.events.put(event(2, "running"))
        assert await anext(frames) == ("2", "status", {"status": "running",
                                                       "queue_position": None})
    await frames.aclose()
    assert engine.closed.is_set()

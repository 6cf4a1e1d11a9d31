"""The per-job event broadcaster: replay, live events, bounded queues, clean disconnects."""

from __future__ import annotations

import asyncio

from server.jobs import JobEvent, JobEvents


async def collect(subscription: object, timeout: float = 2.0) -> list[JobEvent]:
    async def run() -> list[JobEvent]:
        return [event async for event in subscription]  # type: ignore[attr-defined]

    return await asyncio.wait_for(run(), timeout)


async def test_past_then_live_then_end() -> None:
    hub = JobEvents()
    hub.publish("j", "state", {"state": "queued"})
    hub.publish("j", "state", {"state": "running"})
    subscription = hub.subscribe("j")
    task = asyncio.create_task(collect(subscription))
    await asyncio.sleep(0)
    hub.publish("j", "progress", {"value": 1, "max": 4})
    hub.publish("j", "state", {"state": "succeeded"}, final=True)
    events = await task
    assert [(e.seq, e.type) for e in events] == [
        (1, "state"),
        (2, "state"),
        (3, "progress"),
        (4, "state"),
    ]
    assert events[-1].final and hub.subscriber_count("j") == 0


async def test_late_subscriber_gets_history_of_finished_job() -> None:
    hub = JobEvents()
    hub.publish("j", "state", {"state": "running"})
    hub.publish("j", "progress", {"value": 1, "max": 3})
    hub.publish("j", "progress", {"value": 2, "max": 3})
    hub.publish("j", "state", {"state": "failed"}, final=True)
    events = await collect(hub.subscribe("j"))
    assert [(e.type, e.data) for e in events] == [
        ("state", {"state": "running"}),
        ("progress", {"value": 2, "max": 3}),
        ("state", {"state": "failed"}),
    ]
    assert hub.publish("j", "late", {}) is None


async def test_resume_after_last_event_id() -> None:
    hub = JobEvents()
    for n in range(3):
        hub.publish("j", "executing", {"node": str(n)})
    hub.publish("j", "done", final=True)
    events = await collect(hub.subscribe("j", after=2))
    assert [e.seq for e in events] == [3, 4]


async def test_slow_listener_is_bounded_and_still_gets_the_final_event() -> None:
    hub = JobEvents(queue_size=8)
    subscription = hub.subscribe("j")
    for n in range(1000):
        hub.publish("j", "executing", {"node": str(n)})
    hub.publish("j", "state", {"state": "succeeded"}, final=True)
    events = await collect(subscription)
    assert len(events) == 8 and events[-1].final
    assert subscription.dropped == 1001 - 8


async def test_history_is_bounded_and_progress_coalesced() -> None:
    hub = JobEvents(history=5)
    for n in range(100):
        hub.publish("j", "progress", {"value": n, "max": 100})
    hub.publish("j", "executing", {"node": "9"})
    for n in range(10):
        hub.publish("j", "executed", {"node": str(n)})
    subscription = hub.subscribe("j")
    assert len(subscription._items) == 5
    subscription.close()


async def test_disconnect_leaves_nothing_behind() -> None:
    """A cancelled reader (the SSE client went away) unsubscribes by itself."""
    hub = JobEvents()
    subscription = hub.subscribe("unknown-job")
    task = asyncio.create_task(collect(subscription, timeout=10))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert hub.subscriber_count("unknown-job") == 0 and len(hub) == 0


async def test_context_manager_unsubscribes() -> None:
    hub = JobEvents()
    hub.publish("j", "state", {"state": "running"})
    async with hub.subscribe("j") as subscription:
        first = await anext(subscription)
        assert hub.subscriber_count("j") == 1
    assert first.type == "state" and hub.subscriber_count("j") == 0


async def test_many_listeners() -> None:
    hub = JobEvents()
    tasks = [asyncio.create_task(collect(hub.subscribe("j"))) for _ in range(50)]
    await asyncio.sleep(0)
    hub.publish("j", "progress", {"value": 1, "max": 1})
    hub.publish("j", "state", {"state": "succeeded"}, final=True)
    results = await asyncio.gather(*tasks)
    assert all([e.seq for e in events] == [1, 2] for events in results)


async def test_closed_channels_are_bounded() -> None:
    hub = JobEvents(keep_closed=3)
    for n in range(10):
        hub.publish(f"j{n}", "state", {"state": "succeeded"}, final=True)
    assert len(hub) == 3 and hub.is_finished("j9") and not hub.is_finished("j0")



async def test_transient_events_reach_only_listeners_with_room() -> None:
    """A preview goes to whoever listens now, with the last kept event's seq; it is never
    replayed, and a listener whose queue is half full does not get it (kept events do)."""
    hub = JobEvents(queue_size=4)
    assert hub.flash("j", "preview", {"n": 0}) == 0  # no channel, no listener: nothing kept
    hub.publish("j", "state", {"state": "running"})
    fast, slow = hub.subscribe("j"), hub.subscribe("j")
    assert await anext(fast) == JobEvent(1, "state", {"state": "running"})
    assert hub.flash("j", "preview", {"n": 1}) == 2
    assert hub.flash("j", "preview", {"n": 2}) == 1  # slow holds 2 of 4: no room
    assert await anext(fast) == JobEvent(1, "preview", {"n": 1}, transient=True)
    assert await anext(fast) == JobEvent(1, "preview", {"n": 2}, transient=True)
    hub.publish("j", "state", {"state": "succeeded"}, final=True)
    assert [(e.seq, e.type, e.transient) for e in await collect(slow)] == [
        (1, "state", False), (1, "preview", True), (2, "state", False)]
    assert [e.type for e in await collect(hub.subscribe("j"))] == ["state", "state"]
    assert hub.flash("j", "preview", {"n": 3}) == 0  # ended

"""`GET /jobs/{id}/events` over a real uvicorn: wire format, Last-Event-ID, pings, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from server.jobs import Job, JobEvent, JobEvents, JobState
from server.jobs import routes as job_routes
from tests.jobs_api.live import live, sse


class FakeJobs:
    """The part of JobManager the routes use: `get` and the event hub (a local manager)."""

    local = True

    def __init__(self) -> None:
        self.events = JobEvents()
        self.jobs: dict[str, Job] = {}

    def add(self, job_id: str, state: JobState = JobState.RUNNING) -> Job:
        now = datetime.now(UTC)
        job = Job(id=job_id, workflow="test/w", state=state, created_at=now, updated_at=now)
        self.jobs[job_id] = job
        return job

    async def get(self, job_id: str) -> Job:
        return self.jobs[job_id]


def jobs_app(jobs: FakeJobs) -> FastAPI:
    app = FastAPI()
    app.state.jobs = jobs

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    app.include_router(job_routes.router)
    return app


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_sse_format() -> None:
    event = JobEvent(7, "progress", {"value": 1, "max": 2, "note": "line\nbreak"})
    assert job_routes.sse_event(str(event.seq), event.type, event.data).encode().decode() == (
        'id: 7\nevent: progress\ndata: {"value":1,"max":2,"note":"line\\nbreak"}\n\n'
    )


async def test_stream_headers_events_and_end() -> None:
    jobs = FakeJobs()
    jobs.add("j1")
    jobs.events.publish("j1", "queued", {"id": "j1", "state": "queued"})
    async with live(jobs_app(jobs)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        async with http.stream("GET", "/jobs/j1/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            lines = response.aiter_lines()
            head = [await anext(lines) for _ in range(3)]
            assert sorted(head[:2]) == [': job "j1"', "retry: 2000"] and head[2] == ""
            assert [await anext(lines) for _ in range(4)] == [
                "id: 1", "event: queued", 'data: {"id":"j1","state":"queued"}', ""]
            assert jobs.events.subscriber_count("j1") == 1
            jobs.events.publish("j1", "progress", {"value": 1, "max": 2})
            jobs.events.publish("j1", "succeeded", {"id": "j1", "state": "succeeded"},
                                final=True)
            rest = [line async for line in lines]  # the server ends the stream
        assert rest == ["id: 2", "event: progress", 'data: {"value":1,"max":2}', "",
                        "id: 3", "event: succeeded", 'data: {"id":"j1","state":"succeeded"}', ""]
        assert jobs.events.subscriber_count("j1") == 0


async def test_last_event_id_skips_events_seen() -> None:
    jobs = FakeJobs()
    jobs.add("j2")
    for n in range(3):
        jobs.events.publish("j2", f"step{n}", {"n": n})
    jobs.events.publish("j2", "failed", {"id": "j2", "state": "failed"}, final=True)
    async with live(jobs_app(jobs)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        events = await sse(http, "/jobs/j2/events", headers={"Last-Event-ID": "2"})
        assert events == [("step2", {"n": 2}), ("failed", {"id": "j2", "state": "failed"})]
        assert len(await sse(http, "/jobs/j2/events")) == 4


async def test_finished_before_a_restart_gets_one_final_event() -> None:
    jobs = FakeJobs()
    jobs.add("j3", JobState.SUCCEEDED)  # no events: the process that ran it has gone
    async with live(jobs_app(jobs)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        async with http.stream("GET", "/jobs/j3/events", headers={"Last-Event-ID": "5"}) as r:
            text = (await r.aread()).decode()
        assert text == 'id: 6\nevent: succeeded\ndata: {"id":"j3","state":"succeeded"}\n\n'


async def test_pings_and_disconnect_closes_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_routes, "PING_INTERVAL", 0.2)
    jobs = FakeJobs()
    jobs.add("j4")
    async with live(jobs_app(jobs)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http, \
                http.stream("GET", "/jobs/j4/events") as response:
            lines = response.aiter_lines()
            while await anext(lines) != ": ping":
                pass
            assert jobs.events.subscriber_count("j4") == 1
        await until(lambda: jobs.events.subscriber_count("j4") == 0)  # the client went away


async def test_several_apps_in_one_process() -> None:
    """A server shutting down with a stream open ends it; later apps' streams still work."""
    first = FakeJobs()
    first.add("a")
    async with httpx.AsyncClient(timeout=10) as http:
        async with live(jobs_app(first)) as url:
            reader = asyncio.create_task(sse(http, f"{url}/jobs/a/events"))
            await until(lambda: first.events.subscriber_count("a") == 1)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 3  # not held until uvicorn's 5 s graceful timeout
        with contextlib.suppress(httpx.TransportError):  # the server cut it
            assert await asyncio.wait_for(reader, 10) == []
    assert first.events.subscriber_count("a") == 0
    for name in ("b", "c"):
        jobs = FakeJobs()
        jobs.add(name)
        async with live(jobs_app(jobs)) as url, \
                httpx.AsyncClient(base_url=url, timeout=10) as http:
            reader = asyncio.create_task(sse(http, f"/jobs/{name}/events"))
            await until(lambda j=jobs, n=name: j.events.subscriber_count(n) == 1)
            await asyncio.sleep(0.6)  # longer than sse-starlette's shutdown poll
            jobs.events.publish(name, "succeeded", {"id": name}, final=True)
            assert await asyncio.wait_for(reader, 10) == [("succeeded", {"id": name})]

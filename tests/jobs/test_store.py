"""The SQLite job store: lifecycle, idempotency, restart, recovery, expiry."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.jobs import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    JobState,
    JobStore,
    Progress,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[JobStore]:
    s = JobStore(tmp_path / "jobs.db", ttl=3600, clock=clock)
    yield s
    s.close()


async def test_lifecycle(store: JobStore, clock: Clock) -> None:
    job, created = await store.create("sd3.5-medium/txt2img", meta={"webhook": True})
    assert created and job.state is JobState.QUEUED and job.meta == {"webhook": True}
    clock.now += 1
    running = await store.mark_running(job.id, prompt_id="p-1")
    assert (running.state, running.prompt_id) == (JobState.RUNNING, "p-1")
    progress = await store.update_progress(job.id, Progress(value=3, max=20, node="3"))
    assert progress.progress == Progress(value=3, max=20, node="3")
    clock.now += 1
    done = await store.succeed(job.id, {"images": ["aGk="], "filenames": ["a.png"]})
    assert done.state is JobState.SUCCEEDED and done.result["filenames"] == ["a.png"]
    assert done.expires_at is not None
    assert (done.expires_at - done.updated_at).total_seconds() == 3600
    assert done.created_at < done.updated_at


async def test_final_states_do_not_change(store: JobStore) -> None:
    job, _ = await store.create("w")
    await store.fail(job.id, {"type": "execution_error", "message": "boom"})
    with pytest.raises(InvalidTransition) as caught:
        await store.cancel(job.id)
    assert caught.value.job.state is JobState.FAILED
    with pytest.raises(InvalidTransition):
        await store.succeed(job.id, {})
    unchanged = await store.update_progress(job.id, Progress(value=1, max=2))
    assert unchanged.progress == Progress()


async def test_cancel_pending_and_running(store: JobStore) -> None:
    pending, _ = await store.create("w")
    running, _ = await store.create("w")
    await store.mark_running(running.id)
    a = await store.cancel(pending.id, {"type": "cancelled", "message": "dequeued"})
    b = await store.cancel(running.id, {"type": "cancelled", "message": "interrupted"})
    assert (a.state, b.state) == (JobState.CANCELLED, JobState.CANCELLED)
    assert (a.error["message"], b.error["message"]) == ("dequeued", "interrupted")


async def test_unknown_job(store: JobStore) -> None:
    assert await store.get("nope") is None
    with pytest.raises(JobNotFound):
        await store.require("nope")
    with pytest.raises(JobNotFound):
        await store.succeed("nope", {})


async def test_idempotency_key_returns_the_first_job(store: JobStore) -> None:
    first, created = await store.create("w", idempotency_key="k1", request_hash="h")
    again, created_again = await store.create("w", idempotency_key="k1", request_hash="h")
    assert (created, created_again, again.id) == (True, False, first.id)
    assert (await store.find_key("k1")).id == first.id
    with pytest.raises(IdempotencyConflict):
        await store.create("w", idempotency_key="k1", request_hash="other")


async def test_concurrent_submits_with_one_key_make_one_job(store: JobStore) -> None:
    results = await asyncio.gather(*(store.create("w", idempotency_key="same") for _ in range(20)))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_survives_restart_and_recovers_active_jobs(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "state" / "jobs.db"
    first = JobStore(path, clock=clock)
    done, _ = await first.create("w", idempotency_key="k")
    await first.succeed(done.id, {"images": []})
    queued, _ = await first.create("w")
    running, _ = await first.create("w")
    await first.mark_running(running.id)
    first.close()

    second = JobStore(path, clock=clock)
    try:
        assert (await second.get(done.id)).result == {"images": []}
        restarted = {"error": "the server restarted", "type": "server_restarted", "status": 503}
        assert sorted(await second.recover(restarted)) == sorted([queued.id, running.id])
        for job_id in (queued.id, running.id):
            job = await second.get(job_id)
            assert job.state is JobState.FAILED
            assert job.error == restarted
        assert await second.recover(restarted) == []
        assert (await second.create("w", idempotency_key="k"))[0].id == done.id
    finally:
        second.close()


async def test_wal_mode(store: JobStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_expiry_purge(store: JobStore, clock: Clock) -> None:
    old, _ = await store.create("w", idempotency_key="old")
    await store.succeed(old.id, {})
    active, _ = await store.create("w")
    clock.now += 1800
    fresh, _ = await store.create("w")
    await store.fail(fresh.id, {"message": "x"})
    clock.now += 1801
    assert await store.purge_expired() == 1
    assert await store.get(old.id) is None
    assert await store.get(fresh.id) is not None
    assert await store.get(active.id) is not None
    again, created = await store.create("w", idempotency_key="old")
    assert created and again.id != old.id


async def test_no_expiry_when_ttl_is_none(tmp_path: Path) -> None:
    s = JobStore(tmp_path / "j.db", ttl=None)
    job, _ = await s.create("w")
    assert (await s.succeed(job.id)).expires_at is None
    s.close()


async def test_list_and_count(store: JobStore) -> None:
    a, _ = await store.create("w")
    b, _ = await store.create("w")
    await store.mark_running(b.id)
    c, _ = await store.create("w")
    await store.cancel(c.id)
    assert await store.count() == 2
    assert [j.id for j in await store.list([JobState.RUNNING])] == [b.id]
    assert len(await store.list()) == 3


async def test_job_json_round_trip(store: JobStore) -> None:
    job, _ = await store.create("w")
    payload = job.model_dump(mode="json")
    assert payload["state"] == "queued" and payload["progress"] == {
        "value": 0,
        "max": 0,
        "node": None,
    }

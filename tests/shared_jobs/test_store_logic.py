"""Pure logic of the shared store on fakeredis (Lua scripts included): one finish per job,
idempotency, event resume, admission. Everything with real parts is in the other modules."""

from __future__ import annotations

import asyncio
import json
import time

import fakeredis
import pytest

from server.errors import ApiError
from server.execution.runner import Run
from server.jobs.manager import Submission, webhook_id
from server.jobs.models import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    JobState,
    Progress,
)
from server.jobs.shared import codec
from server.jobs.shared.connection import Keys
from server.jobs.shared.front import SharedAdmission
from server.jobs.shared.store import QueueFull, SharedStore, decode


@pytest.fixture
async def store() -> SharedStore:
    server = fakeredis.FakeServer()
    redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    reader = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    return SharedStore(redis, reader, Keys("unit"), ttl=60, events_max=50)


async def create(store: SharedStore, key: str | None = None, digest: str = "d1",
                 job_id: str = "j1") -> tuple:
    return await store.create("prompt", job_id=job_id, idempotency_key=key, request_hash=digest,
                              meta={"request_id": "r1", "prompt": {}}, sub={"run": {}})


async def test_a_job_finishes_once(store: SharedStore) -> None:
    job, created = await create(store)
    assert created and job.state is JobState.QUEUED and await store.depth() == 1
    await store.mark_running("j1", prompt_id="p1")
    await store.update_progress("j1", Progress(value=1, max=2, node="3"))
    await store.succeed("j1", {"images": ["a"]})
    done = await store.require("j1")
    assert done.state is JobState.SUCCEEDED and done.progress.node == "3"
    assert done.expires_at is not None and done.prompt_id == "p1"
    with pytest.raises(InvalidTransition):  # a late duplicate finish changes nothing
        await store.succeed("j1", {"images": ["b"]})
    with pytest.raises(InvalidTransition):
        await store.cancel("j1")
    assert (await store.require("j1")).result == {"images": ["a"]}


async def test_idempotency_key_is_taken_once(store: SharedStore) -> None:
    first, created = await create(store, key="k")
    again, created_again = await create(store, key="k", job_id="j2")
    assert created and not created_again and again.id == first.id
    assert (await store.find_key("k", "d1")).id == "j1"
    with pytest.raises(IdempotencyConflict):
        await store.find_key("k", "other request")
    results = await asyncio.gather(*(create(store, key="race", job_id=f"r{i}")
                                     for i in range(10)))
    assert len({job.id for job, _ in results}) == 1 and sum(c for _, c in results) == 1


async def test_events_resume_after_an_entry_id(store: SharedStore) -> None:
    await create(store)
    for i in range(3):
        store.publish("j1", "progress", {"i": i})
    await store.succeed("j1", {"images": []})  # writes what is queued first, then the final
    whole = [e async for e in store.events("j1")]
    assert [e.type for e in whole] == ["queued", "progress", "progress", "progress", "succeeded"]
    rest = [e async for e in store.events("j1", whole[1].id)]
    assert rest == whole[2:]
    t0 = time.monotonic()  # resumed past the final event: ends at once (no quiet reads)
    assert [e async for e in store.events("j1", whole[-1].id)] == []
    assert time.monotonic() - t0 < 0.5


async def test_the_final_event_is_written_with_the_final_state(store: SharedStore) -> None:
    events = store.keys.events("j1")
    await create(store)
    await store.succeed("j1", {"images": ["a"]})
    # no publish(): the state change itself appended the final event
    last = (await store.redis.xrevrange(events, count=1))[0][1]
    assert (last["type"], last["final"]) == ("succeeded", "1")
    assert json.loads(last["data"]) == {"id": "j1", "state": "succeeded"}
    store.publish("j1", "succeeded", {"id": "j1", "state": "succeeded"}, final=True)
    store.publish("j1", "executing", {"node": "9"})  # a straggler of the finished prompt
    await store.flush()  # neither a second final event nor anything after it
    with pytest.raises(InvalidTransition):  # a late duplicate finish appends nothing either
        await store.fail("j1", {"error": "late"})
    assert [f["type"] for _, f in await store.redis.xrange(events)] == ["queued", "succeeded"]
    assert await store.redis.ttl(events) > 0

    await create(store, job_id="j2")
    await store.fail("j2", {"error": "boom", "type": "x"})
    await create(store, job_id="j3")
    await store.cancel("j3", {"error": "job cancelled", "cancelled": "deleted"})
    finals = [[e async for e in store.events(j)][-1] for j in ("j2", "j3")]
    assert [(e.type, e.final) for e in finals] == [("failed", True), ("cancelled", True)]
    assert finals[0].data["error"] == {"error": "boom", "type": "x"}
    assert finals[1].data == {"id": "j3", "state": "cancelled", "cancelled": "deleted"}


async def test_a_reader_ends_when_the_job_is_gone(store: SharedStore) -> None:
    await create(store)
    await store.redis.delete(store.keys.job("j1"), store.keys.events("j1"))  # expired
    assert [e async for e in store.events("j1", block=50)] == []


async def test_a_first_delivery_carries_what_to_run_and_its_end_acks_it(
        store: SharedStore) -> None:
    """The queue entry brings the submission and the prompt id (a worker starts without reading
    the record); the script that ends the job acks and deletes the entry the worker claimed,
    but not one it keeps (webhooks still to send: '')."""
    for job_id in ("j1", "j2"):
        await store.create("prompt", job_id=job_id, idempotency_key=None, request_hash=None,
                           meta={}, sub={"run": {"id": job_id}}, prompt_id=f"p-{job_id}")
    assert (await store.require("j1")).prompt_id == "p-j1"  # known to every replica at once
    await store.redis.xgroup_create(store.keys.queue, "workers", id="0")
    claimed = {}
    for _ in range(2):
        ((_, [(entry, fields)]),) = await store.redis.xreadgroup(
            "workers", "w1", {store.keys.queue: ">"}, count=1)
        assert json.loads(fields["sub"]) == {"run": {"id": fields["job"]}}
        assert fields["prompt_id"] == f"p-{fields['job']}"
        claimed[fields["job"]] = entry
    store.claimed.update({"j1": claimed["j1"], "j2": ""})
    await store.succeed("j1", {"images": []})
    await store.fail("j2", {"error": "x"})
    assert "j1" not in store.claimed and store.claimed["j2"] == ""
    assert await store.depth() == 1  # j2's entry: its worker acks it after the webhooks
    assert [p["message_id"] for p in await store.redis.xpending_range(
        store.keys.queue, "workers", min="-", max="+", count=10)] == [claimed["j2"]]


async def test_admission_uses_the_shared_depth(store: SharedStore) -> None:
    """The create script refuses a job while the queue holds `limit` (nothing written: no
    record, media, private data or key), and still replays an existing idempotency key then."""
    async def create_limited(job_id: str, key: str | None = None) -> tuple:
        return await store.create("prompt", job_id=job_id, idempotency_key=key,
                                  request_hash="d1", meta={}, sub={"run": {}}, limit=2,
                                  media={"comfygen/x.png": b"\x89PNG"},
                                  private={"models": [["a", "b", "https://x/m", "m"]]})

    await create_limited("a", key="ka")
    await create_limited("b")
    with pytest.raises(QueueFull) as full:
        await create_limited("c", key="kc")
    assert full.value.depth == 2 and await store.get("c") is None and await store.depth() == 2
    keys = store.keys
    assert not await store.redis.exists(keys.media("c"), keys.private("c"), keys.key("kc"))
    assert (await create_limited("a2", key="ka"))[0].id == "a"  # a replay is not a new job
    refused = SharedAdmission(limit=2, retry_after=7, depth=store.depth).refuse(full.value.depth)
    assert refused.status == 429 and refused.headers["Retry-After"] == "7"
    assert refused.type == "queue_full"


async def test_after_a_refusal_admission_reads_the_depth_first(
        store: SharedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """No round trip while nothing was refused; for `retry_after` seconds after a refusal,
    `acquire` refuses on the queue's length itself (before the request's media work) and lets
    a request through once there is room."""
    reads = []

    async def depth() -> int:
        reads.append(await store.depth())
        return reads[-1]

    clock = [1000.0]
    monkeypatch.setattr("server.jobs.shared.front.time.monotonic", lambda: clock[0])
    admission = SharedAdmission(limit=2, retry_after=7, depth=depth)
    for job_id in ("a", "b"):
        await create(store, job_id=job_id)
    await admission.acquire()
    assert reads == []  # the create script is the check
    admission.refuse(2)
    with pytest.raises(ApiError) as early:
        await admission.acquire()
    assert early.value.status == 429 and early.value.headers["Retry-After"] == "7"
    assert reads == [2]
    await store.redis.xtrim(store.keys.queue, maxlen=1, approximate=False)  # one left
    await admission.acquire()
    assert reads == [2, 1]
    admission.refuse(2)
    clock[0] += 7.5  # the window has passed: no read
    await admission.acquire()
    assert reads == [2, 1]


def test_submission_round_trip_and_webhook_ids() -> None:
    run = Run(id="r", graph={"1": {"class_type": "X", "inputs": {}}}, nodes=("1",),
              input={"a": 1}, fields={("1", "seed"): "seed"})
    back = codec.load(codec.dump(Submission(run, "wf", None, "http://h", "k", "d")))
    assert back.run.fields == run.fields and back.run.nodes == ("1",)
    assert (back.webhook_v2, back.idempotency_key, back.request_hash) == ("http://h", "k", "d")
    assert webhook_id("j", "prompt.complete") == webhook_id("j", "prompt.complete")
    assert webhook_id("j", "prompt.complete") != webhook_id("j", "prompt.failed")
    assert webhook_id("j", "prompt.complete").startswith("msg_")


async def test_a_capped_stream_keeps_its_final_event(store: SharedStore) -> None:
    await create(store)
    for i in range(300):
        store.publish("j1", "progress", {"i": i})
    await store.succeed("j1", {"images": []})
    # MAXLEN ~ trims whole stream nodes (100 entries each): near the cap, far below 301
    assert await store.redis.xlen(store.keys.events("j1")) <= store.events_max + 100
    events = [e async for e in store.events("j1")]
    assert events[-1].type == "succeeded" and events[-1].final and events[-2].data == {"i": 299}


async def test_listing_is_newest_first_filtered_and_drops_expired_ids(store: SharedStore) -> None:
    for i in range(5):
        await create(store, job_id=f"l{i}")
        await asyncio.sleep(0.002)  # distinct creation times
    await store.mark_running("l3", prompt_id="p")
    await store.redis.delete(store.keys.job("l1"))  # its record expired
    assert [j.id for j in await store.list()] == ["l4", "l3", "l2", "l0"]
    assert [j.id for j in await store.list([JobState.RUNNING])] == ["l3"]
    assert [j.id for j in await store.list(limit=2)] == ["l4", "l3"]
    assert await store.redis.zscore(store.keys.index, "l1") is None  # dropped on the way


async def test_a_burst_of_events_is_one_script_call_in_order(store: SharedStore) -> None:
    await create(store)
    await create(store, job_id="j2")
    await store.succeed("j2", {"images": []})
    calls = 0
    append = store._append

    async def counted(**kw: object) -> object:
        nonlocal calls
        calls += 1
        return await append(**kw)

    store._append = counted  # type: ignore[method-assign]
    for i in range(5):  # queued together: one burst (the writer starts at the next await)
        store.publish("j1", "progress", {"i": i})
        store.publish("j2", "executing", {"node": "9"})  # after its final event: dropped
    await store.flush()
    assert calls == 1
    await store.succeed("j1", {"images": []})
    assert [e.data for e in [e async for e in store.events("j1")][1:-1]] == [
        {"i": i} for i in range(5)]
    assert [f["type"] for _, f in await store.redis.xrange(store.keys.events("j2"))] == [
        "queued", "succeeded"]


async def test_a_waiter_gets_the_final_record_with_the_final_event(store: SharedStore) -> None:
    await create(store)
    waiter = asyncio.create_task(store.until_final("j1", block=2000))
    await asyncio.sleep(0.05)
    store.publish("j1", "executing", {"node": "1"})
    await store.flush()
    assert not waiter.done()
    t0 = time.monotonic()
    await store.succeed("j1", {"images": ["a"]})
    job = await asyncio.wait_for(waiter, 1)
    assert time.monotonic() - t0 < 0.5  # woken by the event, not by a timeout or a poll
    assert job.state is JobState.SUCCEEDED and job.result == {"images": ["a"]}
    assert (await store.until_final("j1")).result == {"images": ["a"]}  # already final
    await store.redis.delete(store.keys.job("j1"))
    with pytest.raises(JobNotFound):
        await store.until_final("j1")


async def test_media_come_with_the_job_and_go_with_its_end(store: SharedStore) -> None:
    """A job's media and private data are written by the script that creates it (not by a
    replay of its key) and deleted by the one that ends it, whichever end it is."""
    keys, raw = store.keys, store.redis
    files = {"comfygen/a.png": b"\x89PNG\x00\xff", "v2-b.jpg": b"\xff\xd8"}
    private = {"models": [["prompt.9.inputs.vae_name", "vae", "https://x/v.sft?sig=1", "v.sft"]]}
    for job_id, end in (("m1", "succeed"), ("m2", "cancel"), ("m3", "fail")):
        _, created = await store.create("prompt", job_id=job_id, idempotency_key=f"k-{job_id}",
                                        request_hash="d", meta={}, sub={"run": {}},
                                        media=files, private=private)
        assert created and await raw.hlen(keys.media(job_id)) == 2
        assert 0 < await raw.ttl(keys.media(job_id)) <= 60
        assert "sig=1" not in json.dumps(await raw.hgetall(keys.job(job_id)))
        _, created = await store.create("prompt", job_id=job_id + "-again",
                                        idempotency_key=f"k-{job_id}", request_hash="d",
                                        meta={}, sub={"run": {}}, media=files, private=private)
        assert not created and not await raw.exists(keys.media(job_id + "-again"),
                                                    keys.private(job_id + "-again"))
        if end == "succeed":
            await store.succeed(job_id, {})
        elif end == "cancel":
            await store.cancel(job_id)
        else:
            await store.fail(job_id, {"error": "x"})
        assert not await raw.exists(keys.media(job_id), keys.private(job_id))


def test_the_codec_carries_the_media_names_not_their_bytes() -> None:
    run = Run(id="r", graph={}, uploads=("comfygen/a.png",), attachments={"comfygen/a.png": b"x"},
              models=(("f", "vae", "https://x/v.sft?sig=1", "v.sft"),))
    data = codec.dump(Submission(run, "prompt", None, None, None, None))
    assert "sig=1" not in json.dumps(data) and "attachments" not in json.dumps(data)
    back = codec.load(data).run
    assert back.uploads == ("comfygen/a.png",) and back.models == (("f", "vae", "", "v.sft"),)


async def test_integers_beyond_64_bits_come_back_exact(store: SharedStore) -> None:
    """A raw graph may hold any JSON integer: orjson cannot write one beyond 64 bits and would
    read it back as a float, so such a field is written by `json` and read back exactly, from
    the record and from the queue entry a worker starts from."""
    big = 2**64 + 1
    sub = {"run": {"graph": {"1": {"inputs": {"seed": big}}}}}
    await store.create("prompt", job_id="big", idempotency_key=None, request_hash=None,
                       meta={"prompt": {"seed": big}}, sub=sub)
    job, stored = await store.submission("big")
    assert stored == sub and job.meta["prompt"] == {"seed": big}
    await store.redis.xgroup_create(store.keys.queue, "workers", id="0")
    ((_, [(_entry, fields)]),) = await store.redis.xreadgroup(
        "workers", "w1", {store.keys.queue: ">"}, count=1)
    assert decode(fields["sub"]) == sub
    await store.succeed("big", {"n": big})
    assert (await store.require("big")).result == {"n": big}

"""2 API replicas + 2 workers (each with its own real ComfyUI) around one real Valkey."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis

from comfygen.comfy.launcher import ComfyUIProcess
from tests.comfyui_testing import invert_graph, rgb, slow_graph
from tests.jobs_api.live import comfy_queue, sse, wait_state
from tests.shared_jobs.topology import ASYNC, topology
from tests.shared_jobs.valkey import Valkey

pytestmark = pytest.mark.comfyui


def pixel(b64: str) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB").getpixel((0, 0))


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))




async def test_many_jobs_across_replicas(valkey: Valkey, comfyui: ComfyUIProcess,
                                         comfyui2: ComfyUIProcess) -> None:
    jobs_total = 100
    async with topology(valkey, [comfyui, comfyui2]) as top:
        a, b = top.api
        colors = [random.randrange(0xFFFFFF) for _ in range(jobs_total)]
        t0 = time.monotonic()

        async def submit(i: int) -> str:
            http = top.api[i % 2]
            r = await http.post("/prompt", json={"prompt": invert_graph(colors[i], size=8),
                                                 "id": f"job-{i}"}, headers=ASYNC)
            assert r.status_code == 202, r.text
            return r.json()["job_id"]

        ids = await asyncio.gather(*(submit(i) for i in range(jobs_total)))
        submitted = time.monotonic() - t0
        # every job is readable (and its events streamable) through the other replica
        streamed = await asyncio.gather(*(
            asyncio.wait_for(sse(top.api[(i + 1) % 2], f"/jobs/{job_id}/events"), 120)
            for i, job_id in enumerate(ids)))
        for events in streamed:
            assert events[0][0] == "queued" and events[-1][0] == "succeeded", events
        for i, job_id in enumerate(ids):
            job = (await top.api[(i + 1) % 2].get(f"/jobs/{job_id}")).json()
            assert job["state"] == "succeeded", job
            assert job["request_id"] == f"job-{i}"
            inverted = tuple(255 - c for c in rgb(colors[i]))
            assert near(pixel(job["result"]["images"][0]), inverted)
        elapsed = time.monotonic() - t0
        print(f"\n{jobs_total} jobs: submitted in {submitted:.2f} s, all done in {elapsed:.2f} s")

        # the synchronous contract holds through an API replica: 200 with the image
        r = await b.post("/prompt", json={"prompt": invert_graph(0x102030, size=8)})
        assert r.status_code == 200, r.text
        assert near(pixel(r.json()["images"][0]), (0xEF, 0xDF, 0xCF))
        # and a graph ComfyUI refuses gets the same error status and body as on one machine
        bad = invert_graph(0x102030)
        bad["2"]["inputs"]["image"] = ["7", 0]
        r = await a.post("/prompt", json={"prompt": bad})
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "prompt_invalid" or "node_errors" in r.json() or r.json()
        ready = (await a.get("/ready")).json()
        assert ready["status"] == "ready" and ready["queue"] == 0 and ready["role"] == "api"
        assert (await comfy_queue(comfyui))["queue_running"] == []
        assert (await comfy_queue(comfyui2))["queue_running"] == []


async def test_a_final_state_always_comes_with_its_final_event(
        valkey: Valkey, comfyui: ComfyUIProcess, comfyui2: ComfyUIProcess) -> None:
    """A reader that sees a job's state final reads the stream at once and finds the final
    event there (they are written by one script); a stream resumed past it ends at once."""
    jobs_total = 40
    async with topology(valkey, [comfyui, comfyui2]) as top:
        ids = []
        for i in range(jobs_total):
            r = await top.api[i % 2].post("/prompt", json={"prompt": invert_graph(i, size=8)},
                                          headers=ASYNC)
            assert r.status_code == 202, r.text
            ids.append(r.json()["job_id"])
        redis = Redis.from_url(valkey.url, decode_responses=True)
        pending, caught = list(ids), 0
        try:
            async with asyncio.timeout(120):
                while pending:  # every job's state, one round trip per round
                    async with redis.pipeline(transaction=False) as pipe:
                        for job_id in pending:
                            pipe.hget(f"{top.prefix}:job:{job_id}", "state")
                        states = await pipe.execute()
                    for job_id, state in zip(list(pending), states, strict=True):
                        if state not in ("succeeded", "failed", "cancelled"):
                            continue
                        last = await redis.xrevrange(f"{top.prefix}:events:{job_id}", count=1)
                        assert last, (job_id, state)
                        assert (last[0][1]["type"], last[0][1]["final"]) == (state, "1"), last
                        pending.remove(job_id)
                        caught += 1
        finally:
            await redis.aclose()
        assert caught == jobs_total
        events = await sse(top.api[1], f"/jobs/{ids[0]}/events")
        assert [kind for kind, _ in events][-1] == "succeeded"
        final_id = None
        async with top.api[0].stream("GET", f"/jobs/{ids[0]}/events") as response:
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    final_id = line[3:].strip()
        t0 = time.monotonic()
        assert await sse(top.api[1], f"/jobs/{ids[0]}/events",
                         headers={"Last-Event-ID": final_id}) == []
        assert time.monotonic() - t0 < 1.0  # no quiet reads to wait out


async def test_idempotency_key_through_the_other_replica(
        valkey: Valkey, comfyui: ComfyUIProcess, comfyui2: ComfyUIProcess) -> None:
    async with topology(valkey, [comfyui, comfyui2]) as top:
        a, b = top.api
        body = {"prompt": invert_graph(0x336699, size=8), "id": "same"}
        key = {"Idempotency-Key": "key-123"}
        r1 = await a.post("/prompt", json=body, headers={**ASYNC, **key})
        assert r1.status_code == 202, r1.text
        r2 = await b.post("/prompt", json=body, headers={**ASYNC, **key})
        assert r2.status_code == 202, r2.text
        assert r2.json()["job_id"] == r1.json()["job_id"]
        assert r2.headers["idempotent-replayed"] == "true"
        # synchronous replay on B waits for the job and answers its result
        r3 = await b.post("/prompt", json=body, headers=key)
        assert r3.status_code == 200 and near(pixel(r3.json()["images"][0]), (0xCC, 0x99, 0x66))
        # the same key for another request is refused on either replica
        other = {"prompt": invert_graph(0x000001, size=8), "id": "other"}
        r4 = await b.post("/prompt", json=other, headers={**ASYNC, **key})
        assert r4.status_code == 422 and r4.json()["type"] == "idempotency_key_reused"
        # concurrent first uses of a fresh key through both replicas: one job
        key2 = {"Idempotency-Key": "key-456"}
        rs = await asyncio.gather(*(top.api[i % 2].post("/prompt", json=body,
                                                        headers={**ASYNC, **key2})
                                    for i in range(6)))
        assert len({r.json()["job_id"] for r in rs}) == 1


async def event_ids(http: httpx.AsyncClient, url: str, **kwargs: Any
                    ) -> AsyncIterator[tuple[str, str]]:
    """(id, event) of each event of a stream; leaving the loop drops the connection."""
    async with http.stream("GET", url, **kwargs) as response:
        event_id, kind = None, None
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line == "" and event_id:
                yield event_id, kind
                event_id = None


async def test_sse_resumes_on_the_other_replica(valkey: Valkey, comfyui: ComfyUIProcess,
                                                comfyui2: ComfyUIProcess) -> None:
    async with topology(valkey, [comfyui, comfyui2]) as top:
        a, b = top.api
        r = await a.post("/prompt", json={"prompt": slow_graph(blurs=4, size=256)},
                         headers=ASYNC)
        job_id = r.json()["job_id"]
        first: list[tuple[str, str]] = []
        async for event_id, kind in event_ids(b, f"/jobs/{job_id}/events"):
            first.append((event_id, kind))
            if kind == "executing" and len(first) >= 4:
                break  # drop the connection mid-run
        assert first and first[-1][1] == "executing"
        rest = [e async for e in event_ids(a, f"/jobs/{job_id}/events",
                                           headers={"Last-Event-ID": first[-1][0]})]
        assert rest[-1][1] == "succeeded"
        # one uninterrupted reading of the whole stream afterwards: the two parts are exactly it
        whole = [e async for e in event_ids(b, f"/jobs/{job_id}/events")]
        assert first + rest == whole
        assert len({i for i, _ in whole}) == len(whole)


async def test_cancel_through_the_other_replica(valkey: Valkey, comfyui: ComfyUIProcess,
                                                comfyui2: ComfyUIProcess) -> None:
    async with topology(valkey, [comfyui, comfyui2]) as top:
        a, b = top.api
        r = await a.post("/prompt", json={"prompt": slow_graph(blurs=30, size=256)},
                         headers=ASYNC)
        job_id = r.json()["job_id"]
        job = await wait_state(b, job_id, {"running"})
        await asyncio.sleep(0.5)
        prompt_id = job["prompt_id"]
        queues = [await comfy_queue(c) for c in (comfyui, comfyui2)]
        running = [c for c, q in zip((comfyui, comfyui2), queues, strict=True)
                   if any(item[1] == prompt_id for item in q["queue_running"])]
        assert len(running) == 1
        t0, sent = time.monotonic(), time.time()
        r = await b.delete(f"/jobs/{job_id}")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled" and r.json()["cancelled"] == "interrupted"
        async with asyncio.timeout(5):
            while (q := await comfy_queue(running[0]))["queue_running"] or q["queue_pending"]:
                await asyncio.sleep(0.02)
        took = time.monotonic() - t0
        redis = Redis.from_url(valkey.url, decode_responses=True)
        reached = float(await redis.hget(f"{top.prefix}:job:{job_id}", "interrupted_at")) - sent
        await redis.aclose()
        print(f"\ncancel reached the worker (ComfyUI interrupted) {reached:.3f} s after DELETE; "
              f"its ComfyUI queue was empty after {took:.3f} s")
        assert reached < 1.0
        assert took < 3.0  # ComfyUI stops between nodes: the running blur finishes first
        assert (await a.get(f"/jobs/{job_id}")).json()["state"] == "cancelled"
        assert (await b.delete(f"/jobs/{job_id}")).status_code == 409
        # the worker takes the next job
        r = await b.post("/prompt", json={"prompt": invert_graph(0x010203, size=8)})
        assert r.status_code == 200


async def test_workflow_routes_on_an_api_replica(valkey: Valkey, comfyui: ComfyUIProcess,
                                                 comfyui2: ComfyUIProcess) -> None:
    """No ComfyUI on the API replica: node definitions come from the workers through Redis."""
    from tests.server.server_workflows import registry

    async with topology(valkey, [comfyui, comfyui2], registry=registry()) as top:
        a, b = top.api
        async with asyncio.timeout(30):  # a worker publishes its node definitions
            while "lanczos" not in (await b.get("/openapi.json")).text:
                await asyncio.sleep(0.2)
        r = await a.post("/workflow/test/ckpt", json={"input": {"checkpoint": "nope.safetensors"}})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["type"] == "value_not_available"
        assert "models/checkpoints" in r.json()["detail"][0]["msg"]
        r = await b.post("/workflow/test/invert", json={"input": {"color": 0x336699, "size": 8}})
        assert r.status_code == 200, r.text
        assert near(pixel(r.json()["images"][0]), (0xCC, 0x99, 0x66))
        # media are fetched and checked by the API replica (tests/shared_jobs/test_media.py):
        # the URL guard refuses a host that does not resolve, naming the field
        r = await a.post("/workflow/test/scale", json={"input": {"image": "https://x.test/a.png"}})
        assert r.status_code == 422 and r.json()["field"] == "input.image", r.text
        graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "https://x.test/a.png"}},
                 "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
        r = await b.post("/prompt", json={"prompt": graph})  # a URL in a raw graph: the same
        assert r.status_code == 422 and "prompt.1.inputs.image" in r.json()["error"], r.text


async def test_one_server_role_all_with_redis(valkey: Valkey, comfyui: ComfyUIProcess) -> None:
    """`role=all` on Redis: one process takes HTTP and runs jobs; with no worker at all a
    synchronous request answers 504 after `request_timeout` and its job waits in the queue."""
    from server.app import create_app
    from tests.jobs_api.live import live
    from tests.shared_jobs.topology import shared_settings

    settings = shared_settings(comfyui, valkey, "all1", "all")
    async with live(create_app(settings, {})) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/prompt", json={"prompt": invert_graph(0x336699, size=8)})
        assert r.status_code == 200 and near(pixel(r.json()["images"][0]), (0xCC, 0x99, 0x66))
        r = await http.post("/prompt", json={"prompt": invert_graph(0x336699, size=8)},
                            headers=ASYNC)
        job = await wait_state(http, r.json()["job_id"], {"succeeded"})
        assert near(pixel(job["result"]["images"][0]), (0xCC, 0x99, 0x66))
        ready = (await http.get("/ready")).json()
        assert ready["role"] == "all" and ready["queue"] == 0
    lonely = shared_settings(comfyui, valkey, "nobody", "api", request_timeout=1.0)
    async with live(create_app(lonely, {})) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/prompt", json={"prompt": invert_graph(0x336699, size=8)})
        assert r.status_code == 504 and r.json()["job_id"], r.text
        assert (await http.get(f"/jobs/{r.json()['job_id']}")).json()["state"] == "queued"
        assert (await http.get("/ready")).json()["queue"] == 1

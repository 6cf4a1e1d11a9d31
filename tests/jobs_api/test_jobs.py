"""Async jobs against the real ComfyUI: SSE to completion, cancel, restart, idempotency, 429."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import time

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.jobs import JobStore
from tests.comfyui_testing import invert_graph, rgb, slow_graph
from tests.jobs_api.live import comfy_queue, live, settings_for, sse, wait_state
from tests.server.server_workflows import registry

pytestmark = pytest.mark.comfyui
ASYNC = {"Prefer": "respond-async"}




async def test_submit_async_follow_events_fetch_result(comfyui: ComfyUIProcess) -> None:
    async with live(create_app(settings_for(comfyui), registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        graph = slow_graph(blurs=3, color=random.randrange(0xFFFFFF), size=256)
        t0 = time.monotonic()
        r = await http.post("/prompt", json={"prompt": graph, "id": "job-1"}, headers=ASYNC)
        assert r.status_code == 202, r.text
        assert time.monotonic() - t0 < 1
        body = r.json()
        assert body["id"] == "job-1" and body["status"] == "ok" and body["prompt"]["99"]
        job_id = body["job_id"]
        assert body["status_url"] == f"/jobs/{job_id}" == r.headers["location"]
        assert r.headers["preference-applied"] == "respond-async"

        events = await asyncio.wait_for(sse(http, body["events_url"]), 60)
        kinds = [k for k, _ in events]
        assert kinds[0] == "queued" and "running" in kinds and kinds[-1] == "succeeded"
        executing = [d for k, d in events if k == "executing"]
        assert [d["class_type"] for d in executing][-1] == "PreviewImage"
        assert executing[-1]["percent"] > executing[0]["percent"]

        job = (await http.get(body["status_url"])).json()
        assert job["state"] == "succeeded" and job["request_id"] == "job-1"
        assert job["workflow"] == "prompt" and job["error"] is None and job["expires_at"]
        assert job["result"]["outputs"]["99"]["files"][0]["type"] == "temp"
        img = Image.open(io.BytesIO(base64.b64decode(job["result"]["images"][0])))
        assert img.size == (256, 256)

        # a listener arriving after the end still gets the whole story, then the stream ends
        again = await asyncio.wait_for(sse(http, body["events_url"]), 10)
        assert again[-1][0] == "succeeded"
        resumed = await sse(http, body["events_url"], headers={"Last-Event-ID": "1"})
        assert resumed[0][0] != "queued" and resumed[-1][0] == "succeeded"
        assert (await http.get("/jobs/nope")).status_code == 404
        assert (await http.get("/jobs/nope/events")).json()["type"] == "job_not_found"


async def test_cancel_pending_and_running_and_429(comfyui: ComfyUIProcess) -> None:
    settings = settings_for(comfyui, queue_limit=2, retry_after=7)
    async with live(create_app(settings, registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        first = await http.post("/prompt", headers=ASYNC, json={
            "prompt": slow_graph(blurs=30, color=random.randrange(99999))})
        running = first.json()["job_id"]
        await wait_state(http, running, {"running"})
        second = await http.post("/prompt", headers=ASYNC, json={
            "prompt": slow_graph(blurs=30, color=random.randrange(99999))})
        pending = second.json()["job_id"]
        prompt_id = (await wait_state(http, pending, {"queued"}))["prompt_id"]
        async with asyncio.timeout(10):
            while prompt_id not in str((await comfy_queue(comfyui))["queue_pending"]):
                await asyncio.sleep(0.05)

        full = await http.post("/workflow/test/invert", json={"input": {}})
        assert full.status_code == 429 and full.headers["retry-after"] == "7"
        assert full.json()["type"] == "queue_full" and full.json()["limit"] == 2

        r = await http.delete(f"/jobs/{pending}")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled" and r.json()["cancelled"] == "deleted"
        t0 = time.monotonic()
        r = await http.delete(f"/jobs/{running}")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled" and r.json()["cancelled"] == "interrupted"
        async with asyncio.timeout(15):
            while True:
                q = await comfy_queue(comfyui)
                if not q["queue_running"] and not q["queue_pending"]:
                    break
                await asyncio.sleep(0.1)
        print(f"\nrunning job stopped in ComfyUI {time.monotonic() - t0:.2f}s after DELETE")
        for job_id, how in ((pending, "deleted"), (running, "interrupted")):
            job = (await http.get(f"/jobs/{job_id}")).json()
            assert job["state"] == "cancelled" and job["error"]["cancelled"] == how
            events = await asyncio.wait_for(sse(http, f"/jobs/{job_id}/events"), 10)
            assert events[-1] == ("cancelled", {"id": job_id, "state": "cancelled",
                                                "cancelled": how})
        again = await http.delete(f"/jobs/{running}")
        assert again.status_code == 409 and again.json()["state"] == "cancelled"
        await asyncio.sleep(1.1)  # the cached queue depth refreshes
        ok = await http.post("/prompt", json={"prompt": invert_graph(0x010203)})
        assert ok.status_code == 200, ok.text


async def test_finished_jobs_survive_a_restart(comfyui: ComfyUIProcess) -> None:
    settings = settings_for(comfyui, job_ttl=3600)
    color = random.randrange(0xFFFFFF)
    async with live(create_app(settings, registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/workflow/test/invert", headers=ASYNC,
                            json={"input": {"color": color, "size": 4}, "id": "before"})
        done = r.json()["job_id"]
        await wait_state(http, done, {"succeeded"})
    # a job a killed process left running (written straight into the file)
    store = JobStore(settings.jobs_db)
    stale, _ = await store.create("test/invert", meta={"request_id": "orphan"},
                                  idempotency_key="orphan-key")
    await store.mark_running(stale.id, prompt_id="gone")
    store.close()

    async with live(create_app(settings, registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        job = (await http.get(f"/jobs/{done}")).json()
        assert job["state"] == "succeeded" and job["request_id"] == "before"
        img = Image.open(io.BytesIO(base64.b64decode(job["result"]["images"][0]))).convert("RGB")
        expected = tuple(255 - v for v in rgb(color))
        assert all(abs(a - b) <= 1 for a, b in zip(img.getpixel((0, 0)), expected, strict=True))
        events = await sse(http, f"/jobs/{done}/events")
        assert events == [("succeeded", {"id": done, "state": "succeeded"})]
        orphan = (await http.get(f"/jobs/{stale.id}")).json()
        assert orphan["state"] == "failed"
        assert orphan["error"]["type"] == "server_restarted"
        assert "restarted" in orphan["error"]["error"] and orphan["error"]["status"] == 503
        assert (await http.delete(f"/jobs/{stale.id}")).status_code == 409
        # Replayed by its Idempotency-Key, it answers like any other error: `error` and `type`.
        replay = await http.post("/workflow/test/invert", json={"input": {"size": 4}},
                                 headers={"Idempotency-Key": "orphan-key"})
        assert replay.status_code == 503, replay.text
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["type"] == "server_restarted"
        assert "restarted" in replay.json()["error"] and "status" not in replay.json()


async def test_expired_jobs_are_gone(comfyui: ComfyUIProcess) -> None:
    async with live(create_app(settings_for(comfyui, job_ttl=0.5), registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/workflow/test/invert", headers=ASYNC, json={"input": {"size": 4}})
        job_id = r.json()["job_id"]
        await wait_state(http, job_id, {"succeeded"})
        await asyncio.sleep(0.6)
        r = await http.get(f"/jobs/{job_id}")
        assert r.status_code == 404 and r.json()["type"] == "job_not_found"


async def test_idempotency_key_returns_the_first_job(comfyui: ComfyUIProcess) -> None:
    async with live(create_app(settings_for(comfyui), registry())) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        body = {"input": {"color": random.randrange(0xFFFFFF), "size": 4}, "id": "idem"}
        key = {"Idempotency-Key": f"key-{random.random()}", **ASYNC}
        first, second = await asyncio.gather(
            http.post("/workflow/test/invert", json=body, headers=key),
            http.post("/workflow/test/invert", json=body, headers=key))
        assert first.status_code == second.status_code == 202
        assert first.json()["job_id"] == second.json()["job_id"]
        job = await wait_state(http, first.json()["job_id"], {"succeeded"})
        third = await http.post("/workflow/test/invert", json=body, headers=key)
        assert third.json()["job_id"] == job["id"] and third.headers["idempotent-replayed"]
        assert third.json()["state"] == "succeeded"
        changed = await http.post("/workflow/test/invert", headers=key,
                                  json={**body, "input": {"color": 1}})
        assert changed.status_code == 422 and changed.json()["type"] == "idempotency_key_reused"
        assert changed.json()["job_id"] == job["id"]

        # without Prefer: the first answer is the result; a retry gets the same one, not a rerun
        sync_key = {"Idempotency-Key": f"sync-{random.random()}"}
        a = await http.post("/workflow/test/invert", json=body, headers=sync_key)
        b = await http.post("/workflow/test/invert", json=body, headers=sync_key)
        assert a.status_code == b.status_code == 200
        assert a.json() == b.json() and b.headers["idempotent-replayed"] == "true"
        bad = await http.post("/workflow/test/invert", json=body,
                              headers={"Idempotency-Key": "has spaces"})
        assert bad.status_code == 400


async def test_webhook_requests_are_jobs_too(comfyui: ComfyUIProcess) -> None:
    from tests.server.webhook_receiver import Receiver

    receiver = await Receiver().start()
    try:
        async with live(create_app(settings_for(comfyui), registry())) as url, \
                httpx.AsyncClient(base_url=url, timeout=60) as http:
            r = await http.post("/workflow/test/invert", json={
                "input": {"size": 4}, "id": "hooked", "webhook_v2": receiver.url})
            assert r.status_code == 202 and r.json()["status"] == "ok"
            await receiver.wait_for(1, timeout=20)
            event = receiver.events()[0]
            assert event["type"] == "prompt.complete" and event["id"] == "hooked"
            assert "data" not in event and event["timestamp"].endswith("Z")
            job = await wait_state(http, r.json()["job_id"], {"succeeded"})
            assert job["result"]["filenames"] == event["filenames"]
    finally:
        await receiver.stop()

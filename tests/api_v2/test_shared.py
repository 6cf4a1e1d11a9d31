"""Comfy API v2 on an API replica of the shared mode (real Valkey, a worker on the real
ComfyUI): the SDK's jobs run on the worker and are followed, cancelled and refused alike."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from comfy_sdk import AsyncComfy, IdempotencyKeyReuse, StatusChange

from comfygen.comfy.launcher import ComfyUIProcess
from tests.api_v2.conftest import V2, Checked, hook, live_sse
from tests.api_v2.test_sdk import close, pixel
from tests.comfyui_testing import invert_graph, rgb, slow_graph
from tests.shared_jobs.conftest import valkey  # noqa: F401 - the session's Valkey fixture
from tests.shared_jobs.topology import topology
from tests.shared_jobs.valkey import Valkey

pytestmark = pytest.mark.comfyui


async def test_sdk_on_an_api_replica(comfyui: ComfyUIProcess, valkey: Valkey,  # noqa: F811
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async with topology(valkey, [comfyui], apis=2) as top:
        url = str(top.api[0].base_url).rstrip("/")
        monkeypatch.setenv("COMFY_BASE_URL", url)
        checked = Checked()
        sdk = AsyncComfy(timeout=60)
        sdk._low._client.event_hooks["response"].append(hook(checked))
        async with httpx.AsyncClient(base_url=url, timeout=60,
                                     event_hooks={"response": [hook(checked)]}) as http:
            v2 = V2(url, sdk, http, checked)
            try:
                color = random.randrange(0xFFFFFF)
                wf = sdk.workflows.from_json(invert_graph(color=color))
                job = await sdk.submit(wf, idempotency_key=f"shared-{color}")
                with pytest.raises(IdempotencyKeyReuse):
                    await sdk.submit(wf, idempotency_key=f"shared-{color}")
                statuses = []
                async with asyncio.timeout(60):
                    async for event in job.events():
                        if isinstance(event, StatusChange):
                            statuses.append(event.status)
                            if event.status in ("succeeded", "failed"):
                                break
                assert statuses[-1] == "succeeded", statuses
                await job.result()
                data = await job.get_outputs("3")[0].to_bytes()
                assert close(pixel(data), rgb(0xFFFFFF - color))
                frames = await v2.sse(f"/api/v2/jobs/{job.id}/events")
                assert [k for _, k, _ in frames][-2:] == ["output", "status"]

                slow = await sdk.submit(sdk.workflows.from_json(
                    slow_graph(blurs=6, color=random.randrange(0xFFFFFF))))
                async with asyncio.timeout(60):
                    while slow.status != "running":
                        await asyncio.sleep(0.05)
                        await slow.refresh()
                await slow.cancel()
                assert slow.status == "canceled"

                # Listed from the replica that did not create them, newest first, filterable.
                other = top.api[1]
                other.event_hooks["response"].append(hook(checked))
                r = await other.get("/api/v2/jobs")
                listed = [j["id"] for j in r.json()["jobs"]]
                assert r.status_code == 200 and listed[:2] == [slow.id, job.id]
                r = await other.get("/api/v2/jobs", params={"status": "canceled", "limit": 1})
                assert [j["id"] for j in r.json()["jobs"]] == [slow.id]
                ref = {"__type": "core/ASSET", "info": {"id": "x"}}
                r = await http.post("/api/v2/jobs", json={"workflow": {"1": {
                    "class_type": "LoadImage", "inputs": {"image": ref}}}})
                assert r.status_code == 422 and r.json()["error"]["code"] == "missing_asset"
                assert checked.counts["Job"] >= 3 and checked.counts["ErrorEnvelope"] >= 2
            finally:
                await sdk.aclose()


async def test_queue_position_in_the_shared_queue(comfyui: ComfyUIProcess,
                                                  valkey: Valkey) -> None:  # noqa: F811
    """One worker, three jobs: the one it runs has no position, the two it has not taken are
    1 and 2, read through the replica that did not create them (single, listed, and in the SSE
    `status` frames, which follow the job as it moves up)."""
    async with topology(valkey, [comfyui], apis=2) as top:
        a, b = top.api

        async def submit(blurs: int) -> str:
            r = await a.post("/api/v2/jobs", json={"workflow": slow_graph(
                blurs=blurs, color=random.randrange(0xFFFFFF))})
            assert r.status_code == 201, r.text
            return r.json()["id"]

        running = await submit(12)  # it runs through the test, then is cancelled
        async with asyncio.timeout(60):
            while (await b.get(f"/api/v2/jobs/{running}")).json()["status"] != "running":
                await asyncio.sleep(0.05)
        waiting = [await submit(2) for _ in range(2)]
        try:
            views = [(await b.get(f"/api/v2/jobs/{j}")).json() for j in (running, *waiting)]
            assert [v["queue_position"] for v in views] == [None, 1, 2], views
            listed = {j["id"]: j["queue_position"]
                      for j in (await b.get("/api/v2/jobs")).json()["jobs"]}
            assert [listed[j] for j in (running, *waiting)] == [None, 1, 2]
            async with live_sse(b, f"/api/v2/jobs/{waiting[1]}/events") as frames:
                async with asyncio.timeout(30):
                    queued = await anext(frames)
                    assert queued[1:] == ("status", {"status": "queued", "queue_position": 2})
                    await a.post(f"/api/v2/jobs/{waiting[0]}/cancel")  # the next one moves up
                    assert await anext(frames) == (queued[0], "status", {
                        "status": "queued", "queue_position": 1})
            assert (await b.get(f"/api/v2/jobs/{waiting[1]}")).json()["queue_position"] == 1
        finally:
            for job in (*waiting, running):
                await b.post(f"/api/v2/jobs/{job}/cancel")


async def test_previews_reach_a_stream_on_another_replica(comfyui: ComfyUIProcess,
                                                         valkey: Valkey) -> None:  # noqa: F811
    """The worker publishes a running job's previews; an event stream open on the replica
    that did not create the job gets them (no id, at most one every half second, checked by
    the SDK's model), between its kept events, which stay whole."""
    from comfy_low import models

    async with topology(valkey, [comfyui], apis=2) as top:
        a, b = top.api
        color = random.randrange(0xFFFFFF)
        r = await a.post("/api/v2/jobs", json={"workflow": {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64,
                                                          "batch_size": 1, "color": color}},
            "2": {"class_type": "ComfygenTestSteps", "inputs": {"image": ["1", 0], "steps": 8,
                                                                 "delay": 0.25}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                         "filename_prefix": "shared-previews"}}}})
        assert r.status_code == 201, r.text
        frames = []
        async with live_sse(b, f"/api/v2/jobs/{r.json()['id']}/events") as stream:
            async with asyncio.timeout(60):
                async for frame in stream:
                    frames.append(frame)
                    if frame[1] == "status" and frame[2]["status"] == "succeeded":
                        break
        previews = [data for event_id, kind, data in frames if kind == "preview"]
        assert 2 <= len(previews) <= 5, [kind for _, kind, _ in frames]
        for data in previews:
            models.PreviewEvent.model_validate(data)
            assert data["node_id"] == "2" and data["content_type"] == "image/jpeg"
        assert all(event_id is None for event_id, kind, _ in frames if kind == "preview")
        assert all(event_id for event_id, kind, _ in frames if kind != "preview")
        assert [kind for _, kind, _ in frames if kind == "output"] == ["output"]

"""comfygen driven by the real comfy-sdk client (Comfy API v2) against the real ComfyUI 0.3.75,
model-free graphs. Every `/api/v2` answer is validated against the SDK's models (conftest)."""

from __future__ import annotations

import asyncio
import io
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from comfy_low.errors import ApiError as LowApiError
from comfy_sdk import (
    AsyncComfy,
    AsyncJob,
    IdempotencyKeyReuse,
    InvalidWorkflow,
    JobFailed,
    MissingAsset,
    NotFound,
    OutputReady,
    Preview,
    StatusChange,
    Unauthorized,
    WorkflowFormatUi,
)
from comfy_sdk.exceptions import to_sdk_error
from PIL import Image
from standardwebhooks import Webhook

from comfygen.comfy.launcher import ComfyUIProcess
from tests.api_v2.conftest import V2, hook, live_sse, serving
from tests.comfyui_testing import invert_graph, rgb, slow_graph
from tests.jobs_api.live import SECRET
from tests.server.webhook_receiver import Receiver

pytestmark = pytest.mark.comfyui


def png(color: tuple[int, int, int], size: tuple[int, int] = (12, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def pixel(data: bytes) -> tuple[int, int, int]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return image.getpixel((image.width // 2, image.height // 2))


def close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal within 1 per channel (ComfyUI's float round trip of 8-bit pixels)."""
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


LOAD_INVERT = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "v2/t"}},
}


async def raw_submit(v2: V2, body: dict[str, Any], headers: dict[str, str] | None = None
                     ) -> AsyncJob:
    """POST /api/v2/jobs through the SDK's raw request path; SDK errors as the SDK raises them."""
    low = v2.sdk._low
    resp = await low.raw_request("POST", "/jobs", json=body, headers=headers)
    try:
        data = low._p.parse_or_raise(resp, (201,))
    except LowApiError as exc:
        raise to_sdk_error(exc) from exc
    return await v2.sdk.jobs.get(data["id"])


async def test_asset_reference_events_and_output_pixels(v2: V2, tmp_path: Path) -> None:
    color = (random.randrange(256), random.randrange(256), random.randrange(256))
    source = tmp_path / "photo.png"
    source.write_bytes(png(color))
    asset = v2.sdk.assets.from_file(source)
    wf = v2.sdk.workflows.from_json(LOAD_INVERT)
    wf.set_input("1", "image", asset)
    job = await v2.sdk.submit(wf)
    assert job.status in ("queued", "running", "succeeded")

    seen: list[Any] = []
    async with asyncio.timeout(60):
        async for event in job.events():
            seen.append(event)
            if isinstance(event, StatusChange) and event.status in ("succeeded", "failed"):
                break
    statuses = [e.status for e in seen if isinstance(e, StatusChange)]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded", statuses
    ready = [e for e in seen if isinstance(e, OutputReady)]
    assert [o.output.node_id for o in ready] == ["3"]

    await job.result()
    [output] = job.get_outputs("3")
    assert output.type == "image" and output.content_type == "image/png"
    data = await output.to_bytes()
    assert output.size_bytes == len(data)
    assert close(pixel(data), tuple(255 - c for c in color))
    assert await output.to_bytes(range=(0, 7)) == data[:8] == b"\x89PNG\r\n\x1a\n"
    target = tmp_path / "out.png"
    await output.to_file(target)
    assert target.read_bytes() == data

    # The same bytes again: found by hash, minted without a second upload.
    again = v2.sdk.assets.from_file(source)
    second_id = await again.commit()
    assert second_id != asset.id
    meta = (await v2.http.get(f"/api/v2/assets/{second_id}")).json()
    assert meta["hash"].startswith("blake3:") and meta["created_new"] is None
    assert meta["content_type"] == "image/png" and meta["file_path"] == "photo.png"
    assert v2.checked.counts.get("Job", 0) >= 2 and v2.checked.counts.get("Asset", 0) >= 2


async def test_missing_asset_and_invalid_workflow_errors(v2: V2) -> None:
    graph = {**LOAD_INVERT, "1": {"class_type": "LoadImage", "inputs": {"image": {
        "__type": "core/ASSET", "info": {"id": "9f8a1c0d-2b3e-4f56-8a7b-1c2d3e4f5a6b"}}}}}
    with pytest.raises(MissingAsset) as missing:
        await v2.sdk.submit(v2.sdk.workflows.from_json(graph))
    assert missing.value.http_status == 422

    bad = invert_graph()
    bad["2"] = {"class_type": "ImageInvert", "inputs": {}}
    bad["4"] = {"class_type": "NoSuchNode", "inputs": {}}
    with pytest.raises(InvalidWorkflow) as invalid:
        await v2.sdk.submit(v2.sdk.workflows.from_json(bad))
    assert invalid.value.http_status == 422
    details = invalid.value.details or {}
    errors = details["node_errors"]
    assert errors["2"] == [{"field": "image", "reason": "required input 'image' is missing"}]
    assert "NoSuchNode" in errors["4"][0]["reason"]
    assert v2.checked.counts["ErrorEnvelope"] == 2


async def test_ui_format_refused_or_converted(v2: V2) -> None:
    ui = {"last_node_id": 2, "last_link_id": 1, "version": 0.4, "links": [[1, 1, 0, 2, 0, "IMAGE"]],
          "nodes": [
              {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [],
               "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
               "widgets_values": [8, 8, 1, 0x00FF00]},
              {"id": 2, "type": "SaveImage", "mode": 0,
               "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": [],
               "widgets_values": ["v2/ui"]}]}
    with pytest.raises(WorkflowFormatUi):  # the SDK refuses it before sending
        await v2.sdk.submit(v2.sdk.workflows.from_json(ui))
    with pytest.raises(WorkflowFormatUi) as refused:  # and so does comfygen
        await raw_submit(v2, {"workflow": ui})
    assert refused.value.http_status == 422 and "convert_ui" in str(refused.value)
    job = await raw_submit(v2, {"workflow": ui, "convert_ui": True})
    await job.result()
    assert pixel(await job.get_outputs("2")[0].to_bytes()) == (0, 255, 0)


async def test_typed_workflow_through_the_raw_request_path(v2: V2) -> None:
    color = random.randrange(0xFFFFFF)
    job = await raw_submit(v2, {"workflow": "test/invert", "inputs": {"color": color, "size": 8}})
    await job.result()
    [output] = job.get_outputs("3")
    assert close(pixel(await output.to_bytes()), rgb(0xFFFFFF - color))
    body = (await v2.http.get(f"/api/v2/jobs/{job.id}")).json()
    assert body["workflow"] == "test/invert" and body["metrics"]["execution_ms"] is not None

    r = await v2.http.post("/api/v2/jobs", json={"workflow": "test/invert",
                                                 "inputs": {"size": 100000}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "inputs.size" in r.json()["error"]["message"]
    r = await v2.http.post("/api/v2/jobs", json={"workflow": "test/nope", "inputs": {}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_workflow"


async def test_idempotency_key_is_single_use(v2: V2) -> None:
    wf = v2.sdk.workflows.from_json(invert_graph(color=random.randrange(0xFFFFFF)))
    first = await v2.sdk.submit(wf, idempotency_key="v2-key-1")
    with pytest.raises(IdempotencyKeyReuse) as reuse:
        await v2.sdk.submit(wf, idempotency_key="v2-key-1")
    assert reuse.value.http_status == 422 and first.id in str(reuse.value)
    await first.result()
    listed = (await v2.http.get("/api/v2/jobs", params={"status": "succeeded"})).json()["jobs"]
    assert [j["id"] for j in listed].count(first.id) == 1


async def test_cancel_running_job(v2: V2) -> None:
    job = await v2.sdk.submit(v2.sdk.workflows.from_json(
        slow_graph(blurs=6, color=random.randrange(0xFFFFFF))))
    async with asyncio.timeout(60):
        while job.status != "running":
            await asyncio.sleep(0.05)
            await job.refresh()
    await job.cancel()
    assert job.status == "canceled"
    await job.wait()
    assert job.status == "canceled"
    await job.cancel()  # idempotent on a finished job
    assert job.status == "canceled"
    frames = await v2.sse(f"/api/v2/jobs/{job.id}/events")
    assert frames[-1][1:] == ("status", {"status": "canceled", "queue_position": None})


async def test_events_resume_with_last_event_id(v2: V2) -> None:
    job = await v2.sdk.submit(v2.sdk.workflows.from_json(
        invert_graph(color=random.randrange(0xFFFFFF))))
    await job.result()
    frames = await v2.sse(f"/api/v2/jobs/{job.id}/events")
    kinds = [kind for _, kind, _ in frames]
    assert kinds[0] == "status" and kinds[-2:] == ["output", "status"]
    assert "progress" in kinds and v2.checked.counts["sse:progress"] >= 1
    first_id = frames[0][0]
    resumed = await v2.sse(f"/api/v2/jobs/{job.id}/events",
                           headers={"Last-Event-ID": first_id})
    assert resumed == [f for f in frames if f[0] != first_id]


async def test_not_found_list_health_and_content_errors(v2: V2) -> None:
    with pytest.raises(NotFound):
        await v2.sdk.jobs.get("no-such-job")
    r = await v2.http.get("/api/v2/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await v2.http.get("/api/v2/jobs", params={"status": "paused"})
    assert r.status_code == 422 and "paused" in r.json()["error"]["message"]
    r = await v2.http.get("/api/v2/assets/out_nojob_0/content")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await v2.http.post("/api/v2/assets", files={"file": ("x.txt", b"not media")},
                           data={"file_path": "x.txt"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await v2.http.post("/api/v2/jobs", content=b"{", headers={"content-type":
                                                                    "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


async def test_input_copies_of_assets_are_removed_after_the_job(v2: V2, comfyui: ComfyUIProcess,
                                                                tmp_path: Path) -> None:
    before = set((comfyui.base_dir / "input").glob("v2-*"))
    wf = v2.sdk.workflows.from_json(LOAD_INVERT)
    wf.set_input("1", "image", v2.sdk.assets.from_bytes(png((1, 2, 3)), filename="tiny.png"))
    job = await v2.sdk.submit(wf)
    await job.result()
    assert set((comfyui.base_dir / "input").glob("v2-*")) == before


async def test_docs_snippet_runs_against_comfygen(v2: V2, tmp_path: Path) -> None:
    """The Python block of docs/comfy-api-v2.md, run as a user runs it (sync SDK, own process)."""
    text = (Path(__file__).parents[2] / "docs/comfy-api-v2.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", text, re.S)
    (tmp_path / "photo.png").write_bytes(png((200, 100, 50)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", snippet, cwd=tmp_path, env={**os.environ, "COMFY_BASE_URL": v2.url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, output.decode()
    assert close(pixel((tmp_path / "inverted.png").read_bytes()), (55, 155, 205))


async def test_api_key_guards_v2_but_not_health(comfyui: ComfyUIProcess,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(comfyui, monkeypatch, api_key="v2-secret-key") as v2:
        job = await v2.sdk.submit(v2.sdk.workflows.from_json(
            invert_graph(color=random.randrange(0xFFFFFF))))
        await job.result()
        anonymous = AsyncComfy(timeout=30)
        anonymous._low._client.event_hooks["response"].append(hook(v2.checked))
        try:
            with pytest.raises(Unauthorized):
                await anonymous.jobs.get(job.id)
            r = await anonymous._low.raw_request("GET", "/health")
            assert r.status_code == 200
        finally:
            await anonymous.aclose()
        assert "v2-secret-key" not in (await v2.http.get(f"/api/v2/jobs/{job.id}")).text


async def test_webhook_v2_and_comfyui_side_validation_on_v2_jobs(v2: V2) -> None:
    receiver = await Receiver().start()
    try:
        color = random.randrange(0xFFFFFF)
        ok = await raw_submit(v2, {"workflow": invert_graph(color=color),
                                   "webhook_v2": receiver.url})
        # a value only ComfyUI rules out: the job fails with the contract's code, node named
        bad = {"1": {"class_type": "EmptyImage",
                     "inputs": {"width": 10**9, "height": 1, "batch_size": 1, "color": 0}},
               "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
        failed = await raw_submit(v2, {"workflow": bad, "webhook_v2": receiver.url})
        with pytest.raises(JobFailed):
            await failed.result()
        body = (await v2.http.get(f"/api/v2/jobs/{failed.id}")).json()
        assert body["status"] == "failed" and body["error"]["code"] == "invalid_workflow"
        assert "width" in body["error"]["message"]
        await ok.result()
        await receiver.wait_for(2, timeout=30)
        for headers, raw in receiver.received:
            Webhook(SECRET).verify(raw, headers)
        kinds = sorted(e["type"] for e in receiver.events())
        assert kinds == ["prompt.complete", "prompt.failed"]

        r = await v2.http.post("/api/v2/jobs", json={"workflow": invert_graph(),
                                                     "webhook_v2": "http://169.254.169.254/x"})
        assert r.status_code == 422 and "webhook_v2" in r.json()["error"]["message"]
    finally:
        await receiver.stop()


async def test_asset_lifecycle_dedup_range_and_delete(v2: V2) -> None:
    data = png((9, 8, 7), size=(30, 20))

    async def upload(name: str, **form: str) -> httpx.Response:
        return await v2.http.post("/api/v2/assets", files={"file": (name, data, "image/jpeg")},
                                  data={"file_path": f"../../{name}", **form})

    first = await upload("a.png")
    assert first.status_code == 201 and first.json()["created_new"] is True
    # declared type ignored (sniffed), the path reduced to a name
    assert first.json()["content_type"] == "image/png" and first.json()["file_path"] == "a.png"
    second = await upload("b.png", expected_hash=first.json()["hash"])
    assert second.status_code == 201 and second.json()["created_new"] is False
    assert second.json()["hash"] == first.json()["hash"] and second.json()["id"] != first.json()["id"]
    wrong = await upload("c.png", expected_hash="blake3:" + "0" * 64)
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "hash_mismatch"
    assert (await v2.http.head(f"/api/v2/assets/by-hash/{first.json()['hash']}")).status_code == 200
    r = await v2.http.post("/api/v2/assets/from-hash", json={"hash": "blake3:" + "1" * 64})
    assert r.status_code == 404 and r.json()["error"]["code"] == "blob_not_found"

    content = f"/api/v2/assets/{first.json()['id']}/content"
    assert (await v2.http.get(content)).content == data
    r = await v2.http.get(content, headers={"Range": "bytes=2-5"})
    assert r.status_code == 206 and r.content == data[2:6]
    assert r.headers["content-range"] == f"bytes 2-5/{len(data)}"
    assert (await v2.http.get(content, headers={"Range": "bytes=-4"})).content == data[-4:]
    r = await v2.http.get(content, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.json()["error"]["code"] == "range_not_satisfiable"

    assert (await v2.http.delete(f"/api/v2/assets/{first.json()['id']}")).status_code == 204
    assert (await v2.http.get(f"/api/v2/assets/{second.json()['id']}/content")).content == data
    assert (await v2.http.delete(f"/api/v2/assets/{second.json()['id']}")).status_code == 204
    r = await v2.http.get(f"/api/v2/assets/{second.json()['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert (await v2.http.head(f"/api/v2/assets/by-hash/{first.json()['hash']}")).status_code == 404
    r = await v2.http.delete("/api/v2/assets/out_somejob_0")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_extra_data_reaches_comfyui_and_is_never_stored(v2: V2,
                                                              comfyui: ComfyUIProcess) -> None:
    secret = f"comfyui-partner-{random.randrange(10**9)}"
    client = v2.app.state.supervisor.client
    sent: list[dict] = []
    post_prompt = client.post_prompt

    async def spy(body: dict) -> dict:  # the real call, recorded on its way to ComfyUI
        sent.append(body)
        return await post_prompt(body)

    client.post_prompt = spy
    job = await raw_submit(v2, {"workflow": invert_graph(color=random.randrange(0xFFFFFF)),
                                "extra_data": {"api_key_comfy_org": secret}})
    await job.result()
    assert [b.get("extra_data") for b in sent] == [{"api_key_comfy_org": secret}]
    record = await v2.http.get(f"/jobs/{job.id}")
    assert secret not in record.text
    assert secret not in (await v2.http.get(f"/api/v2/jobs/{job.id}")).text
    async with httpx.AsyncClient(base_url=comfyui.url) as comfy:
        prompt_id = record.json()["prompt_id"]
        assert secret not in (await comfy.get(f"/history/{prompt_id}")).text  # ComfyUI drops it
    r = await v2.http.post("/api/v2/jobs", json={"workflow": invert_graph(),
                                                 "extra_data": {"other": "x"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert "other" in r.json()["error"]["message"]


async def test_queue_full_answers_429_with_retry_after(comfyui: ComfyUIProcess,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(comfyui, monkeypatch, queue_limit=1, retry_after=3) as v2:
        slow = {"workflow": slow_graph(blurs=4, color=random.randrange(0xFFFFFF))}
        first = await v2.http.post("/api/v2/jobs", json=slow)
        assert first.status_code == 201
        r = await v2.http.post("/api/v2/jobs", json={"workflow": invert_graph()})
        assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
        assert r.headers["retry-after"] == "3"
        job = await v2.sdk.jobs.get(first.json()["id"])
        await job.cancel()
        assert job.status == "canceled"


async def test_queue_position_while_waiting_in_comfyui(v2: V2) -> None:
    """A queued job gives its place among ComfyUI's pending prompts (1: next, as comfy-api-proxy
    counts); a running or finished one says null. Its SSE `status` frame carries the place, and a
    new one follows when it moves up. Jobs of this test only: other prompts may be pending too."""
    async def submit(blurs: int) -> dict[str, Any]:
        r = await v2.http.post("/api/v2/jobs", json={"workflow": slow_graph(
            blurs=blurs, color=random.randrange(0xFFFFFF))})
        assert r.status_code == 201, r.text
        return r.json()

    running = await submit(12)  # 6-12 s: it runs through the test, then is cancelled
    waiting = [await submit(2) for _ in range(2)]
    try:
        async with asyncio.timeout(60):
            while (await v2.http.get(f"/api/v2/jobs/{running['id']}")).json()[
                    "status"] != "running":
                await asyncio.sleep(0.05)
        first, second = [(await v2.http.get(f"/api/v2/jobs/{j['id']}")).json() for j in waiting]
        assert first["status"] == second["status"] == "queued"
        assert isinstance(first["queue_position"], int) and first["queue_position"] >= 1
        assert second["queue_position"] == first["queue_position"] + 1
        assert (await v2.http.get(f"/api/v2/jobs/{running['id']}")).json()[
            "queue_position"] is None
        listed = {j["id"]: j["queue_position"]
                  for j in (await v2.http.get("/api/v2/jobs")).json()["jobs"]}
        assert [listed[j["id"]] for j in waiting] == [first["queue_position"],
                                                      second["queue_position"]]
        async with live_sse(v2.http, f"/api/v2/jobs/{waiting[1]['id']}/events") as frames:
            async with asyncio.timeout(30):
                queued = await anext(frames)
                assert queued[1:] == ("status", {"status": "queued",
                                                 "queue_position": second["queue_position"]})
                await v2.http.post(f"/api/v2/jobs/{waiting[0]['id']}/cancel")
                moved = await anext(frames)  # same event id: the same `queued` state, updated
                assert moved[:2] == (queued[0], "status") and moved[2]["status"] == "queued"
                assert 1 <= moved[2]["queue_position"] < second["queue_position"]
    finally:
        for job in (*waiting, running):
            await v2.http.post(f"/api/v2/jobs/{job['id']}/cancel")
    done = (await v2.http.get(f"/api/v2/jobs/{waiting[1]['id']}")).json()
    assert done["status"] == "canceled" and done["queue_position"] is None


async def test_previews_reach_the_sdk_as_preview_events(v2: V2) -> None:
    """A node that reports progress with preview images (as a sampler does; the tests' custom
    node, not an output node) gives `preview` events, at most one every half second, which the
    SDK decodes; the image saved at the end is an output, not a preview."""
    color = random.randrange(0xFFFFFF)
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 1,
                                                      "color": color}},
        "2": {"class_type": "ComfygenTestSteps", "inputs": {"image": ["1", 0], "steps": 8,
                                                             "delay": 0.25}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                     "filename_prefix": "v2-previews"}},
    }
    job = await v2.sdk.submit(v2.sdk.workflows.from_json(graph))
    previews: list[tuple[float, Preview]] = []
    outputs = 0
    async with asyncio.timeout(60):
        async for event in job.events():
            if isinstance(event, Preview):
                previews.append((time.monotonic(), event))
            elif isinstance(event, OutputReady):
                outputs += 1
    await job.refresh()
    assert job.status == "succeeded" and outputs == 1
    assert 2 <= len(previews) <= 5, len(previews)  # 8 steps in 2 s, one per half second at most
    for _, preview in previews:
        assert preview.node_id == "2" and preview.content_type == "image/jpeg"
        with Image.open(io.BytesIO(preview.data)) as img:
            assert img.format == "JPEG" and max(img.size) == 64  # the node's max_size
            seen = img.convert("RGB").getpixel((img.width // 2, img.height // 2))
            assert all(abs(a - b) <= 8 for a, b in zip(seen, rgb(color), strict=True))
    gaps = [b - a for (a, _), (b, _) in zip(previews, previews[1:], strict=False)]
    assert all(gap >= 0.4 for gap in gaps), gaps
    frames = await v2.sse(f"/api/v2/jobs/{job.id}/events")  # after the end: none replayed
    assert "preview" not in {kind for _, kind, _ in frames}

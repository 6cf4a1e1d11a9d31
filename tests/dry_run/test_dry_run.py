"""`POST /workflow/<model>/<name>/validate` against the real ComfyUI 0.3.75: the answer the real
call would give, one test per failure kind, and nothing queued."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess

pytestmark = pytest.mark.comfyui


def png(size: tuple[int, int] = (8, 6)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


async def both(api: httpx.AsyncClient, path: str, body: dict[str, Any]
               ) -> tuple[httpx.Response, httpx.Response]:
    """The dry run's answer, then the real call's, to the same body (and request id)."""
    body = {"id": "same-id", **body}
    dry = await api.post(f"/workflow/{path}/validate", json=body)
    real = await api.post(f"/workflow/{path}", json=body)
    return dry, real


async def test_valid_request_answers_resolved_input_and_the_graph(api: httpx.AsyncClient) -> None:
    dry = await api.post("/workflow/test/invert/validate",
                         json={"id": "dry-1", "input": {"color": 0x102030, "size": 4}})
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["valid"] is True and body["id"] == "dry-1"
    seed = body["input"]["seed"]  # drawn now: the seed a run would use
    assert isinstance(seed, int) and body["input"] == {"color": 0x102030, "size": 4, "seed": seed}
    assert body["prompt"]["1"]["inputs"]["width"] == 4
    assert body["prompt"]["3"]["inputs"]["filename_prefix"] == "dry-1"
    # the real call with the resolved input sends exactly that graph
    real = await api.post("/workflow/test/invert", json={"id": "dry-1", "input": body["input"]})
    assert real.status_code == 200, real.text
    assert real.json()["prompt"] == body["prompt"] and real.json()["input"] == body["input"]


async def test_field_errors_are_the_real_422(api: httpx.AsyncClient) -> None:
    dry, real = await both(api, "test/invert", {"input": {"size": 0, "nope": 1}})
    assert dry.status_code == real.status_code == 422
    assert dry.json() == real.json()
    assert {tuple(d["loc"]) for d in dry.json()["detail"]} == {
        ("body", "input", "size"), ("body", "input", "nope")}


async def test_choice_not_in_live_comfyui_is_the_real_422(api: httpx.AsyncClient) -> None:
    body = {"input": {"image": png(), "upscale_method": "sideways"}}
    dry, real = await both(api, "test/scale", body)
    assert dry.status_code == real.status_code == 422
    assert dry.json() == real.json()
    assert dry.json()["detail"][0]["type"] == "value_not_available"
    assert "bilinear" in dry.json()["detail"][0]["ctx"]["allowed"]


async def test_missing_model_files_are_the_real_424(api: httpx.AsyncClient) -> None:
    dry, real = await both(api, "test/ckpt", {"id": "m", "input": {}})
    assert dry.status_code == real.status_code == 424
    assert dry.json() == real.json()
    dry = await api.post("/workflow/sd3.5-medium/txt2img/validate",
                         json={"input": {"prompt": "a cat"}})
    assert dry.status_code == 424, dry.text
    assert {(m["file"], m["folder"]) for m in dry.json()["missing_models"]} == {
        ("sd3.5_medium.safetensors", "checkpoints"), ("clip_g.safetensors", "text_encoders"),
        ("clip_l.safetensors", "text_encoders"),
        ("t5xxl_fp8_e4m3fn.safetensors", "text_encoders")}


@pytest.mark.parametrize(("image", "status", "reason"), [
    ("not base64!", 422, "invalid_base64"),
    (base64.b64encode(b"%PDF-1.4 not an image at all").decode(), 415, None),
    (png((600, 600)), 413, None),
])
async def test_media_that_fails_its_checks_is_the_real_4xx(
        api: httpx.AsyncClient, image: str, status: int, reason: str | None) -> None:
    dry, real = await both(api, "test/scale", {"id": "media", "input": {"image": image}})
    assert dry.status_code == real.status_code == status, dry.text
    assert dry.json() == real.json()
    assert dry.json()["field"] == "input.image"
    if reason:
        assert dry.json()["reason"] == reason


async def test_valid_media_are_checked_but_not_uploaded(api: httpx.AsyncClient,
                                                         comfyui: ComfyUIProcess) -> None:
    inputs = Path(comfyui.base_dir) / "input"
    before = sorted(p.name for p in inputs.rglob("*")) if inputs.exists() else []
    dry = await api.post("/workflow/test/scale/validate",
                         json={"id": "look", "input": {"image": png()}})
    assert dry.status_code == 200, dry.text
    name = dry.json()["input"]["image"]
    assert name.startswith("comfygen/") and name.endswith(".png")
    assert dry.json()["prompt"]["1"]["inputs"]["image"] == name
    after = sorted(p.name for p in inputs.rglob("*")) if inputs.exists() else []
    assert after == before


@pytest.mark.parametrize(("name", "inputs", "kind", "node", "input_name"), [
    ("range", {"size": 20000}, "value_bigger_than_max", "1", "width"),
    ("missing", {}, "required_input_missing", "2", "image"),
    ("mismatch", {}, "return_type_mismatch", "3", "images"),
    ("combo", {}, "value_not_in_list", "2", "upscale_method"),
])
async def test_graph_problems_are_comfyuis_own_400(
        api: httpx.AsyncClient, name: str, inputs: dict[str, Any], kind: str, node: str,
        input_name: str) -> None:
    """The dry run finds, from the live node definitions, what ComfyUI's validation refuses;
    the real call (ComfyUI's own 400, nothing queued either) gives the same body."""
    body = {"id": f"broken-{name}", "input": inputs}
    dry, real = await both(api, f"broken/{name}", body)
    assert real.status_code == 400, real.text
    assert dry.status_code == 400, dry.text
    assert dry.json() == real.json()
    (problem,) = dry.json()["node_errors"]
    assert (problem["type"], problem["node"], problem["input"]) == (kind, node, input_name)
    if name == "range":
        assert problem["field"] == "input.size" and problem["received"] == 20000


async def comfy_state(comfyui: ComfyUIProcess) -> tuple[Any, ...]:
    async with httpx.AsyncClient(base_url=comfyui.url) as http:
        queue = (await http.get("/queue")).json()
        history = (await http.get("/history")).json()
    return queue["queue_running"], queue["queue_pending"], sorted(history)


async def test_dry_runs_leave_comfyuis_queue_and_history_untouched(
        api: httpx.AsyncClient, comfyui: ComfyUIProcess) -> None:
    before = await comfy_state(comfyui)
    answers = [
        await api.post("/workflow/test/invert/validate", json={"input": {"size": 3}}),
        await api.post("/workflow/test/mixed/validate", json={"input": {}}),
        await api.post("/workflow/test/scale/validate", json={"input": {"image": png()}}),
        await api.post("/workflow/test/ckpt/validate", json={"input": {}}),
        await api.post("/workflow/broken/missing/validate", json={"input": {}}),
        await api.post("/workflow/broken/range/validate", json={"input": {"size": 20000}}),
        await api.post("/workflow/sd3.5-medium/txt2img/validate",
                       json={"input": {"prompt": "x"}}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 424, 400, 400, 424]
    assert await comfy_state(comfyui) == before

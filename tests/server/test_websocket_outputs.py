"""Images an output node sends over the websocket instead of saving them (ComfyUI's own
`SaveImageWebsocket` example node, installed with it), against the real ComfyUI: returned with
the saved ones, by `/prompt`, a job and Comfy API v2; and a 502, not a silent gap, when the
websocket was cut while they were sent (through a TCP relay that cuts it: a real ComfyUI cannot
be made to drop it otherwise)."""

from __future__ import annotations

import asyncio
import base64
import io
import random
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings
from tests.comfyui_testing import TcpProxy, rgb, slow_graph
from tests.jobs_api.live import wait_state

from .helpers import running
from .server_workflows import registry

pytestmark = pytest.mark.comfyui
ASYNC = {"Prefer": "respond-async"}


def pixel(data: bytes) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").getpixel((0, 0))  # type: ignore[return-value]


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


def sent_and_saved(color: int) -> dict:
    """Two images sent over the websocket by node 9, the inverse saved as a file by node 3."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 8, "batch_size": 2,
                                                      "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                     "filename_prefix": "cg/ws"}},
        "9": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }


async def test_images_sent_over_the_websocket_are_outputs(api: httpx.AsyncClient,
                                                          comfyui: ComfyUIProcess) -> None:
    color = random.randrange(0xFFFFFF)
    inverted = tuple(255 - c for c in rgb(color))
    r = await api.post("/prompt", json={"prompt": sent_and_saved(color)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["images"]) == len(body["filenames"]) == 4  # 2 saved + 2 sent
    sent = body["outputs"]["9"]
    assert sent["class_type"] == "SaveImageWebsocket" and len(sent["files"]) == 2
    for info in sent["files"]:
        assert info["type"] == "websocket" and info["content_type"] == "image/png"
        assert info["filename"].endswith(".png") and info["media"] == "image"
        data = base64.b64decode(body["images"][info["index"]])
        assert near(pixel(data), rgb(color))
        assert Image.open(io.BytesIO(data)).size == (16, 8)
    assert len({info["filename"] for info in sent["files"]}) == 2
    for info in body["outputs"]["3"]["files"]:
        assert near(pixel(base64.b64decode(body["images"][info["index"]])), inverted)
        assert not (comfyui.base_dir / "output" / info["subfolder"] / info["filename"]).exists()

    # converted like saved images; and the same through a job
    r = await api.post("/prompt", json={"prompt": sent_and_saved(color),
                                        "convert_output": {"format": "jpeg"}})
    assert r.status_code == 200, r.text
    assert all(info["content_type"] == "image/jpeg"
               for info in r.json()["outputs"]["9"]["files"])
    r = await api.post("/prompt", headers=ASYNC, json={"prompt": sent_and_saved(color)})
    assert r.status_code == 202, r.text
    job = await wait_state(api, r.json()["job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    assert len(job["result"]["outputs"]["9"]["files"]) == 2

    # Comfy API v2: the sent images are the job's outputs, their content served
    r = await api.post("/api/v2/jobs", json={"workflow": sent_and_saved(color)})
    assert r.status_code == 201, r.text
    job = await wait_state(api, r.json()["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    v2 = (await api.get(f"/api/v2/jobs/{r.json()['id']}")).json()
    sent_outputs = [o for o in v2["outputs"] if o["node_id"] == "9"]
    assert len(sent_outputs) == 2, v2["outputs"]
    content = await api.get(sent_outputs[0]["url"])
    assert content.status_code == 200 and near(pixel(content.content), rgb(color))


async def test_images_lost_with_the_websocket_are_a_502(make_settings: Callable[..., Settings],
                                                        comfyui: ComfyUIProcess) -> None:
    """The websocket is cut (and kept down) while the prompt runs: the run ends through
    `/history`, which has no trace of what node 99 sent, so the answer is a 502 naming it,
    not a 200 without its images."""
    proxy = await TcpProxy(comfyui.host, comfyui.port).start()
    settings = make_settings(comfyui_url=proxy.url, fast_poll_interval=0.3)
    graph = slow_graph(blurs=3, color=random.randrange(0xFFFFFF))
    graph["99"] = {"class_type": "SaveImageWebsocket", "inputs": graph["99"]["inputs"]}
    try:
        async with running(create_app(settings, registry())) as http:
            request = asyncio.create_task(http.post("/prompt", json={"prompt": graph}))
            await asyncio.sleep(0.4)
            proxy.block_websocket = True
            proxy.cut()
            r = await asyncio.wait_for(request, 30)
            assert r.status_code == 502, r.text
            assert r.json()["type"] == "outputs_lost" and r.json()["nodes"] == ["99"], r.text
            assert "SaveImageWebsocket" in r.json()["error"]
    finally:
        await proxy.stop()

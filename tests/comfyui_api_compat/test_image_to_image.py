"""comfyui-api README "Image To Image Workflows" and its tests "image2image works with base64
encoded png / jpeg / http image url": in a raw graph on `POST /prompt`, any input of a node that
loads a file from ComfyUI's input folder may be base64, a data URI or an http(s) URL.

Which inputs those are comes from ComfyUI's node definitions (the upload option of the combo),
so LoadImage and LoadImageMask are covered here without being named in comfygen. `s3://`,
`hf://` and Azure Blob URLs are read through comfygen.storage (tests/storage runs them against
moto's S3 server, Azurite and a local Hub); other schemes are refused (below).
The typed endpoints' media fields are tested in tests/server/test_media.py (limits, credentials,
redirects, multipart); the decoding rules in tests/media/.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from tests.jobs_api.live import wait_state
from tests.server.media_server import MediaServer

from .conftest import image_bytes

pytestmark = pytest.mark.comfyui


def invert_loaded(value: str, loader: str = "LoadImage") -> dict[str, Any]:
    """loader(value) → (MaskToImage) → ImageInvert → SaveImage."""
    graph: dict[str, Any] = {
        "1": {"class_type": loader, "inputs": {"image": value}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                    "filename_prefix": "i2i"}},
    }
    if loader == "LoadImageMask":
        graph["1"]["inputs"]["channel"] = "red"
        graph["4"] = {"class_type": "MaskToImage", "inputs": {"mask": ["1", 0]}}
        graph["2"]["inputs"]["image"] = ["4", 0]
    return graph


def first_pixel(body: dict) -> tuple[int, ...]:
    image = Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).convert("RGB")
    return image.getpixel((0, 0))


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int = 2) -> bool:
    """Colours equal up to float rounding in ComfyUI (or JPEG's loss, with a larger `tol`)."""
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def uploads(comfyui: ComfyUIProcess) -> set[str]:
    folder = comfyui.base_dir / "input" / "comfygen"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


async def test_base64_png_jpeg_and_data_uri(api: httpx.AsyncClient,
                                            comfyui: ComfyUIProcess) -> None:
    before = uploads(comfyui)
    r = await api.post("/prompt", json={"prompt": invert_loaded(b64(image_bytes((200, 10, 10)))),
                                        "id": "i2i-png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert near(first_pixel(body), (55, 245, 245))
    name = body["prompt"]["1"]["inputs"]["image"]  # the graph that ran names the upload
    assert name.startswith("comfygen/i2i-png-") and name.endswith(".png")
    assert uploads(comfyui) == before  # and the upload is gone again

    jpeg = b64(image_bytes((0, 0, 255), fmt="JPEG"))
    r = await api.post("/prompt", json={"prompt": invert_loaded(jpeg)})
    assert r.status_code == 200, r.text
    assert near(first_pixel(r.json()), (255, 255, 0), tol=8)

    uri = "data:image/png;base64," + b64(image_bytes((1, 2, 3)))
    r = await api.post("/prompt", json={"prompt": invert_loaded(uri)})
    assert r.status_code == 200 and near(first_pixel(r.json()), (254, 253, 252))


async def test_http_url_and_mask_loader(api: httpx.AsyncClient,
                                        media_server: MediaServer) -> None:
    r = await api.post("/prompt", json={"prompt": invert_loaded(media_server.url("/red.png"))})
    assert r.status_code == 200, r.text
    assert near(first_pixel(r.json()), (5, 255, 255))
    assert media_server.requests[-1][0] == "/red.png"

    mask = b64(image_bytes((255, 0, 0)))  # red channel 255 → mask 1.0 → white → inverted black
    r = await api.post("/prompt", json={"prompt": invert_loaded(mask, "LoadImageMask")})
    assert r.status_code == 200, r.text
    assert near(first_pixel(r.json()), (0, 0, 0))


async def test_a_file_name_in_the_input_folder_stays(api: httpx.AsyncClient,
                                                     comfyui: ComfyUIProcess) -> None:
    path = comfyui.base_dir / "input" / "compat-existing.png"
    path.write_bytes(image_bytes((100, 100, 100)))
    try:
        r = await api.post("/prompt", json={"prompt": invert_loaded("compat-existing.png")})
        assert r.status_code == 200, r.text
        assert r.json()["prompt"]["1"]["inputs"]["image"] == "compat-existing.png"
        assert near(first_pixel(r.json()), (155, 155, 155))
        assert path.exists()  # not ours to delete
    finally:
        path.unlink()


@pytest.mark.parametrize(("value", "status", "reason"), [
    ("Zm9v" * 40 + "A", 422, "invalid_base64"),
    (b64(b"plain text, not an image at all " * 4), 415, "unsupported_type"),
    (b64(image_bytes((1, 1, 1), size=(600, 600))), 413, "too_many_pixels"),
    ("ftp://bucket/key.png", 422, "unsupported_url"),
    ("http://169.254.169.254/latest/meta-data/x.png", 422, "url_refused"),
])
async def test_bad_values_are_4xx_naming_node_and_input(
        api: httpx.AsyncClient, comfyui: ComfyUIProcess, value: str, status: int,
        reason: str) -> None:
    before = uploads(comfyui)
    graph = invert_loaded(b64(image_bytes((9, 9, 9))))  # a good one in another loader
    graph["7"] = {"class_type": "LoadImage", "inputs": {"image": value}}
    graph["8"] = {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}}
    r = await api.post("/prompt", json={"prompt": graph})
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == "prompt.7.inputs.image" and body["reason"] == reason, body
    assert "prompt.7.inputs.image (LoadImage)" in body["error"]
    assert body["detail"][0]["loc"] == ["body", "prompt", "7", "inputs", "image"]
    assert uploads(comfyui) == before  # nothing was uploaded, not even the good one


async def test_async_answer_with_base64_media(api: httpx.AsyncClient) -> None:
    r = await api.post("/prompt", headers={"Prefer": "respond-async"},
                       json={"prompt": invert_loaded(b64(image_bytes((40, 50, 60))))})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "ok" and job["prompt"]["1"]["inputs"]["image"].startswith("comfygen/")
    state = await wait_state(api, job["job_id"], {"succeeded", "failed"})
    assert state["state"] == "succeeded", state

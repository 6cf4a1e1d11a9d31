"""comfyui-api README "Stateless API" (request and response format), "Using Synchronously",
"Using with Webhooks" and "Server-side image processing", on `POST /prompt` with the shapes its
tests send ("text2image works with multiple images", "works if the workflow has multiple output
nodes", "can convert to jpeg / webp", "Return content in webhook (- v2)").

Already covered elsewhere and not repeated: the sync contract of the typed endpoints and every
output kind (tests/server/test_api.py), convert options' effect on size and lossless WebP
(`test_convert_output_honours_options`), webhook retries, `prompt.failed` and refused webhook
URLs (tests/server/test_webhooks.py), jobs after a 202 (tests/jobs_api/). Waiting for the storage
issue: the `s3`, `azure_blob`, `hf_upload` and `http_upload` blocks ("Upload to ...").
"""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image
from standardwebhooks import Webhook

from tests.server.helpers import SECRET
from tests.server.webhook_receiver import Receiver

pytestmark = pytest.mark.comfyui


def batch_and_second_output(batch: int = 3) -> dict[str, Any]:
    """EmptyImage(batch) → SaveImage, and EmptyImage → SaveImage: batch + 1 images."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 32, "height": 24, "batch_size": batch, "color": 0x2040C0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}},
        "3": {"class_type": "EmptyImage",
              "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0xFFFFFF}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "b"}},
    }


def decoded(image: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(image)))


async def test_sync_batch_and_multiple_output_nodes(api: httpx.AsyncClient) -> None:
    r = await api.post("/prompt", json={"prompt": batch_and_second_output(), "id": "sync-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"id", "prompt", "images", "filenames", "stats"} <= set(body)
    assert body["id"] == "sync-1" and len(body["images"]) == len(body["filenames"]) == 4
    sizes = sorted(decoded(i).size for i in body["images"])
    assert sizes == [(8, 8), (32, 24), (32, 24), (32, 24)]
    assert all(name.startswith("sync-1_") and name.endswith(".png") for name in body["filenames"])
    assert len(set(body["filenames"])) == 4


@pytest.mark.parametrize(("convert", "fmt", "ext"), [
    ({"format": "jpeg"}, "JPEG", ".jpg"),
    ({"format": "jpeg", "options": {"quality": 60, "progressive": True,
                                    "chromaSubsampling": "4:4:4", "optimizeCoding": True,
                                    "mozjpeg": True}}, "JPEG", ".jpg"),
    ({"format": "webp"}, "WEBP", ".webp"),
    ({"format": "webp", "options": {"quality": 50, "alphaQuality": 80, "effort": 6,
                                    "smartSubsample": True, "preset": "photo"}}, "WEBP", ".webp"),
])
async def test_convert_output_with_comfyui_api_options(api: httpx.AsyncClient, convert: dict,
                                                       fmt: str, ext: str) -> None:
    r = await api.post("/prompt", json={"prompt": batch_and_second_output(2),
                                        "convert_output": convert})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["images"]) == 3
    assert {decoded(i).format for i in body["images"]} == {fmt}
    assert all(name.endswith(ext) for name in body["filenames"])
    pixel = decoded(body["images"][0]).convert("RGB").getpixel((4, 4))
    assert all(abs(a - b) <= 12 for a, b in zip(pixel, (0x20, 0x40, 0xC0), strict=True)) or \
        all(abs(a - b) <= 12 for a, b in zip(pixel, (255, 255, 255), strict=True))


async def test_unknown_convert_option_is_422(api: httpx.AsyncClient) -> None:
    r = await api.post("/prompt", json={"prompt": batch_and_second_output(1),
                                        "convert_output": {"format": "webp",
                                                           "options": {"qualty": 5}}})
    assert r.status_code == 422 and "qualty" in r.text


async def test_webhook_v2_one_signed_prompt_complete(api: httpx.AsyncClient,
                                                     receiver: Receiver) -> None:
    r = await api.post("/prompt", json={"prompt": batch_and_second_output(2), "id": "wh-2",
                                        "webhook_v2": receiver.url})
    assert r.status_code == 202, r.text
    assert {"id": "wh-2", "status": "ok"}.items() <= r.json().items() and "prompt" in r.json()
    await receiver.wait_for(1, timeout=60)
    (headers, raw), = receiver.received
    body = Webhook(SECRET.removeprefix("whsec_")).verify(raw, headers)
    assert body["type"] == "prompt.complete" and body["id"] == "wh-2"
    assert {"timestamp", "images", "filenames", "prompt", "stats"} <= set(body)
    assert len(body["images"]) == len(body["filenames"]) == 3


async def test_legacy_webhook_one_output_complete_per_image(api: httpx.AsyncClient,
                                                            receiver: Receiver) -> None:
    r = await api.post("/prompt", json={"prompt": batch_and_second_output(3), "id": "wh-1",
                                        "webhook": receiver.url})
    assert r.status_code == 202, r.text
    await receiver.wait_for(4, timeout=60)
    events = receiver.events()
    assert {e["event"] for e in events} == {"output.complete"}
    assert {e["id"] for e in events} == {"wh-1"}
    assert len({e["filename"] for e in events}) == 4
    assert sorted(decoded(e["image"]).size for e in events)[0] == (8, 8)

"""webhook_v2 delivery: 202 at once, signed, retried while the receiver is down, failures sent."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest
from standardwebhooks import Webhook

from tests.comfyui_testing import invert_graph

from .helpers import SECRET
from .webhook_receiver import Receiver

pytestmark = pytest.mark.comfyui


async def test_delivered_after_receiver_comes_back(api: httpx.AsyncClient) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    color = random.randrange(0xFFFFFF)
    t0 = time.monotonic()
    r = await api.post("/workflow/test/invert", json={
        "input": {"color": color}, "id": "hook-1", "webhook_v2": receiver.url})
    assert r.status_code == 202
    assert r.json()["status"] == "ok" and r.json()["id"] == "hook-1" and "input" in r.json()
    assert time.monotonic() - t0 < 1
    await asyncio.sleep(1.5)
    await receiver.start()
    try:
        await receiver.wait_for(1, timeout=20)
    finally:
        await receiver.stop()
    headers, body = receiver.received[0]
    Webhook(SECRET).verify(body, headers)  # raises unless the signature is right
    event = receiver.events()[0]
    assert event["type"] == "prompt.complete" and event["id"] == "hook-1"
    assert event["images"] and event["filenames"] and event["input"]["color"] == color
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 30


async def test_failures_are_sent_as_prompt_failed(api: httpx.AsyncClient) -> None:
    receiver = await Receiver().start()
    try:
        bad = {"1": {"class_type": "EmptyImage",
                     "inputs": {"width": 10**9, "height": 1, "batch_size": 1, "color": 0}},
               "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
        r = await api.post("/prompt", json={"prompt": bad, "webhook_v2": receiver.url})
        assert r.status_code == 202
        await receiver.wait_for(1, timeout=20)
        Webhook(SECRET).verify(receiver.received[0][1], receiver.received[0][0])
        event = receiver.events()[0]
        assert event["type"] == "prompt.failed" and event["error_type"] == "comfyui_validation"
        assert event["details"]["node_errors"][0]["input"] == "width"

        # a receiver that refuses the result for good still hears about the failure
        receiver.status_for = lambda body: 413 if b'"type":"prompt.complete"' in body else 200
        r = await api.post("/prompt", json={"prompt": invert_graph(random.randrange(9999)),
                                            "webhook_v2": receiver.url})
        await receiver.wait_for(2, timeout=20)
        event = receiver.events()[1]
        assert event["type"] == "prompt.failed" and event["error_type"] == "delivery_failed"
        assert "413" in event["error"]
    finally:
        await receiver.stop()


async def test_webhook_to_a_private_address_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.post("/workflow/test/invert", json={
        "input": {}, "webhook_v2": "http://169.254.169.254/latest/meta-data"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "webhook_v2"]

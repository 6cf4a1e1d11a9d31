"""comfyui-api README "System Events": `SYSTEM_WEBHOOK_URL`, `SYSTEM_WEBHOOK_EVENTS` and
`SYSTEM_META_*` forward ComfyUI's websocket events (`comfy.<type>`, the websocket message as
`data`, a prompt's id replaced by the request id) and file events (`storage.<type>`) to one
receiver, signed per Standard Webhooks with the webhook secret, `metadata` from `SYSTEM_META_*`.

A real receiver on loopback; the webhook allow-list is empty, so it is reached because it is the
configured system webhook. `file_uploaded` and `file_deleted` wait for the storage and models
issues (nothing in comfygen uploads or evicts files yet); `file_downloaded` is sent for media
fetched from a URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from standardwebhooks import Webhook

from server.app import create_app
from server.settings import Settings
from tests.comfyui_testing import invert_graph
from tests.server.helpers import SECRET, running
from tests.server.media_server import MediaServer
from tests.server.webhook_receiver import Receiver

from .conftest import image_bytes

pytestmark = pytest.mark.comfyui


async def wait_event(hook: Receiver, event: str, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            for body in hook.events():
                if body["event"] == event:
                    return body
            hook.arrived.clear()
            await hook.arrived.wait()


def system_settings(make_settings: Callable[..., Settings], hook: Receiver,
                    events: str) -> Settings:
    return make_settings(system_webhook_url=hook.url, system_webhook_events=events,
                         system_webhook_meta={"batch": "abc"}, webhook_allow_cidrs="")


async def test_chosen_comfy_events_signed_with_metadata(
        make_settings: Callable[..., Settings], receiver: Receiver) -> None:
    settings = system_settings(make_settings, receiver,
                               "status,execution_start,executed,execution_success")
    async with running(create_app(settings, {})) as http:
        r = await http.post("/prompt", json={"prompt": invert_graph(), "id": "sys-1"})
        assert r.status_code == 200, r.text
        success = await wait_event(receiver, "comfy.execution_success")
        await wait_event(receiver, "comfy.status")
    assert success == {"event": "comfy.execution_success",
                       "data": {"type": "execution_success",
                                "data": {"prompt_id": "sys-1",
                                         "timestamp": success["data"]["data"]["timestamp"]}},
                       "metadata": {"batch": "abc"}}
    bodies = receiver.events()
    assert {b["event"] for b in bodies} <= {"comfy.status", "comfy.execution_start",
                                            "comfy.executed", "comfy.execution_success"}
    executed = [b for b in bodies if b["event"] == "comfy.executed"
                and b["data"]["data"]["prompt_id"] == "sys-1"]
    assert executed and executed[0]["data"]["data"]["output"]["images"][0]["type"] == "output"
    status = next(b for b in bodies if b["event"] == "comfy.status")
    assert "exec_info" in status["data"]["data"]["status"]
    signer = Webhook(SECRET.removeprefix("whsec_"))
    for headers, body in receiver.received:  # every event verifies
        signer.verify(body, {k: headers[k] for k in
                             ("webhook-id", "webhook-timestamp", "webhook-signature")})
    assert len({h["webhook-id"] for h, _ in receiver.received}) == len(receiver.received)


async def test_a_failing_receiver_never_slows_a_request(
        make_settings: Callable[..., Settings], receiver: Receiver) -> None:
    receiver.status_for = lambda body: 503
    settings = system_settings(make_settings, receiver, "all")
    async with running(create_app(settings, {})) as http:
        started = time.monotonic()
        r = await http.post("/prompt", json={"prompt": invert_graph(color=0x010203),
                                             "id": "sys-2"})
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 10
        assert receiver.received == [] and receiver.attempts > 0  # refused, to be retried
        receiver.status_for = lambda body: 200
        body = await wait_event(receiver, "comfy.execution_success")  # a retry got through
        assert body["data"]["data"]["prompt_id"] == "sys-2"
        assert {"comfy.executing", "comfy.progress_state"} <= {
            b["event"] for b in receiver.events()}


async def test_file_downloaded_for_media_fetched_from_a_url(
        make_settings: Callable[..., Settings], receiver: Receiver) -> None:
    media = MediaServer("127.0.0.2").start()
    media.routes["/in.png"] = lambda h: (200, {}, _png())
    settings = system_settings(make_settings, receiver, "file_downloaded")
    try:
        async with running(create_app(settings, {})) as http:
            url = media.url("/in.png") + "?X-Amz-Signature=secret-sig"
            graph = {"1": {"class_type": "LoadImage", "inputs": {"image": url}},
                     "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
            r = await http.post("/prompt", json={"prompt": graph})
            assert r.status_code == 200, r.text
            body = await wait_event(receiver, "storage.file_downloaded")
    finally:
        media.stop()
    assert body["data"] == {"url": media.url("/in.png"), "field": "prompt.1.inputs.image",
                            "size": len(_png()), "content_type": "image/png"}
    assert "secret-sig" not in str(receiver.received)
    assert {b["event"] for b in receiver.events()} == {"storage.file_downloaded"}


def _png() -> bytes:
    return image_bytes((3, 4, 5))


async def test_unknown_event_name_stops_the_start(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(system_webhook_url="http://127.0.0.1:9/x",
                                   system_webhook_events="progress,nope"), {})
    with pytest.raises(ValueError, match="unknown event.*nope"):
        async with running(app, ready=False):
            pass


def test_a_failing_listener_never_stops_prompt_tracking() -> None:
    """The websocket reader hands every message to the listener first; if it raises, the
    prompt's tracker still gets the message (unit test of comfygen.comfy.tracking)."""
    from comfygen.comfy.tracking import PromptWatcher

    watcher = PromptWatcher(None, "c", heartbeat=1, poll_interval=1,  # type: ignore[arg-type]
                            fast_poll_interval=1, reconnect_max_delay=1, unavailable_grace=1)
    seen: list[str] = []

    def listener(kind: str, data: dict[str, Any]) -> None:
        seen.append(kind)
        raise RuntimeError("receiver bug")

    watcher.listener = listener
    tracker = watcher.track("p1")
    watcher.dispatch('{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}')
    watcher.dispatch('{"type": "executing", "data": {"node": null, "prompt_id": "p1"}}')
    assert seen == ["status", "executing"]
    assert tracker.closed_by_ws and tracker.signal.is_set()

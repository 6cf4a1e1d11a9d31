"""Pure logic of images sent over ComfyUI's websocket (no ComfyUI): how a binary message finds
its prompt and node, and which images are outputs. The real messages, from the real ComfyUI's
`SaveImageWebsocket`, are tested in tests/server/test_websocket_outputs.py."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from comfygen.comfy.files import WEBSOCKET, lost_outputs, sent_files
from comfygen.comfy.models import PromptResult, WebsocketImage
from comfygen.comfy.tracking import PromptWatcher

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def watcher() -> PromptWatcher:
    return PromptWatcher(None, "me", heartbeat=1, poll_interval=1,  # type: ignore[arg-type]
                         fast_poll_interval=1, reconnect_max_delay=1, unavailable_grace=1)


def with_metadata(meta: dict[str, Any], image: bytes = PNG) -> bytes:
    header = json.dumps(meta).encode()
    return struct.pack(">II", 4, len(header)) + header + image


def test_images_find_their_prompt_and_node() -> None:
    w = watcher()
    mine, other = w.track("p1"), w.track("p2")
    w.dispatch_binary(with_metadata({"node_id": "9", "prompt_id": "p1",
                                     "image_type": "image/png"}))
    w.dispatch_binary(with_metadata({"node_id": "5.0.1", "display_node_id": "5",
                                     "prompt_id": "p2", "image_type": "image/jpeg"}, b"jpg"))
    w.dispatch_binary(with_metadata({"node_id": "9", "prompt_id": "gone"}))  # not ours
    assert mine.ws_images == [WebsocketImage("9", "image/png", PNG)]
    assert other.ws_images == [WebsocketImage("5", "image/jpeg", b"jpg")]  # the visible node

    # without metadata (a ComfyUI that ignored the feature flags): the executing node's
    w.dispatch(json.dumps({"type": "executing", "data": {"node": "7", "prompt_id": "p1"}}))
    w.dispatch_binary(struct.pack(">II", 1, 2) + PNG)
    w.dispatch_binary(struct.pack(">II", 1, 1) + b"jpeg")
    assert mine.ws_images[1:] == [WebsocketImage("7", "image/png", PNG),
                                  WebsocketImage("7", "image/jpeg", b"jpeg")]
    w.dispatch(json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "p1"}}))
    w.dispatch_binary(struct.pack(">II", 1, 2) + PNG)  # nothing is executing: dropped
    for junk in (b"", b"\x00\x00\x00\x04", struct.pack(">II", 4, 99) + b"{not json",
                 struct.pack(">II", 4, 2) + b"[]", struct.pack(">II", 3, 0) + PNG):
        w.dispatch_binary(junk)
    assert len(mine.ws_images) == 3 and len(other.ws_images) == 1
    assert mine.closed_by_ws and not mine.ws_whole  # its start was not seen


def test_output_nodes_images_are_files_and_previews_are_not() -> None:
    images = (WebsocketImage("9", "image/png", b"a"), WebsocketImage("4", "image/jpeg", b"p"),
              WebsocketImage("9", "image/png", b"b"), WebsocketImage("12", "image/webp", b"c"))
    result = PromptResult("p", {"3": {"images": []}}, ws_images=images, ws_whole=True)
    files = sent_files(result, ["3", "9", "12"], "req 1")  # node 4 (a sampler) is no output
    assert [(f.node, f.filename, f.type, d) for f, d in files] == [
        ("9", "req_1_9_ws_00001_.png", WEBSOCKET, b"a"),
        ("9", "req_1_9_ws_00002_.png", WEBSOCKET, b"b"),
        ("12", "req_1_12_ws_00001_.webp", WEBSOCKET, b"c")]
    assert [f.content_type for f, _ in files] == ["image/png", "image/png", "image/webp"]
    assert [f.node for f, _ in sent_files(result, ["3", "9", "12"], "r", ("12",))] == ["12"]
    assert len(sent_files(result, None, "r")) == 4  # no node definitions: every image


def test_a_silent_output_node_is_lost_only_when_the_websocket_missed_part_of_the_run() -> None:
    sent = (WebsocketImage("9", "image/png", b"a"),)
    whole = PromptResult("p", {"3": {"images": []}}, ws_images=sent, ws_whole=True)
    assert lost_outputs(whole, ["3", "9", "10"]) == []  # node 10 really left nothing
    partial = PromptResult("p", {"3": {"images": []}}, ws_images=sent, ws_whole=False)
    assert lost_outputs(partial, ["3", "9", "10"]) == ["10"]
    assert lost_outputs(partial, ["3", "9", "10"], ("3", "9")) == []  # 10 is not returned


async def test_only_the_kept_nodes_images_stay_with_the_prompt() -> None:
    """With its output nodes given, a prompt keeps only their images; a sampler's previews are
    handed to the prompt's listeners, then forgotten (no memory growing with the steps)."""
    w = watcher()
    tracker = w.track("p1")
    tracker.keep_images = ("9",)
    events = w.events("p1")
    listening = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # the listener is subscribed
    for node in ("4", "4", "9"):
        w.dispatch_binary(with_metadata({"node_id": node, "prompt_id": "p1"}))
    assert [image.node for image in tracker.ws_images] == ["9"]
    first = await listening
    assert first.type == "image" and first.data["image"].node == "4"
    assert [(await anext(events)).data["image"].node for _ in range(2)] == ["4", "9"]
    await events.aclose()


def test_whole_means_one_connection_saw_the_start_and_the_end() -> None:
    """Counted per connection when it is made (before its first frame), and decided when the
    end is seen: a reconnect between start and end means images may be missing."""
    w = watcher()
    seen, split = w.track("p1"), w.track("p2")
    w._connection = 1
    for prompt in ("p1", "p2"):
        w.dispatch(json.dumps({"type": "execution_start", "data": {"prompt_id": prompt}}))
    w.dispatch(json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "p1"}}))
    w._connection = 2  # dropped and reconnected
    w.dispatch(json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "p2"}}))
    assert seen.ws_whole and not split.ws_whole

"""The ComfyUI client against the real ComfyUI 0.3.75 (model-free graphs)."""

from __future__ import annotations

import asyncio
import io
import random
import time

import pytest
from PIL import Image

from comfygen.comfy import rest
from comfygen.comfy.client import ComfyClient
from comfygen.comfy.errors import (
    ComfyExecutionError,
    ComfyInterruptedError,
    ComfyTimeoutError,
    ComfyUnavailableError,
    ComfyValidationError,
)
from comfygen.comfy.launcher import ComfyUIProcess, free_port
from comfygen.comfy.object_info import ObjectInfoCache
from tests.comfyui_testing import TcpProxy, invert_graph, rgb, slow_graph

pytestmark = pytest.mark.comfyui


def pixel(data: bytes) -> tuple[int, ...]:
    return Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal up to ComfyUI's float rounding (one step per channel)."""
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


def fresh_color() -> int:
    return random.randrange(0, 0xFFFFFF)


async def test_run_returns_every_output_kind(client: ComfyClient) -> None:
    color = fresh_color()
    graph = invert_graph(color, prefix="cgsub/inv")
    graph["4"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    graph["5"] = {"class_type": "PreviewAny", "inputs": {"source": "hello"}}
    graph["6"] = {"class_type": "SaveAnimatedWEBP",
                  "inputs": {"images": ["1", 0], "filename_prefix": "cganim", "fps": 6.0,
                             "lossless": False, "quality": 80, "method": "default"}}
    result = await client.run(graph, timeout=30)
    files = {f.node: f for f in result.files()}
    assert files["3"].subfolder == "cgsub" and files["3"].type == "output"
    assert files["4"].type == "temp"
    assert files["6"].filename.endswith(".webp")
    assert ("5", "text", ["hello"]) in result.values()
    inverted = tuple(255 - c for c in rgb(color))
    assert near(pixel(await client.fetch(files["3"])), inverted)
    assert near(pixel(await client.fetch(files["4"])), rgb(color))
    assert result.execution_ms is not None


async def test_events_iterate_until_the_prompt_ends(client: ComfyClient) -> None:
    prompt_id = await client.submit(invert_graph(fresh_color()))
    seen: list[str] = []

    async def collect() -> None:
        async for event in client.events(prompt_id):
            seen.append(event.type)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)  # subscribed before waiting: a prompt already over ends the wait at once
    await client.wait(prompt_id, timeout=30)
    await asyncio.wait_for(task, 5)
    assert seen[0] == "execution_start"
    assert "executed" in seen and "execution_success" in seen
    assert seen[-1] == "executing"


async def test_events_of_a_prompt_that_already_ended_replay_and_end(client: ComfyClient) -> None:
    """A listener that arrives after the wait ended (a fast prompt) must not hang."""
    prompt_id = await client.submit(invert_graph(fresh_color()))
    await client.wait(prompt_id, timeout=30)
    seen = [e.type async for e in client.events(prompt_id)]  # ends at once
    assert "execution_success" in seen and seen[-1] == "executing"


async def test_calls_through_httpx_while_tracing(client: ComfyClient,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # With tracing on every call takes httpx (its instrumentation makes the spans): the same
    # answers, errors and outputs as through aiohttp.
    monkeypatch.setattr(rest, "_through_aiohttp", True)
    rest.trace_through_httpx()
    assert rest._through_aiohttp is False
    with pytest.raises(ComfyValidationError) as info:
        await client.submit({"1": {"class_type": "NoSuchNode", "inputs": {}}})
    assert info.value.error["type"] == "invalid_prompt"
    color = fresh_color()
    result = await client.run(invert_graph(color), timeout=30)
    (file,) = result.files()
    assert near(pixel(await client.fetch(file)), tuple(255 - c for c in rgb(color)))
    assert (await client.queue()).size >= 0


async def test_unknown_node_class_is_a_validation_error(client: ComfyClient) -> None:
    with pytest.raises(ComfyValidationError) as info:
        await client.submit({"1": {"class_type": "NoSuchNode", "inputs": {}}})
    assert info.value.error["type"] == "invalid_prompt"


async def test_out_of_range_input_names_node_and_input(client: ComfyClient) -> None:
    graph = invert_graph()
    graph["1"]["inputs"]["width"] = 10**9
    with pytest.raises(ComfyValidationError) as info:
        await client.submit(graph)
    err = info.value.node_errors["1"]["errors"][0]
    assert err["type"] == "value_bigger_than_max"
    assert err["extra_info"]["input_name"] == "width"


async def test_partly_valid_prompt_is_refused_not_half_run(client: ComfyClient) -> None:
    graph = invert_graph(fresh_color())
    graph["7"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nope.ckpt"}}
    graph["8"] = {"class_type": "PreviewAny", "inputs": {"source": ["7", 0]}}
    with pytest.raises(ComfyValidationError) as info:
        await client.submit(graph)
    assert info.value.node_errors["7"]["errors"][0]["type"] == "value_not_in_list"
    assert client.pending == 0


async def test_execution_error_carries_node_and_message(client: ComfyClient) -> None:
    graph = invert_graph(fresh_color(), prefix="../../escape")
    with pytest.raises(ComfyExecutionError) as info:
        await client.run(graph, timeout=30)
    assert info.value.node_id == "3" and info.value.node_type == "SaveImage"
    assert "outside the output folder" in info.value.exception_message


async def test_upload_then_load_and_scale(client: ComfyClient) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, "PNG")
    ref = await client.upload(buf.getvalue(), "cg-upload.png", subfolder="cgtests")
    assert ref["subfolder"] == "cgtests" and ref["type"] == "input"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": f"cgtests/{ref['name']}"}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method":
              "nearest-exact", "width": 16, "height": 12, "crop": "disabled"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                    "filename_prefix": "cgscaled"}},
    }
    result = await client.run(graph, timeout=30)
    data = await client.fetch(result.files()[0])
    img = Image.open(io.BytesIO(data))
    assert img.size == (16, 12) and img.convert("RGB").getpixel((5, 5)) == (10, 200, 30)


async def test_cancel_pending_removes_and_running_interrupts(client: ComfyClient) -> None:
    running = await client.submit(slow_graph(blurs=6, color=fresh_color()))
    pending = await client.submit(slow_graph(blurs=6, color=fresh_color()))
    deadline = time.monotonic() + 20
    while running not in (await client.queue()).running:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await client.cancel(pending) == "deleted"
    with pytest.raises(ComfyInterruptedError):
        await client.wait(pending, timeout=5)
    assert await client.cancel(running) == "interrupted"
    t0 = time.monotonic()
    with pytest.raises(ComfyInterruptedError):
        await client.wait(running, timeout=20)
    assert time.monotonic() - t0 < 5
    assert await client.cancel(running) == "not_found"


async def test_timeout_cancels_the_job(client: ComfyClient) -> None:
    with pytest.raises(ComfyTimeoutError) as info:
        await client.run(slow_graph(blurs=6, color=fresh_color()), timeout=0.5)
    assert info.value.cancelled in ("interrupted", "deleted")
    q = await client.queue()
    assert info.value.prompt_id not in q.pending


def count_fetches(cache: ObjectInfoCache) -> list[int]:
    """A list that grows by one on every `/object_info` fetch of `cache`."""
    fetches: list[int] = []
    fetch = cache._fetch

    async def counted() -> bytes:
        fetches.append(1)
        return await fetch()

    cache._fetch = counted
    return fetches


async def test_object_info_is_cached_until_refreshed(client: ComfyClient) -> None:
    first = await client.object_info()
    assert "KSampler" in first and "SaveImage" in first
    assert await client.object_info() is first
    fetches, digest = count_fetches(client.node_info), client.node_info.digest
    again = await client.object_info(refresh=True)
    assert len(fetches) == 1
    # parsed again only when the body changed (an input subfolder created meanwhile, say)
    assert (again is first) == (client.node_info.digest == digest)
    assert client.node_info.digest


async def test_object_info_refreshes_when_models_change_not_on_a_timer(
        comfyui: ComfyUIProcess) -> None:
    async with ComfyClient(comfyui.url, object_info_ttl=0.2) as c:
        await c.wait_connected()
        await c.object_info()
        info = c.node_info
        fetches, digest = count_fetches(info), info.digest
        await asyncio.sleep(1.0)  # five model checks, nothing changed: no refresh
        assert await c.object_info() and (fetches, info.digest) == ([], digest)
        path = comfyui.base_dir / "models" / "checkpoints" / f"watch-{fresh_color()}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not really a checkpoint")
        try:
            deadline = time.monotonic() + 10
            while info.digest == digest:
                assert time.monotonic() < deadline, "the new model was not noticed"
                await asyncio.sleep(0.1)
            assert info.latest is not None
            assert path.name in info.latest.choices("CheckpointLoaderSimple", "ckpt_name")
        finally:
            path.unlink()


async def test_object_info_refreshes_on_reconnect(proxy: TcpProxy) -> None:
    async with ComfyClient(proxy.url, object_info_ttl=0) as c:
        await c.wait_connected()
        await c.object_info()
        fetches = count_fetches(c.node_info)
        proxy.cut()
        deadline = time.monotonic() + 10
        while not fetches:
            assert time.monotonic() < deadline, "no refresh after the websocket reconnected"
            await asyncio.sleep(0.1)
        assert c.ws_connects >= 2


async def test_models_lists_folders_live(client: ComfyClient) -> None:
    folders = await client.models()
    assert "checkpoints" in folders and folders["checkpoints"] == []
    assert await client.models("loras") == []


async def test_unreachable_comfyui_is_unavailable() -> None:
    async with ComfyClient(f"http://127.0.0.1:{free_port()}") as c:
        with pytest.raises(ComfyUnavailableError):
            await c.submit(invert_graph())
        assert not c.connected


async def test_websocket_cut_falls_back_to_history(proxy: TcpProxy) -> None:
    async with ComfyClient(proxy.url, fast_poll_interval=0.3) as c:
        await c.wait_connected()
        prompt_id = await c.submit(slow_graph(blurs=2, color=fresh_color()))
        await asyncio.sleep(0.2)
        proxy.block_websocket = True
        proxy.cut()  # drops the websocket (and any open HTTP connection)
        t0 = time.monotonic()
        result = await asyncio.wait_for(c.wait(prompt_id), 20)
        assert result.files()[0].type == "temp"
        assert not c.connected and proxy.websocket_refusals >= 1
        assert time.monotonic() - t0 < 10
        proxy.block_websocket = False
        await c.wait_connected(timeout=10)
        assert c.ws_connects >= 2
        done = await asyncio.wait_for(c.run(invert_graph(fresh_color())), 10)
        assert done.files()


async def test_comfyui_gone_mid_wait_fails_fast(proxy: TcpProxy) -> None:
    """A ComfyUI that vanishes (here: its only route is cut and refused) ends the wait."""
    async with ComfyClient(proxy.url, fast_poll_interval=0.2, unavailable_grace=1.0) as c:
        await c.wait_connected()
        prompt_id = await c.submit(slow_graph(blurs=8, color=fresh_color()))
        await proxy.stop()  # nothing answers on the proxy port any more
        t0 = time.monotonic()
        with pytest.raises(ComfyUnavailableError):
            await asyncio.wait_for(c.wait(prompt_id), 15)
        assert time.monotonic() - t0 < 5
    async with ComfyClient(f"http://127.0.0.1:{proxy.target[1]}") as direct:
        await direct.cancel(prompt_id)

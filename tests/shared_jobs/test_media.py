"""Media with shared jobs: accepted by an API replica (no ComfyUI), carried in Redis with the
job, staged by the worker that runs it in its own ComfyUI, and gone from both afterwards."""

from __future__ import annotations

import asyncio
import base64
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from redis.asyncio import Redis

from comfygen.comfy.launcher import ComfyUIProcess
from tests.comfyui_testing import rgb, slow_graph
from tests.jobs_api.live import wait_state
from tests.server.media_server import MediaServer
from tests.shared_jobs.test_failures import (
    CLAIM_TIMEOUT,
    WorkerProcess,
    running_on,
    worker_env,
)
from tests.shared_jobs.topology import ASYNC, topology
from tests.shared_jobs.valkey import Valkey

pytestmark = pytest.mark.comfyui
TOKEN = "Bearer shared-media-token-9c2e71"
CAP = 300_000  # shared_media_max_bytes of these tests


def png(color: int, size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb(color)).save(buf, "PNG")
    return buf.getvalue()


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    import os

    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


def image(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


def load_invert(image_value: str | dict) -> dict:
    """LoadImage(value) → ImageInvert → SaveImage: a model-free image-in, image-out graph."""
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image_value}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                        "filename_prefix": "cg/shared-media"}}}


def input_files(comfyuis: list[ComfyUIProcess]) -> set[Path]:
    """Every file in these ComfyUIs' input folders."""
    return {p for c in comfyuis for p in (c.base_dir / "input").rglob("*") if p.is_file()}


async def media_keys(valkey: Valkey, prefix: str) -> list[str]:
    redis = Redis.from_url(valkey.url, decode_responses=True)
    try:
        return [k async for k in redis.scan_iter(f"{prefix}:job:*:media")]
    finally:
        await redis.aclose()


@pytest.fixture(scope="module")
def media_server() -> Iterator[MediaServer]:
    server = MediaServer("127.0.0.1").start()
    server.routes["/in.png"] = lambda h: (200, {"Content-Type": "image/png"}, png(0x204060))
    server.routes["/private.png"] = lambda h: (
        (200, {}, png(0x405060)) if h.get("authorization") == TOKEN else (403, {}, b"no"))
    yield server
    server.stop()


async def test_media_through_an_api_replica(valkey: Valkey, comfyui: ComfyUIProcess,
                                            comfyui2: ComfyUIProcess,
                                            media_server: MediaServer) -> None:
    from tests.server.server_workflows import registry

    comfyuis = [comfyui, comfyui2]
    async with topology(valkey, comfyuis, registry=registry(),
                        shared_media_max_bytes=CAP) as top:
        a, b = top.api
        async with asyncio.timeout(30):  # a worker publishes its node definitions
            while "lanczos" not in (await a.get("/openapi.json")).text:
                await asyncio.sleep(0.2)
        before = input_files(comfyuis)

        # a typed workflow's base64 input, synchronous, through replica A
        data = base64.b64encode(png(0x336699)).decode()
        r = await a.post("/workflow/test/scale", json={"input": {
            "image": data, "width": 10, "height": 4}, "id": "b64"})
        assert r.status_code == 200, r.text
        out = image(r.json()["images"][0])
        assert out.size == (10, 4) and out.getpixel((3, 2)) == rgb(0x336699)
        assert r.json()["input"]["image"].startswith("comfygen/b64-image-")

        # a multipart upload, as a job (202) created on A and followed on B
        r = await a.post("/workflow/test/scale", files={
            "image": ("photo.png", png(0x5A4B3C), "image/png")},
            data={"input.width": "7", "input.height": "5", "id": "mp"}, headers=ASYNC)
        assert r.status_code == 202, r.text
        assert r.json()["input"]["image"].startswith("comfygen/mp-image-")
        job = await wait_state(b, r.json()["job_id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        out = image(job["result"]["images"][0])
        assert out.size == (7, 5) and out.getpixel((1, 1)) == rgb(0x5A4B3C)

        # a raw graph's URL value on /prompt (the URL guard allow-lists 127.0.0.0/8 here),
        # with the request's credentials for a private URL: used by A, stored nowhere
        r = await b.post("/prompt", json={"prompt": load_invert(media_server.url("/in.png"))})
        assert r.status_code == 200, r.text
        assert near(image(r.json()["images"][0]).getpixel((0, 0)), rgb(0xFFFFFF - 0x204060))
        r = await a.post("/prompt", headers=ASYNC, json={
            "prompt": load_invert(media_server.url("/private.png")),
            "credentials": {media_server.url("/*"): {"Authorization": TOKEN}}})
        assert r.status_code == 202, r.text
        private = r.json()["job_id"]
        job = await wait_state(b, private, {"succeeded", "failed"})
        assert near(image(job["result"]["images"][0]).getpixel((0, 0)), rgb(0xFFFFFF - 0x405060))

        # a v2 raw graph with a base64 value
        data = base64.b64encode(png(0x0F1E2D)).decode()
        r = await b.post("/api/v2/jobs", json={"workflow": load_invert(data)})
        assert r.status_code == 201, r.text
        v2 = r.json()["id"]
        job = await wait_state(a, v2, {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        assert near(image(job["result"]["images"][0]).getpixel((0, 0)), rgb(0xFFFFFF - 0x0F1E2D))

        # a v2 asset uploaded through A, used by a job created through B; read, probed and
        # deleted through either (one copy of the bytes in Redis, gone with its last record)
        data = png(0x2B3C4D, (12, 9))
        first = await a.post("/api/v2/assets", files={"file": ("a.png", data, "image/png")})
        assert first.status_code == 201 and first.json()["created_new"] is True, first.text
        asset = first.json()
        again = await b.post("/api/v2/assets", files={"file": ("b.png", data, "image/png")})
        assert again.json()["created_new"] is False and again.json()["hash"] == asset["hash"]
        ref = {"__type": "core/ASSET", "info": {"id": asset["id"]}}
        r = await b.post("/api/v2/jobs", json={"workflow": load_invert(ref)})
        assert r.status_code == 201, r.text
        job = await wait_state(a, r.json()["id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        assert near(image(job["result"]["images"][0]).getpixel((0, 0)), rgb(0xFFFFFF - 0x2B3C4D))
        assert (await b.get(f"/api/v2/assets/{asset['id']}/content")).content == data
        meta = (await b.get(f"/api/v2/assets/{asset['id']}")).json()
        assert meta["size_bytes"] == len(data) and meta["content_type"] == "image/png"
        assert (await a.head(f"/api/v2/assets/by-hash/{asset['hash']}")).status_code == 200
        assert (await b.delete(f"/api/v2/assets/{asset['id']}")).status_code == 204
        assert (await a.get(f"/api/v2/assets/{asset['id']}")).status_code == 404
        assert (await a.head(f"/api/v2/assets/by-hash/{asset['hash']}")).status_code == 200
        assert (await a.delete(f"/api/v2/assets/{again.json()['id']}")).status_code == 204
        assert (await b.head(f"/api/v2/assets/by-hash/{asset['hash']}")).status_code == 404
        r = await a.post("/api/v2/jobs", json={"workflow": load_invert(ref)})
        assert r.status_code == 422 and r.json()["error"]["code"] == "missing_asset", r.text

        # over the per-job cap: 413 naming the setting, and no job, no media left in Redis
        big = base64.b64encode(noise_png(360)).decode()
        r = await a.post("/workflow/test/scale", json={"input": {"image": big}},
                         headers={**ASYNC, "Idempotency-Key": "too-big"})
        assert r.status_code == 413, r.text
        assert "shared_media_max_bytes" in r.json()["error"]

        # nothing left behind: no media hash in Redis, no file in either ComfyUI's input folder
        assert await media_keys(valkey, top.prefix) == []
        assert input_files(comfyuis) - before == set()
        # the request's credentials are in no job record, view or event
        redis = Redis.from_url(valkey.url)
        try:
            for key in [k async for k in redis.scan_iter(f"{top.prefix}:*")]:
                kind = await redis.type(key)
                dumped = (repr(await redis.hgetall(key)) if kind == b"hash" else
                          repr(await redis.xrange(key)) if kind == b"stream" else
                          repr(await redis.get(key)) if kind == b"string" else "")
                assert TOKEN.split()[1] not in dumped, key
            assert not await redis.exists(f"{top.prefix}:key:too-big")  # refused: no job
        finally:
            await redis.aclose()
        assert TOKEN.split()[1] not in (await b.get(f"/jobs/{private}")).text
        assert TOKEN.split()[1] not in (await b.get(f"/jobs/{private}/events")).text


async def test_a_sigkilled_workers_job_finds_its_media(
        valkey: Valkey, comfyui: ComfyUIProcess, comfyui2: ComfyUIProcess,
        processes: list[WorkerProcess]) -> None:
    """The job's worker dies mid-run: the other worker stages the media again in its own
    ComfyUI and finishes; the restarted worker removes what its predecessor left."""
    from server.app import create_app
    from tests.jobs_api.live import live
    from tests.shared_jobs.topology import shared_settings

    comfyuis = [comfyui, comfyui2]
    before = input_files(comfyuis)
    async with topology(valkey, [], api_comfyui=comfyui,
                        job_claim_timeout=CLAIM_TIMEOUT) as top:  # API replicas only
        a, b = top.api
        env = worker_env(comfyui2, valkey, top.prefix,
                         comfyui_input_dir=comfyui2.base_dir / "input")
        doomed = WorkerProcess(env)
        processes.append(doomed)
        await doomed.start()
        redis = Redis.from_url(valkey.url, decode_responses=True)
        async with asyncio.timeout(30):  # its node definitions tell A which inputs load files
            while not await redis.exists(f"{top.prefix}:nodedefs"):
                await asyncio.sleep(0.1)
        graph = slow_graph(blurs=3, size=160)
        graph["1"] = {"class_type": "LoadImage", "inputs": {
            "image": base64.b64encode(png(0x6A5A4A, (160, 160))).decode()}}
        graph["99"] = {"class_type": "SaveImage", "inputs": {
            "images": graph["99"]["inputs"]["images"], "filename_prefix": "cg/shared-kill"}}
        r = await a.post("/prompt", json={"prompt": graph}, headers=ASYNC)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        async with asyncio.timeout(60):
            while not await running_on(comfyui2):
                await asyncio.sleep(0.05)
        doomed.kill()  # mid-run: its staged file stays in comfyui2's input folder
        survivor = shared_settings(comfyui, valkey, top.prefix, "worker",
                                   job_claim_timeout=CLAIM_TIMEOUT)
        async with live(create_app(survivor, {})):
            job = await wait_state(b, job_id, {"succeeded", "failed", "cancelled"}, 120)
        assert job["state"] == "succeeded", job
        assert int(await redis.hget(f"{top.prefix}:job:{job_id}", "attempt")) >= 2
        out = image(job["result"]["images"][0])
        assert near(out.getpixel((80, 80)), rgb(0x6A5A4A))
        assert await media_keys(valkey, top.prefix) == []
        left = input_files(comfyuis) - before
        assert left and all(comfyui2.base_dir in p.parents for p in left), left
        await doomed.start()  # a new worker on comfyui2 removes what the killed one left
        async with asyncio.timeout(30):
            while input_files(comfyuis) - before:
                await asyncio.sleep(0.2)
        await redis.aclose()


async def test_a_model_url_is_checked_by_the_api_and_downloaded_by_the_worker(
        valkey: Valkey, comfyui: ComfyUIProcess, media_server: MediaServer,
        tmp_path: Path) -> None:
    import os
    import uuid

    vae = comfyui.base_dir / "models" / "vae"
    vae.mkdir(parents=True, exist_ok=True)
    name = f"shared-{uuid.uuid4().hex[:8]}.safetensors"
    weights = os.urandom(50_000)
    media_server.routes[f"/m/{name}"] = lambda h: (200, {}, weights)
    url = media_server.url(f"/m/{name}") + "?signature=s3cr3t-query"
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8,
                                                         "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "cg/shared-od"}},
             "9": {"class_type": "VAELoader", "inputs": {"vae_name": url}}}
    try:
        async with topology(valkey, [comfyui], apis=1, models_dir=comfyui.base_dir / "models",
                            models_cache_dir=tmp_path) as top:
            (a,) = top.api
            redis = Redis.from_url(valkey.url, decode_responses=True)
            async with asyncio.timeout(30):
                while not await redis.exists(f"{top.prefix}:nodedefs"):
                    await asyncio.sleep(0.1)
            # refused by the API replica's URL guard: 422 naming the input, no job
            bad = {**graph, "9": {"class_type": "VAELoader",
                                  "inputs": {"vae_name": "http://169.254.169.254/x.safetensors"}}}
            r = await a.post("/prompt", json={"prompt": bad})
            assert r.status_code == 422 and r.json()["field"] == "prompt.9.inputs.vae_name"
            r = await a.post("/prompt", json={"prompt": graph}, headers=ASYNC)
            assert r.status_code == 202, r.text
            assert r.json()["prompt"]["9"]["inputs"]["vae_name"] == name
            job_id = r.json()["job_id"]
            job = await wait_state(a, job_id, {"succeeded", "failed"})
            assert job["state"] == "succeeded", job
            assert (vae / name).read_bytes() == weights  # in the worker's models folder
            # the signed URL is in no record, view or event; its private key went with the job
            assert "s3cr3t" not in (await a.get(f"/jobs/{job_id}")).text
            assert "s3cr3t" not in (await a.get(f"/jobs/{job_id}/events")).text
            assert "s3cr3t" not in repr(await redis.hgetall(f"{top.prefix}:job:{job_id}"))
            assert not await redis.exists(f"{top.prefix}:job:{job_id}:private")
            await redis.aclose()
    finally:
        (vae / name).unlink(missing_ok=True)


async def test_a_full_shared_queue_refuses_before_fetching_media(
        valkey: Valkey, comfyui: ComfyUIProcess, media_server: MediaServer) -> None:
    """The create script is what refuses a job when the shared queue is full, so the first
    refused request has fetched its media; after that refusal the replica reads the queue's
    length first (for `retry_after` seconds), and a request is refused without a download,
    until a job leaves the queue."""
    from tests.server.server_workflows import registry

    media_server.routes["/full.png"] = lambda h: (200, {"Content-Type": "image/png"},
                                                  png(0x6A5A4A))

    def fetches() -> int:
        return sum(path == "/full.png" for path, _ in media_server.requests)

    async with topology(valkey, [comfyui], registry=registry(), queue_limit=2,
                        retry_after=60) as top:
        a, _ = top.api
        async with asyncio.timeout(30):  # the worker publishes its node definitions
            while "lanczos" not in (await a.get("/openapi.json")).text:
                await asyncio.sleep(0.2)
        held = []
        for blurs in (12, 2):  # one running, one waiting: the queue holds its limit
            r = await a.post("/prompt", headers=ASYNC, json={"prompt": slow_graph(
                blurs=blurs, color=random.randrange(0xFFFFFF))})
            assert r.status_code == 202, r.text
            held.append(r.json()["job_id"])
        try:
            url = media_server.url("/full.png")
            first = fetches()
            r = await a.post("/prompt", json={"prompt": load_invert(url)})
            assert r.status_code == 429 and r.json()["type"] == "queue_full", r.text
            assert r.headers["retry-after"] == "60" and fetches() == first + 1
            for _ in range(3):  # refused at once now: nothing downloaded
                r = await a.post("/prompt", json={"prompt": load_invert(url)})
                assert r.status_code == 429 and r.json()["type"] == "queue_full", r.text
            assert fetches() == first + 1
            cancelled = await a.delete(f"/jobs/{held[1]}")
            assert cancelled.status_code == 200, cancelled.text
            r = await a.post("/prompt", headers=ASYNC, json={"prompt": load_invert(url)})
            assert r.status_code == 202, r.text  # room again: fetched and queued
            held.append(r.json()["job_id"])
            assert fetches() == first + 2
        finally:
            for job_id in held:
                await a.delete(f"/jobs/{job_id}")

"""Models on demand (comfyui-api's model URLs in loader inputs), `POST /download` (comfyui-api
1.18's request and response, plus a status to poll) and comfyui-api's list form of
per-request `credentials`, against the session ComfyUI.

Model-free proof that a downloaded file is used: the file lands in ComfyUI's models folder the
loader reads, ComfyUI's own `/models/<folder>` lists it, and the graph that ran names it (the
loader node is not connected to an output, so ComfyUI validates it but does not load weights).
The files come from a local file server (tests/models/file_server.py), allowed through the URL
guard by the suite's `media_allow_cidrs` (127.0.0.0/8)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings
from tests.jobs_api.live import wait_state
from tests.models.file_server import FileServer, Served
from tests.server.helpers import running
from tests.server.webhook_receiver import Receiver

pytestmark = pytest.mark.comfyui

TOKEN = "tok-" + "s3cr3t" * 4


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
async def models_api(make_settings: Callable[..., Settings], comfyui: ComfyUIProcess,
                     cache_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(models_dir=comfyui.base_dir / "models", models_cache_dir=cache_dir)
    # The tests look into models/vae whichever runs first (the suite spreads them over workers).
    (comfyui.base_dir / "models" / "vae").mkdir(parents=True, exist_ok=True)
    async with running(create_app(settings, {})) as http:
        yield http


@pytest.fixture
def model(files: FileServer, comfyui: ComfyUIProcess) -> Iterator[Callable[..., tuple[str, str]]]:
    """Serve a new model file: (its URL, its name); the files placed in vae/ are removed."""
    made: list[Path] = []

    def serve(size: int = 300_000, **misbehave: Any) -> tuple[str, str]:
        name = f"od-{uuid.uuid4().hex[:8]}.safetensors"
        files.files[f"/m/{name}"] = Served(os.urandom(size), **misbehave)
        made.append(comfyui.base_dir / "models" / "vae" / name)
        return files.url(f"/m/{name}"), name

    yield serve
    for path in made:
        path.unlink(missing_ok=True)


def loader_graph(vae: str) -> dict[str, Any]:
    """EmptyImage → SaveImage, and a VAELoader (not connected: validated, not executed)."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                     "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                    "filename_prefix": "od"}},
        "9": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
    }


async def comfy_lists(comfyui: ComfyUIProcess, folder: str) -> list[str]:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{comfyui.url}/models/{folder}")).json()


async def test_a_loader_url_is_downloaded_once_and_named(
        models_api: httpx.AsyncClient, comfyui: ComfyUIProcess, files: FileServer,
        model: Callable[..., tuple[str, str]]) -> None:
    url, name = model(delay=0.01)  # slow enough for the two requests to overlap
    served = files.files[f"/m/{name}"]
    first, second = await asyncio.gather(
        models_api.post("/prompt", json={"prompt": loader_graph(url)}),
        models_api.post("/prompt", json={"prompt": loader_graph(url)}))
    for r in (first, second):
        assert r.status_code == 200, r.text
        assert r.json()["prompt"]["9"]["inputs"]["vae_name"] == name  # the graph that ran
    assert len(served.gets) == 1  # one download for both requests
    path = comfyui.base_dir / "models" / "vae" / name
    assert path.read_bytes() == served.data
    assert name in await comfy_lists(comfyui, "vae")  # ComfyUI sees it
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    r = await models_api.post("/prompt", json={"prompt": loader_graph(url)})
    assert r.status_code == 200 and len(served.gets) == 1  # there already: not fetched again


async def test_bad_model_urls_are_4xx_naming_node_and_input(
        models_api: httpx.AsyncClient, comfyui: ComfyUIProcess, files: FileServer) -> None:
    vae = comfyui.base_dir / "models" / "vae"
    before = set(os.listdir(vae))
    cases = [
        ("http://169.254.169.254/latest/x.safetensors", 422, "url_refused"),
        (files.url("/m/..%2F..%2Fescape.safetensors"), 422, "invalid_filename"),
        (files.url("/m/missing.safetensors"), 400, "download_failed"),
    ]
    for url, status, reason in cases:
        r = await models_api.post("/prompt", json={"prompt": loader_graph(url)})
        assert r.status_code == status, r.text
        body = r.json()
        assert body["field"] == "prompt.9.inputs.vae_name" and body["reason"] == reason, body
    assert set(os.listdir(vae)) == before
    assert not (comfyui.base_dir / "escape.safetensors").exists()


async def test_a_url_refused_by_the_guard_is_not_fetched(
        make_settings: Callable[..., Settings], comfyui: ComfyUIProcess, cache_dir: Path,
        files: FileServer, model: Callable[..., tuple[str, str]]) -> None:
    url, name = model(size=1000)
    settings = make_settings(models_dir=comfyui.base_dir / "models",
                             models_cache_dir=cache_dir, media_allow_cidrs="")
    async with running(create_app(settings, {})) as http:
        r = await http.post("/prompt", json={"prompt": loader_graph(url)})
    assert r.status_code == 422 and r.json()["reason"] == "url_refused", r.text
    assert files.files[f"/m/{name}"].gets == []


async def test_download_wait_true_and_false(
        models_api: httpx.AsyncClient, comfyui: ComfyUIProcess,
        model: Callable[..., tuple[str, str]]) -> None:
    url, name = model()
    r = await models_api.post("/download", json={"url": url, "model_type": "vae",
                                                 "wait": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and body["filename"] == name
    assert body["size"] == 300_000 and body["model_type"] == "vae" and body["duration"] >= 0
    assert name in await comfy_lists(comfyui, "vae")

    url, name = model()
    r = await models_api.post("/download", json={"url": url, "model_type": "vae",
                                                 "filename": f"renamed-{name}"})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "started" and started["filename"] == f"renamed-{name}"
    async with asyncio.timeout(30):
        while (status := (await models_api.get(started["status_url"])).json())["status"] \
                == "started":
            await asyncio.sleep(0.05)
    assert status["status"] == "completed" and status["size"] == 300_000, status
    path = comfyui.base_dir / "models" / "vae" / f"renamed-{name}"
    try:
        assert path.is_file()
    finally:
        path.unlink()


async def test_download_failures_in_the_background_are_polled(
        models_api: httpx.AsyncClient, files: FileServer) -> None:
    r = await models_api.post("/download", json={"url": files.url("/m/nope.safetensors"),
                                                 "model_type": "vae"})
    assert r.status_code == 202
    async with asyncio.timeout(30):
        while (status := (await models_api.get(r.json()["status_url"])).json())["status"] \
                == "started":
            await asyncio.sleep(0.05)
    assert status["status"] == "failed" and "HTTP 404" in status["error"]
    assert (await models_api.get("/download/unknown")).status_code == 404


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"model_type": "no_such_folder"}, 422, "model_type"),
    ({"model_type": "../vae"}, 422, "model_type"),
    ({"filename": "../escape.safetensors"}, 422, "filename"),
    ({"filename": "/tmp/abs.safetensors"}, 422, "filename"),
    ({"filename": ".hidden"}, 422, "filename"),
    ({"url": "file:///etc/passwd"}, 422, "url"),
    ({"wait": True, "url": "http://127.0.0.1:9/none.safetensors"}, 400, "url"),
])
async def test_download_bad_requests_name_the_field(
        models_api: httpx.AsyncClient, files: FileServer, change: dict[str, Any],
        status: int, field: str) -> None:
    body = {"url": files.url("/m/x.safetensors"), "model_type": "vae", **change}
    r = await models_api.post("/download", json=body)
    assert r.status_code == status, r.text
    assert field in r.json()["error"], r.json()


async def test_download_refuses_a_symlink_out_of_the_folder(
        models_api: httpx.AsyncClient, comfyui: ComfyUIProcess, tmp_path: Path,
        model: Callable[..., tuple[str, str]]) -> None:
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"keep")
    url, name = model(size=100)
    link = comfyui.base_dir / "models" / "vae" / name
    link.symlink_to(outside)
    r = await models_api.post("/download", json={"url": url, "model_type": "vae", "wait": True})
    assert r.status_code == 422 and r.json()["field"] == "filename", r.text
    assert outside.read_bytes() == b"keep"


async def test_download_auth_is_sent_and_never_shown(
        models_api: httpx.AsyncClient, files: FileServer,
        model: Callable[..., tuple[str, str]], caplog: pytest.LogCaptureFixture) -> None:
    url, _ = model(size=1000)
    r = await models_api.post("/download", json={
        "url": url, "model_type": "vae", "wait": True,
        "auth": {"type": "bearer", "token": TOKEN}})
    assert r.status_code == 200, r.text
    assert files.headers[-1]["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in r.text and TOKEN not in caplog.text

    r = await models_api.post("/download", json={
        "url": url, "model_type": "vae", "auth": {"type": "bearer"}})
    assert r.status_code == 422


async def test_credentials_list_form_for_model_and_media_urls(
        models_api: httpx.AsyncClient, files: FileServer, comfyui: ComfyUIProcess,
        model: Callable[..., tuple[str, str]], caplog: pytest.LogCaptureFixture) -> None:
    url, name = model(size=1000)
    credentials = [
        {"url_pattern": files.url("/m/**"),
         "auth": {"type": "basic", "username": "u", "password": TOKEN}},
        {"url_pattern": files.url("/**"), "auth": {"type": "header", "header_name": "X-Key",
                                                   "header_value": "other"}},
        {"url_pattern": files.url("/**"), "auth": {"type": "bearer", "token": "loses"}},
    ]
    r = await models_api.post("/prompt", headers={"Prefer": "respond-async"},
                              json={"prompt": loader_graph(url), "credentials": credentials})
    assert r.status_code == 202, r.text
    job = await wait_state(models_api, r.json()["job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    sent = files.headers[-1]
    assert sent["Authorization"] == "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode()
    assert sent["X-Key"] == "other"  # every matching entry applies (first wins per header)
    for text in (r.text, str(job), caplog.text):
        assert TOKEN not in text
    assert (comfyui.base_dir / "models" / "vae" / name).is_file()

    bad = [{"url_pattern": "https://x/**", "auth": {"type": "s3", "secret_access_key": TOKEN}}]
    r = await models_api.post("/prompt", json={"prompt": loader_graph(url), "credentials": bad})
    assert r.status_code == 422 and TOKEN not in r.text


async def test_v2_raw_graphs_get_models_on_demand_and_media(
        models_api: httpx.AsyncClient, comfyui: ComfyUIProcess, files: FileServer,
        model: Callable[..., tuple[str, str]]) -> None:
    url, name = model(size=1000)
    r = await models_api.post("/api/v2/jobs", json={"workflow": loader_graph(url)})
    assert r.status_code in (200, 201, 202), r.text
    assert (comfyui.base_dir / "models" / "vae" / name).is_file()
    ran = (await models_api.get(f"/api/v2/jobs/{r.json()['id']}/workflow")).json()
    assert name in str(ran) and url not in str(ran)

    r = await models_api.post("/api/v2/jobs", json={
        "workflow": loader_graph("http://169.254.169.254/x.safetensors")})
    error = r.json()["error"]  # the v2 envelope: {code, message, details}
    assert r.status_code == 422 and error["details"]["field"] == "workflow.9.inputs.vae_name"
    assert "workflow.9.inputs.vae_name" in error["message"]
    assert "prompt." not in r.text  # the v2 body has no `prompt`: errors name `workflow`

    r = await models_api.post("/api/v2/jobs", json={"workflow": {"1": {
        "class_type": "LoadImage", "inputs": {"image": "data:image/png;base64,bm90IGEgcG5n"}}}})
    details = r.json()["error"]["details"]
    assert r.status_code == 415 and details["field"] == "workflow.1.inputs.image", r.text
    assert details["detail"][0]["loc"] == ["body", "workflow", "1", "inputs", "image"]


async def test_a_manifest_url_is_keyed_by_its_checksum_and_trusted(
        make_settings: Callable[..., Settings], comfyui: ComfyUIProcess, tmp_path: Path,
        files: FileServer, model: Callable[..., tuple[str, str]]) -> None:
    url, name = model(size=5000)
    digest = hashlib.sha256(files.files[f"/m/{name}"].data).hexdigest()
    bad_url, _ = model(size=5000, wrong=True)
    manifest = tmp_path / "models.yaml"
    manifest.write_text(yaml.safe_dump({"models": [
        {"folder": "vae", "file": name, "url": url, "sha256": digest},
        {"folder": "vae", "file": "other.safetensors", "url": bad_url,
         "sha256": hashlib.sha256(b"other").hexdigest()}]}))
    settings = make_settings(models_dir=comfyui.base_dir / "models", models_manifest=manifest,
                             models_cache_dir=tmp_path / "cache", media_allow_cidrs="")
    async with running(create_app(settings, {})) as http:
        r = await http.post("/prompt", json={"prompt": loader_graph(url)})
        assert r.status_code == 200, r.text  # the operator's URL: not a user's, no guard
        assert (tmp_path / "cache" / "blobs" / f"sha256-{digest}").is_file()
        r = await http.post("/prompt", json={"prompt": loader_graph(bad_url)})
        assert r.status_code == 400 and "sha256" in r.json()["error"], r.text  # served wrong


async def test_downloads_are_system_events(
        make_settings: Callable[..., Settings], comfyui: ComfyUIProcess, cache_dir: Path,
        receiver: Receiver, model: Callable[..., tuple[str, str]]) -> None:
    url, name = model(size=2000)
    settings = make_settings(models_dir=comfyui.base_dir / "models", models_cache_dir=cache_dir,
                             system_webhook_url=receiver.url,
                             system_webhook_events="file_downloaded", webhook_allow_cidrs="")
    async with running(create_app(settings, {})) as http:
        r = await http.post("/download", json={"url": url + "?sig=secret-sig",
                                               "model_type": "vae", "wait": True})
        assert r.status_code == 200, r.text
        await receiver.wait_for(1, 30)
    [event] = receiver.events()
    assert event["event"] == "storage.file_downloaded"
    assert event["data"] == {"url": url, "folder": "vae", "filename": name, "size": 2000}
    assert "secret-sig" not in str(receiver.received) and "secret-sig" not in r.text


async def test_a_hugging_face_url(models_api: httpx.AsyncClient, comfyui: ComfyUIProcess,
                                  files: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"hf-{uuid.uuid4().hex[:8]}.safetensors"
    files.files[f"/org/repo/resolve/v1/{name}"] = Served(os.urandom(2000))
    monkeypatch.setenv("HF_ENDPOINT", files.url(""))  # the Hub's API, served locally
    monkeypatch.setenv("HF_TOKEN", "hf_server_only_token")  # not for a caller's repo
    path = comfyui.base_dir / "models" / "loras" / name
    seen = len(files.headers)  # the module's file server: other tests' requests come first
    try:
        r = await models_api.post("/download", json={
            "url": f"hf://org/repo@v1/{name}", "model_type": "loras", "wait": True})
        assert r.status_code == 200 and r.json()["filename"] == name, r.text
        mine = files.headers[seen:]
        assert mine and not any("Authorization" in h for h in mine)
        assert path.is_file() and name in await comfy_lists(comfyui, "loras")
    finally:
        path.unlink(missing_ok=True)

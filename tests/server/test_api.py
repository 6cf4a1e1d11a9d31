"""The HTTP API against the real ComfyUI: contract, outputs, errors, live choices, docs."""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from server.app import create_app
from server.settings import Settings
from tests.comfyui_testing import rgb, slow_graph

from .helpers import running
from .server_workflows import registry

pytestmark = pytest.mark.comfyui


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 1 for x, y in zip(a, b, strict=True))


def png(color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


async def test_probes_and_models(api: httpx.AsyncClient) -> None:
    health = await api.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    ready = await api.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    models = (await api.get("/models")).json()
    assert "checkpoints" in models and "loras" in models


async def test_workflow_sync_contract(api: httpx.AsyncClient, comfyui: ComfyUIProcess) -> None:
    color = random.randrange(0xFFFFFF)
    r = await api.post("/workflow/test/invert",
                       json={"input": {"color": color, "size": 8}, "id": "Req 1/../x"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "prompt", "images", "filenames", "input", "stats", "outputs"}
    assert body["id"] == "Req 1/../x"
    assert body["input"]["color"] == color and isinstance(body["input"]["seed"], int)
    img = decode(body["images"][0])
    assert img.size == (8, 8)
    assert near(img.convert("RGB").getpixel((0, 0)), tuple(255 - c for c in rgb(color)))
    assert body["filenames"] == ["Req_1_x_00001_.png"] or body["filenames"][0].startswith("Req_1_x_")
    assert body["prompt"]["3"]["inputs"]["filename_prefix"] == "Req_1_x"
    assert body["outputs"]["3"]["files"][0]["index"] == 0
    assert body["stats"]["comfy_round_trip"] >= 0
    # delivered files are removed from ComfyUI's output folder
    assert not (comfyui.base_dir / "output" / body["filenames"][0]).exists()


async def test_subfolder_text_and_temp_outputs_are_all_returned(api: httpx.AsyncClient) -> None:
    r = await api.post("/workflow/test/subfolder", json={"input": {"color": 5}})
    files = r.json()["outputs"]["3"]["files"]
    assert files[0]["subfolder"] == "sub/dir" and len(r.json()["images"]) == 1

    r = await api.post("/workflow/test/mixed", json={"input": {"color": 0x00FF00}})
    out = r.json()["outputs"]
    assert out["4"]["files"][0]["type"] == "temp"
    assert out["5"]["values"] == {"text": ["hello text"]}
    assert out["5"]["class_type"] == "PreviewAny"
    assert len(r.json()["images"]) == 2


async def test_keep_outputs_leaves_files(make_settings: Callable[..., Settings],
                                         comfyui: ComfyUIProcess) -> None:
    async with running(create_app(make_settings(keep_outputs=True), registry())) as http:
        r = await http.post("/workflow/test/subfolder", json={"input": {"color": 7}})
        f = r.json()["outputs"]["3"]["files"][0]
        assert (comfyui.base_dir / "output" / f["subfolder"] / f["comfyui_filename"]).exists()


async def test_convert_output_honours_options(api: httpx.AsyncClient) -> None:
    def run(convert: dict) -> bytes:
        return convert

    big = {"color": 0x336699, "size": 256}
    lo = await api.post("/workflow/test/invert", json={
        "input": big, "convert_output": {"format": "jpeg", "options": {"quality": 5}}})
    hi = await api.post("/workflow/test/invert", json={
        "input": big, "convert_output": {"format": "jpeg", "options": {"quality": 95}}})
    assert lo.json()["filenames"][0].endswith(".jpg")
    assert decode(lo.json()["images"][0]).format == "JPEG"
    assert lo.json()["outputs"]["3"]["files"][0]["content_type"] == "image/jpeg"
    assert len(base64.b64decode(lo.json()["images"][0])) < len(
        base64.b64decode(hi.json()["images"][0]))
    webp = await api.post("/workflow/test/invert", json={
        "input": big, "convert_output": {"format": "webp", "options": {"lossless": True}}})
    img = decode(webp.json()["images"][0])
    assert img.format == "WEBP" and near(img.convert("RGB").getpixel((9, 9)),
                                         tuple(255 - c for c in rgb(0x336699)))
    bad = await api.post("/workflow/test/invert", json={
        "input": big, "convert_output": {"format": "gif"}})
    assert bad.status_code == 422


async def test_bad_input_is_422_with_field_paths(api: httpx.AsyncClient) -> None:
    r = await api.post("/workflow/test/invert", json={"input": {"size": 0, "nope": 1}})
    assert r.status_code == 422
    body = r.json()
    assert body["type"] == "invalid_input"
    locs = {tuple(d["loc"]) for d in body["detail"]}
    assert ("body", "input", "size") in locs and ("body", "input", "nope") in locs
    assert "input.size" in body["error"]
    r = await api.post("/workflow/test/invert", json={"inputs": {}})
    assert r.status_code == 422 and ("body", "input") in {tuple(d["loc"]) for d in r.json()["detail"]}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
async def test_a_non_finite_number_is_422_not_500(api: httpx.AsyncClient, value: str) -> None:
    """JSON has no NaN, but Python's parser (FastAPI's) reads one: the 422 that echoes it must
    still be JSON."""
    r = await api.post("/workflow/test/invert", content=f'{{"input": {{"size": {value}}}}}',
                       headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert [(d["loc"], d["input"]) for d in detail] == [(["body", "input", "size"], value)]


async def test_live_choice_is_checked(api: httpx.AsyncClient) -> None:
    r = await api.post("/workflow/test/scale",
                       json={"input": {"image": "x.png", "upscale_method": "magic"}})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "input", "upscale_method"]
    assert "bilinear" in detail["ctx"]["allowed"] and "'magic'" in detail["msg"]


async def test_media_upload_then_load_and_scale(api: httpx.AsyncClient) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    r = await api.post("/workflow/test/scale", json={"input": {"image": data_uri}})
    assert r.status_code == 200, r.text
    img = decode(r.json()["images"][0])
    assert img.size == (32, 24) and img.convert("RGB").getpixel((3, 3)) == (10, 200, 30)
    assert r.json()["input"]["image"].startswith("comfygen/")
    r = await api.post("/workflow/test/scale", json={
        "input": {"image": base64.b64encode(png(size=(40, 40))).decode(), "width": 8}})
    assert decode(r.json()["images"][0]).size == (8, 24)


async def test_execution_error_names_node_type_and_message(
        api: httpx.AsyncClient, comfyui: ComfyUIProcess) -> None:
    # a damaged file put into ComfyUI's input folder directly (the API refuses to upload it)
    httpx.post(comfyui.url + "/upload/image", files={"image": ("broken.png", b"not an image")},
               data={"overwrite": "true"}).raise_for_status()
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "broken.png"}},
             "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    r = await api.post("/prompt", json={"prompt": graph})
    assert r.status_code == 500
    body = r.json()
    assert body["type"] == "execution_error"
    assert body["node_id"] == "1" and body["node_type"] == "LoadImage"
    assert body["exception_message"] and body["exception_type"]


async def test_comfyui_node_errors_are_400_with_node_and_input(api: httpx.AsyncClient) -> None:
    graph = {"1": {"class_type": "EmptyImage",
                   "inputs": {"width": 10**9, "height": 8, "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "p"}}}
    r = await api.post("/prompt", json={"prompt": graph})
    assert r.status_code == 400
    err = r.json()["node_errors"][0]
    assert (err["node"], err["input"], err["type"]) == ("1", "width", "value_bigger_than_max")
    assert "node 1 (EmptyImage) input 'width'" in r.json()["error"]
    r = await api.post("/prompt", json={"prompt": {"1": {"class_type": "Nope", "inputs": {}}}})
    assert r.status_code == 400 and r.json()["comfyui_error"] == "invalid_prompt"


async def test_raw_prompt_returns_every_output(api: httpx.AsyncClient) -> None:
    graph = {"1": {"class_type": "EmptyImage",
                   "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0xFF0000}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "a/b"}},
             "3": {"class_type": "PreviewAny", "inputs": {"source": "t"}}}
    r = await api.post("/prompt", json={"prompt": graph, "id": "raw-1"})
    body = r.json()
    assert r.status_code == 200 and body["filenames"][0].startswith("raw-1_")
    assert body["outputs"]["3"]["values"]["text"] == ["t"]
    assert "input" not in body


async def test_missing_model_files_are_named(api: httpx.AsyncClient) -> None:
    """The seed's curl line against the SD3.5 endpoint, with no model files installed."""
    r = await api.post("/workflow/sd3.5-medium/txt2img", json={"input": {
        "prompt": "a leafy green spaceship from the distant future", "steps": 20}})
    assert r.status_code == 424
    body = r.json()
    assert body["type"] == "missing_model"
    assert {(m["file"], m["folder"]) for m in body["missing_models"]} == {
        ("sd3.5_medium.safetensors", "checkpoints"), ("clip_g.safetensors", "text_encoders"),
        ("clip_l.safetensors", "text_encoders"), ("t5xxl_fp8_e4m3fn.safetensors",
                                                   "text_encoders")}
    assert "sd3.5_medium.safetensors (models/checkpoints)" in body["error"]


async def test_models_added_later_are_accepted_and_in_openapi(
        api: httpx.AsyncClient, comfyui: ComfyUIProcess) -> None:
    doc = (await api.get("/openapi.json")).json()
    assert "enum" not in _input_schema(doc, "/workflow/test/ckpt")["properties"]["checkpoint"]
    r = await api.post("/workflow/test/ckpt", json={"input": {"checkpoint": "new.safetensors"}})
    assert r.status_code == 422 and "models/checkpoints" in r.json()["detail"][0]["msg"]
    path: Path = comfyui.base_dir / "models" / "checkpoints" / "new.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really a checkpoint")
    try:
        r = await api.post("/workflow/test/ckpt", json={"input": {"checkpoint": "new.safetensors"}})
        assert r.status_code == 500 and r.json()["node_type"] == "CheckpointLoaderSimple"
        doc = (await api.get("/openapi.json")).json()
        prop = _input_schema(doc, "/workflow/test/ckpt")["properties"]["checkpoint"]
        assert prop["enum"] == ["new.safetensors"]
        assert "new.safetensors" in (await api.get("/models")).json()["checkpoints"]
    finally:
        path.unlink()


def _input_schema(doc: dict, path: str) -> dict:
    def resolve(s: dict) -> dict:
        while "$ref" in s:
            s = doc["components"]["schemas"][s["$ref"].rsplit("/", 1)[-1]]
        return s
    body = resolve(doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
                   ["schema"])
    return resolve(body["properties"]["input"])


async def test_openapi_and_docs(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    op = doc["paths"]["/workflow/sd3.5-medium/txt2img"]["post"]
    assert op["summary"] == "txt2img" and "Stable Diffusion 3.5" in op["description"]
    example = op["requestBody"]["content"]["application/json"]["examples"]["default"]["value"]
    assert example == {"input": {"prompt": "a leafy green spaceship from the distant future"}}
    props = _input_schema(doc, "/workflow/sd3.5-medium/txt2img")["properties"]
    assert "dpmpp_2m" in props["sampler_name"]["enum"]
    assert props["steps"]["description"] == "Number of sampling steps"
    assert {"/health", "/ready", "/models", "/prompt"} <= set(doc["paths"])
    docs = await api.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text


async def test_timeout_cancels_the_comfyui_job(make_settings: Callable[..., Settings]) -> None:
    async with running(create_app(make_settings(request_timeout=0.5), registry())) as http:
        r = await http.post("/prompt", json={"prompt": slow_graph(blurs=6,
                                                                  color=random.randrange(99999))})
        assert r.status_code == 504
        assert r.json()["type"] == "timeout"
        assert r.json()["cancelled"] in ("interrupted", "deleted")
        q = httpx.get(make_settings().comfyui_url + "/queue").json()
        assert q["queue_pending"] == []


async def test_unavailable_comfyui_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(comfyui_url=f"http://127.0.0.1:{free_port()}", startup_timeout=60,
                        jobs_db=tmp_path / "jobs.sqlite3")
    async with running(create_app(settings, registry()), ready=False) as http:
        r = await http.post("/workflow/test/invert", json={"input": {}})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["type"] == "comfyui_unavailable"
        assert (await http.get("/ready")).status_code == 503
        assert (await http.get("/health")).status_code == 503


# -- outputs: read from ComfyUI's folder when reachable, through /view otherwise --------------


@pytest.mark.parametrize("reachable", [True, False], ids=["disk", "view"])
async def test_outputs_come_from_disk_or_view(make_settings: Callable[..., Settings],
                                              comfyui: ComfyUIProcess, reachable: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folders = {} if reachable else {"comfyui_output_dir": None, "comfyui_temp_dir": None}
    app = create_app(make_settings(**folders), registry())
    async with running(app) as http:
        client = app.state.supervisor.client
        viewed: list[str] = []
        fetch = client.fetch

        async def spy(file):  # type: ignore[no-untyped-def]
            viewed.append(file.filename)
            return await fetch(file)

        monkeypatch.setattr(client, "fetch", spy)
        r = await http.post("/workflow/test/mixed", json={"input": {"color": 0x3366CC}})
        assert r.status_code == 200, r.text
        body = r.json()
    assert len(body["images"]) == 2  # one output, one temp file
    assert all(decode(b).format == "PNG" for b in body["images"])
    files = [f for node in body["outputs"].values() for f in node["files"]]
    assert sorted(f["type"] for f in files) == ["output", "temp"]
    assert viewed == ([] if reachable else [f["comfyui_filename"] for f in files])
    for f in files:  # deleted where reachable; left in ComfyUI otherwise (then tidied here)
        path = comfyui.base_dir / f["type"] / f["subfolder"] / f["comfyui_filename"]
        assert path.exists() is not reachable
        path.unlink(missing_ok=True)


async def test_output_names_leading_out_of_the_folder_are_not_read(
        make_settings: Callable[..., Settings], comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    from comfygen.comfy.errors import ComfyHTTPError
    from comfygen.comfy.files import local_path, read_local
    from comfygen.comfy.models import OutputFile

    root = tmp_path / "output"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.png").write_bytes(b"inside")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    (root / "link.png").symlink_to(tmp_path / "secret.txt")
    roots = {"output": root}

    def out(filename: str, subfolder: str = "") -> OutputFile:
        return OutputFile(node="1", kind="images", filename=filename, subfolder=subfolder)

    assert await read_local(out("ok.png", "sub"), roots) == b"inside"
    assert await read_local(out("ok.png", "sub/../sub"), roots) == b"inside"
    for bad in (out("secret.txt", ".."), out("../secret.txt"), out("secret.txt", "sub/../.."),
                out(str(tmp_path / "secret.txt")), out("x", str(tmp_path)), out("link.png"),
                out("", ""), out("missing.png")):
        assert await read_local(bad, roots) is None, bad
    assert local_path(out("ok.png", "sub"), {"temp": root}) is None  # another folder's type


    # the runner falls back to /view, where ComfyUI refuses the same names
    (comfyui.base_dir / "secret.txt").write_bytes(b"outside")
    try:
        app = create_app(make_settings(), registry())
        async with running(app):
            runner = app.state.runner
            with pytest.raises(ComfyHTTPError):
                await runner.fetch(out("secret.txt", ".."))
    finally:
        (comfyui.base_dir / "secret.txt").unlink()


async def test_a_large_output_is_read_whole_by_a_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import threading

    from comfygen.comfy import files
    from comfygen.comfy.models import OutputFile

    data = os.urandom(3 << 20)
    (tmp_path / "big.png").write_bytes(data)
    (tmp_path / "small.png").write_bytes(b"small")
    monkeypatch.setattr(files, "INLINE_READ_LIMIT", 1 << 20)
    readers: list[str] = []
    real = files._read_and_close

    def spy(fd: int, size: int) -> bytes:
        readers.append(threading.current_thread().name)
        return real(fd, size)

    monkeypatch.setattr(files, "_read_and_close", spy)
    roots = {"output": tmp_path}
    big = OutputFile(node="1", kind="images", filename="big.png")
    small = OutputFile(node="1", kind="images", filename="small.png")
    assert await files.read_local(big, roots) == data
    assert await files.read_local(small, roots) == b"small"
    main = threading.current_thread().name
    assert readers[0] != main and readers[1] == main  # the large one off the event loop
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        await files.read_local(big, roots)
    assert len(os.listdir("/proc/self/fd")) == before  # every descriptor closed


def test_a_file_that_changed_size_is_read_to_its_end(tmp_path: Path) -> None:
    import os

    from comfygen.comfy.files import _read_and_close

    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    for stale_size in (0, 3, 10, 64):  # grew since it was measured, same, shrank
        assert _read_and_close(os.open(path, os.O_RDONLY), stale_size) == b"0123456789"

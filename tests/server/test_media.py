"""Media inputs against the real ComfyUI: base64, data URI, URL (guarded), multipart; refusals."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings

from .helpers import running
from .media_server import MediaServer
from .server_workflows import registry

pytestmark = pytest.mark.comfyui
TOKEN = "Bearer media-token-4f1d0c9e"


def png(color: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def scaled(body: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).convert("RGB")


@pytest.fixture(scope="module")
def media_server() -> AsyncIterator[MediaServer]:
    server = MediaServer("127.0.0.2").start()
    server.routes["/img.png"] = lambda h: (200, {"Content-Type": "image/png"}, png((1, 2, 3)))
    server.routes["/private.png"] = lambda h: (
        (200, {}, png((40, 50, 60))) if h.get("authorization") == TOKEN else (403, {}, b"no"))
    for name, target in {"to-loopback": "http://127.0.0.1:9/x.png",
                         "to-private": "http://10.1.2.3/x.png",
                         "to-metadata": "http://169.254.169.254/latest/meta-data/"}.items():
        server.routes[f"/{name}"] = lambda h, t=target: (302, {"Location": t}, b"")
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def media_api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """Only 127.0.0.2 is allow-listed, so 127.0.0.1 stays refused; small limits."""
    settings = make_settings(media_allow_cidrs="127.0.0.2/32", media_max_bytes=100_000,
                             media_max_pixels=250_000)
    async with running(create_app(settings, registry())) as http:
        yield http


async def test_base64_data_uri_and_url(media_api: httpx.AsyncClient,
                                       media_server: MediaServer) -> None:
    plain = base64.b64encode(png((200, 10, 10))).decode()
    r = await media_api.post("/workflow/test/scale", json={"input": {"image": plain}})
    assert r.status_code == 200, r.text
    assert scaled(r.json()).getpixel((2, 2)) == (200, 10, 10)
    assert r.json()["input"]["image"].startswith("comfygen/")

    uri = "data:image/png;base64," + base64.b64encode(png((5, 6, 7))).decode()
    r = await media_api.post("/workflow/test/scale", json={"input": {"image": uri, "width": 10}})
    assert r.status_code == 200 and scaled(r.json()).size == (10, 24)

    r = await media_api.post("/workflow/test/scale", json={
        "input": {"image": media_server.url("/img.png")}})
    assert r.status_code == 200, r.text
    assert scaled(r.json()).getpixel((0, 0)) == (1, 2, 3)


async def test_uploaded_media_do_not_stay_in_comfyui(media_api: httpx.AsyncClient,
                                                     comfyui: ComfyUIProcess) -> None:
    plain = base64.b64encode(png((9, 9, 9))).decode()
    r = await media_api.post("/workflow/test/scale", json={"input": {"image": plain}})
    assert r.status_code == 200, r.text
    name = r.json()["input"]["image"]  # the upload's name in ComfyUI's input folder
    assert name.startswith("comfygen/")
    assert not (comfyui.base_dir / "input" / name).exists()


async def test_url_credentials_are_sent_and_never_echoed(media_api: httpx.AsyncClient,
                                                         media_server: MediaServer) -> None:
    url = media_server.url("/private.png?sig=presigned-secret")
    r = await media_api.post("/workflow/test/scale", json={"input": {"image": url}})
    assert r.status_code == 422 and r.json()["reason"] == "http_status"
    assert "presigned-secret" not in r.text  # the query is redacted from messages
    pattern = media_server.url("/*").replace("/*", "") + "/private*"
    r = await media_api.post("/workflow/test/scale", json={
        "input": {"image": url}, "credentials": {pattern: {"Authorization": TOKEN}}})
    assert r.status_code == 200, r.text
    assert scaled(r.json()).getpixel((0, 0)) == (40, 50, 60)
    assert media_server.requests[-1][1]["authorization"] == TOKEN
    assert TOKEN.split()[1] not in r.text and "presigned-secret" not in r.text


async def test_multipart_upload_json_part_and_form_fields(media_api: httpx.AsyncClient) -> None:
    files = {"image": ("photo.png", png((90, 80, 70)), "image/png")}
    r = await media_api.post("/workflow/test/scale", files=files, data={
        "request": json.dumps({"input": {"width": 12}, "id": "mp-1"})})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "mp-1" and scaled(body).size == (12, 24)
    assert scaled(body).getpixel((1, 1)) == (90, 80, 70)
    assert body["input"]["image"].startswith("comfygen/mp-1-image-")  # a generated name

    r = await media_api.post("/workflow/test/scale", files={
        "input.image": ("../../etc/evil.png", png((1, 1, 1)), "application/octet-stream")},
        data={"input.width": "7", "input.height": "5", "id": "mp-2"})
    assert r.status_code == 200, r.text
    assert scaled(r.json()).size == (7, 5) and "evil" not in r.json()["input"]["image"]

    r = await media_api.post("/workflow/test/scale", files={
        "image": ("x.txt", b"plain text, not an image", "image/png")})
    assert r.status_code == 415 and r.json()["field"] == "input.image"
    r = await media_api.post("/workflow/test/scale", files={
        "other": ("x.png", png(), "image/png")})
    assert r.status_code == 400 and "not a media field" in r.json()["error"]
    r = await media_api.post("/workflow/test/scale", content=b"--x\r\nbroken",
                             headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and r.json()["type"] == "invalid_multipart"


def multipart(*parts: bytes, boundary: bytes = b"x", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


@pytest.mark.parametrize(("body", "ctype", "message", "loc"), [
    (multipart(field("width", b"3")), "multipart/form-data", "no boundary", None),
    (multipart(field("width", b"3"), close=False), None, "closing boundary", None),
    (b"--x--\r\n", None, "closing boundary", None),
    (b"preamble\r\n" + multipart(field("width", b"3")), None, "invalid multipart data", None),
    (multipart(b"Content-Disposition: form-data\r\n\r\n3"), None, '"name"', None),
    (multipart(field("", b"3")), None, "has no name", None),
    (multipart(field("prompt", "café".encode("latin-1"))), None, "not UTF-8", "prompt"),
    (multipart(field("request", b"{not json")), None, "not valid JSON", "request"),
    (multipart(field("input", b"[1]")), None, "must be a JSON object", "input"),
    (multipart(*(field(f"f{i}", b"1") for i in range(201))), None, "Too many fields", None),
    (multipart(*(field(f"f{i}", b"1") for i in range(101)), *(
        b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nx'
        for _ in range(100))), None, "more than 200", None),
])
async def test_malformed_multipart_is_400(media_api: httpx.AsyncClient, body: bytes,
                                          ctype: str | None, message: str,
                                          loc: str | None) -> None:
    r = await media_api.post("/workflow/test/scale", content=body, headers={
        "content-type": ctype or "multipart/form-data; boundary=x"})
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["type"] == "invalid_multipart" and message.lower() in answer["error"].lower()
    assert answer["detail"][0]["loc"] == ["body", *([loc] if loc else [])]


async def test_multipart_utf8_text_is_kept(media_api: httpx.AsyncClient) -> None:
    files = {"image": ("photo.png", png((90, 80, 70)), "image/png")}
    r = await media_api.post("/workflow/test/scale", files=files,
                             data={"width": "12", "id": "mp-é-1"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "mp-é-1"


async def test_guard_refuses_internal_addresses_before_connecting(
        media_api: httpx.AsyncClient, media_server: MediaServer) -> None:
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    listener = await asyncio.start_server(count, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        refused = [f"http://127.0.0.1:{port}/x.png", "http://10.0.0.7/x.png",
                   "http://169.254.169.254/latest/meta-data/", f"http://2130706433:{port}/",
                   "http://[::ffff:127.0.0.1]/x", media_server.url("/to-loopback"),
                   media_server.url("/to-private"), media_server.url("/to-metadata"),
                   "file:///etc/passwd", "ftp://127.0.0.2/x"]
        for url in refused:
            r = await media_api.post("/workflow/test/scale", json={"input": {"image": url}})
            assert r.status_code == 422, (url, r.text)
            body = r.json()
            assert body["field"] == "input.image" and body["detail"][0]["loc"] == [
                "body", "input", "image"], body
            assert body["reason"] in ("url_refused", "path_not_allowed", "unsupported_url"), body
    finally:
        listener.close()
    assert connections == 0
    redirects = [p for p, _ in media_server.requests if p.startswith("/to-")]
    assert sorted(redirects) == ["/to-loopback", "/to-metadata", "/to-private"]


async def test_oversize_and_non_image_are_4xx(media_api: httpx.AsyncClient) -> None:
    big = Image.frombytes("RGB", (200, 200), bytes(range(256)) * 468 + bytes(192))
    buf = io.BytesIO()
    big.save(buf, "PNG", compress_level=0)
    noisy = buf.getvalue()[:60_000]  # a PNG cut short
    r = await media_api.post("/workflow/test/scale", json={
        "input": {"image": base64.b64encode(buf.getvalue()).decode()}})
    assert r.status_code == 413 and r.json()["reason"] == "too_large"
    r = await media_api.post("/workflow/test/scale", json={
        "input": {"image": base64.b64encode(png(size=(600, 600))).decode()}})
    assert r.status_code == 413 and r.json()["reason"] == "too_many_pixels"
    r = await media_api.post("/workflow/test/scale", json={
        "input": {"image": base64.b64encode(b"%PDF-1.4 not an image at all").decode()}})
    assert r.status_code == 415 and "input.image" in r.json()["error"]
    r = await media_api.post("/workflow/test/scale", json={
        "input": {"image": base64.b64encode(noisy[: len(noisy) // 2]).decode()}})
    assert r.status_code == 422 and r.json()["reason"] == "invalid_image"
    r = await media_api.post("/workflow/test/scale", json={"input": {"image": "not base64!"}})
    assert r.status_code == 422 and r.json()["reason"] == "invalid_base64"


async def test_path_like_values_never_reach_comfyui(media_api: httpx.AsyncClient,
                                                    comfyui: ComfyUIProcess) -> None:
    values = ["../../../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini",
              "C:\\Windows\\win.ini", "~/.ssh/id_rsa", "file:///etc/passwd",
              "comfygen/../../secret.png", "example.png", "/proc/self/environ"]
    async with httpx.AsyncClient(base_url=comfyui.url) as comfy:
        before = set((await comfy.get("/history", params={"max_items": 10000})).json())
    for value in values:
        r = await media_api.post("/workflow/test/scale", json={"input": {"image": value}})
        assert r.status_code in (415, 422), (value, r.text)  # 415: decoded as base64, not a path
        assert r.json()["field"] == "input.image"
    async with httpx.AsyncClient(base_url=comfyui.url) as comfy:
        after = (await comfy.get("/history", params={"max_items": 10000})).json()
        queue = (await comfy.get("/queue")).json()
    # Only this test's requests count: other tests legitimately run graphs naming files.
    new = json.dumps({k: v for k, v in after.items() if k not in before})
    for value in values:
        assert json.dumps(value)[1:-1] not in new, value
    assert queue["queue_running"] == [] and queue["queue_pending"] == []

"""API key, body size limit, CORS, and no secret in any response, webhook, job record or log line."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from server.app import create_app
from server.settings import Settings

from .helpers import SECRET, running
from .media_server import MediaServer
from .server_workflows import registry
from .webhook_receiver import Receiver

pytestmark = pytest.mark.comfyui
API_KEY = "api-key-7Hq2mZ0pL"
SETTINGS_TOKEN = "settings-token-Vb81Kx"
REQUEST_TOKEN = "request-token-Qw55Er"
KEY = {"Salad-Api-Key": API_KEY}
ORIGIN = "https://app.example"


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 99, 199)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def files() -> MediaServer:
    server = MediaServer("127.0.0.2").start()
    for path, token in (("/a.png", SETTINGS_TOKEN), ("/b.png", REQUEST_TOKEN)):
        server.routes[path] = lambda h, t=token: (
            (200, {}, png()) if h.get("authorization") == f"Bearer {t}" else (401, {}, b"no"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def guarded(make_settings: Callable[..., Settings], files: MediaServer,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        api_key=API_KEY, api_key_header="Salad-Api-Key", max_body_size=50_000,
        cors_allow_origins=[ORIGIN], media_allow_cidrs="127.0.0.2/32",
        media_url_credentials={files.url("/a.png"): {"Authorization": f"Bearer {SETTINGS_TOKEN}"}},
        jobs_db=tmp_path_factory.mktemp("jobs") / "jobs.sqlite3")
    async with running(create_app(settings, registry()), ready=False) as http:
        http.headers.update(KEY)
        from .helpers import wait_ready
        await wait_ready(http)
        http.settings = settings  # type: ignore[attr-defined]
        yield http


async def test_api_key(guarded: httpx.AsyncClient) -> None:
    body = {"input": {"size": 4}}
    for headers in ({}, {"Salad-Api-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        guarded.headers.pop("Salad-Api-Key", None)
        r = await guarded.post("/workflow/test/invert", json=body, headers=headers)
        assert r.status_code == 401 and r.json()["type"] == "unauthorized", headers
        assert "Salad-Api-Key" in r.json()["error"] and API_KEY not in r.text
        assert (await guarded.get("/jobs/x", headers=headers)).status_code == 401
    assert (await guarded.get("/health")).status_code == 200
    assert (await guarded.get("/ready")).status_code == 200
    assert (await guarded.get("/openapi.json")).status_code == 200
    r = await guarded.post("/workflow/test/invert", json=body,
                           headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200
    guarded.headers.update(KEY)
    assert (await guarded.post("/workflow/test/invert", json=body)).status_code == 200
    doc = (await guarded.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "Salad-Api-Key"


async def test_body_size_limit(guarded: httpx.AsyncClient) -> None:
    big = {"input": {"size": 4}, "id": "x" * 60_000}
    r = await guarded.post("/workflow/test/invert", json=big)
    assert r.status_code == 413 and r.json()["type"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"input": {}, "id": "'
        for _ in range(20):
            yield b"y" * 5000
        yield b'"}'

    r = await guarded.post("/workflow/test/invert", content=chunks(),
                           headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["type"] == "body_too_large"
    r = await guarded.post("/workflow/test/scale", files={"image": ("a.png", b"\x89PNG" * 20_000)})
    assert r.status_code == 413


async def test_cors(guarded: httpx.AsyncClient) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "salad-api-key,content-type,prefer"}
    guarded.headers.pop("Salad-Api-Key", None)
    try:
        r = await guarded.options("/workflow/test/invert", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in r.headers["access-control-allow-methods"]
        r = await guarded.post("/workflow/test/invert", json={}, headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
        r = await guarded.options("/workflow/test/invert",
                                  headers={**preflight, "Origin": "https://evil.example"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    finally:
        guarded.headers.update(KEY)
    r = await guarded.post("/workflow/test/invert", json={"input": {"size": 4}},
                           headers={"Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_no_secret_in_responses_webhooks_jobs_or_logs(
        guarded: httpx.AsyncClient, files: MediaServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = await Receiver().start()
    seen: list[str] = []
    try:
        r = await guarded.post("/workflow/test/scale", json={"input": {"image": files.url(
            "/a.png?X-Amz-Signature=presig-Zz9")}})
        assert r.status_code == 200, r.text
        seen.append(r.text)
        creds = {files.url("/b.png"): {"Authorization": f"Bearer {REQUEST_TOKEN}"}}
        r = await guarded.post("/workflow/test/scale", headers={"Prefer": "respond-async"},
                               json={"input": {"image": files.url("/b.png")},
                                     "credentials": creds, "webhook_v2": receiver.url})
        assert r.status_code == 202, r.text
        seen.append(r.text)
        await receiver.wait_for(1, timeout=20)
        job = (await guarded.get(r.json()["status_url"])).json()
        assert job["state"] == "succeeded"
        seen.append(str(job))
        for bad in ({"x": {"Authorization": 12345}}, {"x": f"Bearer {REQUEST_TOKEN}"}):
            r = await guarded.post("/workflow/test/scale", json={
                "input": {"image": files.url("/b.png")}, "credentials": bad})
            assert r.status_code == 422
            seen.append(r.text)
        r = await guarded.post("/workflow/test/scale", json={"input": {"image": files.url(
            "/b.png")}, "credentials": {"http://elsewhere/*": {"Authorization": "Bearer x"}}})
        assert r.status_code == 422  # credentials for another URL are not sent
        seen.append(r.text)
    finally:
        await receiver.stop()
    assert [h.get("authorization") for p, h in files.requests[-2:]] == [
        f"Bearer {REQUEST_TOKEN}", None]
    seen += [body.decode() + str(headers) for headers, body in receiver.received]
    seen += [rec.getMessage() + str(rec.args) for rec in caplog.records] + [caplog.text]
    db: Path = guarded.settings.jobs_db  # type: ignore[attr-defined]
    stored = b"".join(p.read_bytes() for p in db.parent.glob("*") if p.is_file())
    secrets = [API_KEY, SETTINGS_TOKEN, REQUEST_TOKEN, "presig-Zz9", SECRET,
               SECRET.removeprefix("whsec_"), "12345"]
    for secret in secrets:
        assert not any(secret in text for text in seen), secret
        assert secret.encode() not in stored, secret
    assert base64.b64decode(SECRET.removeprefix("whsec_")) not in stored
    assert any("fetched http://127.0.0.2" in rec.getMessage() for rec in caplog.records)

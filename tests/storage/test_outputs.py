"""Outputs to object storage and media inputs from it, through the server against the real
ComfyUI (model-free graphs), moto's S3 server, Azurite and a loopback HTTP receiver."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import AsyncIterator

import boto3
import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from tests.jobs_api.live import wait_state
from tests.server.helpers import running, settings_for
from tests.server.server_workflows import registry

from .conftest import BUCKET, CONTAINER
from .hub import TOKEN, Hub
from .services import Receiver, free_port

pytestmark = pytest.mark.comfyui
INVERT = "/workflow/test/invert"
UPLOAD_TOKEN = "Bearer upload-token-3e4f5a6b7c"


def pixel(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").getpixel((0, 0))  # type: ignore[return-value]


def png(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def container():  # noqa: ANN201
    return BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_container_client(CONTAINER)


@pytest.fixture(scope="module")
async def api(comfyui: ComfyUIProcess, storage_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """Loopback allowed for media URLs and http_upload (the receiver), like an operator's
    allow-list; private ranges stay refused. The server's HF_TOKEN is for one repo only, and
    its storage credentials read callers' URLs only under `in/` of the bucket and container."""
    settings = settings_for(comfyui, media_allow_cidrs="127.0.0.0/8",
                            hf_token_repos="me/shared-*",
                            storage_read_allow=f"s3://{BUCKET}/in/*, az://{CONTAINER}/in/*")
    async with running(create_app(settings, registry())) as http:
        yield http


async def test_s3_output_lands_with_bytes_type_and_url(api: httpx.AsyncClient) -> None:
    r = await api.post(INVERT, json={"input": {"color": 0x102030},
                                     "s3": {"bucket": BUCKET, "prefix": "runs/"}})
    assert r.status_code == 200, r.text
    body = r.json()
    (url,) = body["images"]
    assert url == f"s3://{BUCKET}/runs/{body['filenames'][0]}"
    assert body["outputs"]["3"]["files"][0]["url"] == url
    assert "upload_time" in body["stats"]
    obj = boto3.client("s3").get_object(Bucket=BUCKET, Key=url.split("/", 3)[3])
    assert obj["ContentType"] == "image/png"
    assert pixel(obj["Body"].read()) == (0xEF, 0xDF, 0xCF)  # 0xFFFFFF - 0x102030


async def test_azure_output_after_conversion(api: httpx.AsyncClient) -> None:
    r = await api.post(INVERT, json={
        "input": {"color": 0}, "convert_output": {"format": "jpeg"},
        "azure_blob_upload": {"container": CONTAINER, "blob_prefix": "jpeg/"}})
    assert r.status_code == 200, r.text
    (url,) = r.json()["images"]
    name = r.json()["filenames"][0]
    assert name.endswith(".jpg") and url.endswith(f"/{CONTAINER}/jpeg/{name}")
    blob = container().get_blob_client(f"jpeg/{name}")
    assert blob.get_blob_properties().content_settings.content_type == "image/jpeg"
    data = blob.download_blob().readall()
    assert data[:3] == b"\xff\xd8\xff" and pixel(data)[0] > 240
    # `azure_blob` (the name) is the same block
    r = await api.post(INVERT, json={"input": {}, "azure_blob": {"container": CONTAINER}})
    assert r.status_code == 200 and r.json()["images"][0].startswith("http://127.0.0.1:")


async def test_http_upload_async_with_webhook_carries_urls(api: httpx.AsyncClient) -> None:
    receiver = Receiver()
    try:
        r = await api.post(INVERT, json={
            "input": {"color": 0x000000}, "webhook": receiver.url("/hook"),
            "credentials": {receiver.url("/up/*"): {"Authorization": UPLOAD_TOKEN}},
            "http_upload": {"url_prefix": receiver.url("/up/"), "async": True}})
        assert r.status_code == 202, r.text
        job = await wait_state(api, r.json()["job_id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        await receiver.wait_for(2)
        (put,) = [q for q in receiver.requests if q[0] == "PUT"]
        (hook,) = [q for q in receiver.requests if q[0] == "POST"]
        name = job["result"]["filenames"][0]
        assert put[1] == f"/up/{name}" and put[2]["content-type"] == "image/png"
        assert put[2]["authorization"] == UPLOAD_TOKEN  # the request's headers for the URL
        assert "authorization" not in hook[2]
        assert UPLOAD_TOKEN not in json.dumps(job) + hook[3].decode()
        assert pixel(put[3]) == (255, 255, 255)
        event = json.loads(hook[3])
        assert event["event"] == "output.complete"
        assert event["image"] == job["result"]["images"][0] == receiver.url(f"/up/{name}")
    finally:
        receiver.stop()


async def test_refused_uploads_fail_with_the_reason_and_no_secret(
        api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "not-the-secret-9f8e7d6c5b4a"
    r = await api.post(INVERT, json={"input": {}, "s3": {"bucket": BUCKET, "credentials": {
        "access_key_id": os.environ["AWS_ACCESS_KEY_ID"], "secret_access_key": secret}}})
    assert r.status_code == 502, r.text
    assert r.json()["type"] == "upload_failed" and r.json()["provider"] == "s3"
    assert "SignatureDoesNotMatch" in r.json()["error"]
    assert secret not in r.text

    key = "QmFkS2V5Rm9yVGVzdHNPbmx5MTIzNDU2Nzg5MA=="
    receiver = Receiver()
    try:
        r = await api.post(INVERT, headers={"Prefer": "respond-async"}, json={
            "input": {}, "webhook": receiver.url("/hook"),
            "azure_blob_upload": {"container": CONTAINER, "credentials": {"account_key": key}}})
        assert r.status_code == 202, r.text
        job = await wait_state(api, r.json()["job_id"], {"succeeded", "failed"})
        assert job["state"] == "failed" and job["error"]["type"] == "upload_failed"
        assert "AuthorizationFailure" in job["error"]["error"]
        await receiver.wait_for(1)
        failed = json.loads(receiver.requests[0][3])
        assert failed["event"] == "prompt.failed" and "AuthorizationFailure" in failed["error"]
        for text in (json.dumps(job), receiver.requests[0][3].decode(), caplog.text):
            assert key not in text and secret not in text
    finally:
        receiver.stop()

    closed = free_port()  # nothing listens there
    r = await api.post(INVERT, json={
        "input": {}, "http_upload": {"url_prefix": f"http://127.0.0.1:{closed}/x"}})
    assert r.status_code == 502 and "could not connect" in r.json()["error"], r.text


async def test_bad_blocks_are_refused_before_running(api: httpx.AsyncClient) -> None:
    r = await api.post(INVERT, json={"input": {}, "http_upload": {
        "url_prefix": "http://169.254.169.254/latest/"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
        "body", "http_upload", "url_prefix"], r.text
    r = await api.post(INVERT, json={"input": {}, "s3": {"bucket": BUCKET},
                                     "http_upload": {"url_prefix": "http://127.0.0.1/"}})
    assert r.status_code == 422 and "at most one upload block" in r.text
    r = await api.post(INVERT, json={"input": {}, "s3": {"bucket": BUCKET, "region": "x"}})
    assert r.status_code == 422 and "region" in r.text


async def test_media_inputs_from_s3_and_azure(api: httpx.AsyncClient) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="in/red.png", Body=png((200, 10, 10)))
    blob = container().get_blob_client("in/blue.png")
    blob.upload_blob(png((10, 10, 200)), overwrite=True)
    for url, color in ((f"s3://{BUCKET}/in/red.png", (200, 10, 10)), (blob.url, (10, 10, 200))):
        r = await api.post("/workflow/test/scale", json={"input": {"image": url}})
        assert r.status_code == 200, r.text
        assert pixel(base64.b64decode(r.json()["images"][0])) == color
    r = await api.post("/workflow/test/scale", json={"input": {"image": f"s3://{BUCKET}/in/no.png"}})
    assert r.status_code == 422 and "NoSuchKey" in r.json()["error"], r.text
    assert r.json()["detail"][0]["loc"] == ["body", "input", "image"]


async def test_storage_urls_outside_storage_read_allow_are_refused(api: httpx.AsyncClient) -> None:
    """The server's credentials can read these objects, but callers may name only `in/`: an
    object elsewhere, a dot segment that would step out of `in/`, and the same through the
    Azure blob URL, a dry run and a raw graph are all 422 naming the field; nothing is read."""
    boto3.client("s3").put_object(Bucket=BUCKET, Key="private/key.png", Body=png((1, 2, 3)))
    secret = container().get_blob_client("private/key.png")
    secret.upload_blob(png((1, 2, 3)), overwrite=True)
    refused = [(f"s3://{BUCKET}/private/key.png", "storage_not_allowed"),
               (f"az://{CONTAINER}/private/key.png", "storage_not_allowed"),
               (secret.url, "storage_not_allowed"),
               (f"s3://{BUCKET}/in/../private/key.png", "invalid_url"),
               (f"az://{CONTAINER}/in/%2E%2E/private/key.png", "invalid_url"),
               (f"s3://{BUCKET}/in", "storage_not_allowed"), (f"s3://{BUCKET}", "invalid_url")]
    for url, reason in refused:
        for path in ("/workflow/test/scale", "/workflow/test/scale/validate"):
            r = await api.post(path, json={"input": {"image": url}})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["detail"][0]["loc"] == ["body", "input", "image"], r.text
            assert r.json()["detail"][0]["type"] == reason, r.text
    r = await api.post("/prompt", json={"prompt": {
        "1": {"class_type": "LoadImage", "inputs": {"image": f"s3://{BUCKET}/private/key.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}})
    assert r.status_code == 422 and "storage_not_allowed" in r.text, r.text


async def test_hf_upload_and_hf_media_input(api: httpx.AsyncClient, hub: Hub) -> None:
    r = await api.post(INVERT, json={"input": {"color": 0xFFFFFF},
                                     "hf_upload": {"repo": "me/outputs", "directory": "gen"}})
    assert r.status_code == 200, r.text
    name = r.json()["filenames"][0]
    assert r.json()["images"] == [f"{hub.url}/me/outputs/resolve/main/gen/{name}"]
    assert pixel(hub.files[("me/outputs", "main", f"gen/{name}")]) == (0, 0, 0)
    hub.files[("me/shared-inputs", "main", "green.png")] = png((10, 200, 10))
    r = await api.post("/workflow/test/scale",
                       json={"input": {"image": "hf://me/shared-inputs/green.png"}})
    assert r.status_code == 200, r.text
    assert pixel(base64.b64decode(r.json()["images"][0])) == (10, 200, 10)


async def test_hf_media_input_outside_hf_token_repos_needs_its_own_token(
        api: httpx.AsyncClient, hub: Hub) -> None:
    """A caller's `hf://` URL of a repo the operator did not list is read without the server's
    HF_TOKEN (the Hub answers 401 for a private repo), and with the caller's own credentials."""
    hub.files[("me/private", "main", "red.png")] = png((200, 10, 10))
    r = await api.post("/workflow/test/scale", json={"input": {"image": "hf://me/private/red.png"}})
    assert r.status_code == 422 and "HTTP 401" in r.text, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "input", "image"]
    own = [{"url_pattern": f"{hub.url}/me/private/*", "auth": {"type": "bearer", "token": TOKEN}}]
    r = await api.post("/workflow/test/scale", json={
        "input": {"image": "hf://me/private/red.png"}, "credentials": own})
    assert r.status_code == 200, r.text
    assert pixel(base64.b64decode(r.json()["images"][0])) == (200, 10, 10)
    assert TOKEN not in r.text


async def test_unconfigured_providers_are_refused_before_running(
        api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from comfygen.storage import s3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING",
                 "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask for
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    s3.reset()
    try:
        for block, value in (("s3", {"bucket": BUCKET}), ("azure_blob", {"container": CONTAINER}),
                             ("hf_upload", {"repo": "me/outputs"})):
            r = await api.post(INVERT, json={"input": {}, block: value})
            assert r.status_code == 422 and r.json()["type"] == "upload_not_configured", r.text
            assert r.json()["detail"][0]["loc"][0:1] == ["body"]
    finally:
        monkeypatch.undo()
        s3.reset()


async def test_webhook_v2_completes_with_the_urls(api: httpx.AsyncClient) -> None:
    receiver = Receiver()
    try:
        r = await api.post(INVERT, json={"input": {}, "webhook_v2": receiver.url("/v2"),
                                         "s3": {"bucket": BUCKET, "prefix": "v2/"}})
        assert r.status_code == 202, r.text
        await receiver.wait_for(1)
        (method, path, headers, body) = receiver.requests[0]
        event = json.loads(body)
        assert event["type"] == "prompt.complete" and "webhook-signature" in headers
        assert event["images"] == [f"s3://{BUCKET}/v2/{event['filenames'][0]}"]
    finally:
        receiver.stop()


async def test_stored_media_keep_the_size_limit(storage_env: dict[str, str]) -> None:
    from server.media import MediaError, MediaLimits
    from server.media.stored import read_stored

    boto3.client("s3").put_object(Bucket=BUCKET, Key="in/big.bin", Body=b"\0" * 5000)
    with pytest.raises(MediaError) as info:
        await read_stored("image", f"s3://{BUCKET}/in/big.bin", MediaLimits(max_bytes=4096), 10)
    assert info.value.reason == "too_large" and info.value.status_code == 413
    with pytest.raises(MediaError) as info:
        await read_stored("image", f"s3://{BUCKET}/in/big.bin",
                          MediaLimits(allow_urls=False), 10)
    assert info.value.reason == "urls_disabled"

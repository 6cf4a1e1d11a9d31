"""The storage library against the real services: upload, ranged reads, refusals, no secrets."""

from __future__ import annotations

import os

import boto3
import pytest
from azure.storage.blob import BlobServiceClient
from pydantic import ValidationError

from comfygen import storage
from comfygen.storage import AzureBlobUpload, HfUpload, HttpUpload, S3Upload, StorageError

from .conftest import BUCKET, CONTAINER
from .hub import TOKEN, Hub
from .services import Receiver

DATA = bytes(range(256)) * 40  # 10 240 bytes


async def read(url: str, offset: int = 0) -> tuple[int | None, bytes]:
    size, chunks = await storage.stream(url, offset)
    return size, b"".join([c async for c in chunks])


async def test_s3_upload_then_ranged_reads(storage_env: dict[str, str]) -> None:
    url = await storage.upload(S3Upload(bucket=BUCKET, prefix="lib/"), "a.bin", DATA,
                               "application/x-test")
    assert url == f"s3://{BUCKET}/lib/a.bin"
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key="lib/a.bin")
    assert head["ContentType"] == "application/x-test"
    assert await read(url) == (len(DATA), DATA)
    assert await read(url, 10_000) == (len(DATA), DATA[10_000:])
    assert await read(url, len(DATA)) == (len(DATA), b"")  # resumed at the very end


async def test_s3_wrong_secret_is_refused_without_the_secret(storage_env: dict[str, str]) -> None:
    secret = "wrong-secret-5b1c0e7a9d"
    target = S3Upload.model_validate({"bucket": BUCKET, "credentials": {
        "access_key_id": storage_env["AWS_ACCESS_KEY_ID"], "secret_access_key": secret}})
    with pytest.raises(StorageError) as info:
        await storage.upload(target, "x.bin", b"x", "application/octet-stream")
    assert info.value.provider == "s3" and info.value.status == 403
    assert "SignatureDoesNotMatch" in info.value.message
    assert secret not in str(info.value) and secret not in repr(target)


async def test_s3_missing_object_and_bucket(storage_env: dict[str, str]) -> None:
    with pytest.raises(StorageError, match="NoSuchKey"):
        await storage.stream(f"s3://{BUCKET}/no/such.png")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        await storage.upload(S3Upload(bucket="no-such-bucket"), "x", b"x", "text/plain")


async def test_azure_upload_then_ranged_reads(storage_env: dict[str, str]) -> None:
    target = AzureBlobUpload(container=CONTAINER, blob_prefix="/lib/")
    url = await storage.upload(target, "b.bin", DATA, "image/x-test")
    assert url.endswith(f"/devstoreaccount1/{CONTAINER}/lib/b.bin")
    blob = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_blob_client(CONTAINER, "lib/b.bin")
    assert blob.get_blob_properties().content_settings.content_type == "image/x-test"
    assert storage.owns(url)
    assert await read(url) == (len(DATA), DATA)
    assert await read(url, 9_000) == (len(DATA), DATA[9_000:])
    assert await read(url, len(DATA)) == (len(DATA), b"")


async def test_azure_wrong_key_is_refused_without_the_key(storage_env: dict[str, str]) -> None:
    bad = "QmFkS2V5Rm9yVGVzdHNPbmx5MTIzNDU2Nzg5MA=="
    target = AzureBlobUpload.model_validate(
        {"container": CONTAINER, "credentials": {"account_key": bad}})
    with pytest.raises(StorageError) as info:
        await storage.upload(target, "x.bin", b"x", "text/plain")
    assert info.value.status == 403 and "AuthorizationFailure" in info.value.message
    assert bad not in str(info.value)
    assert storage_env["AZURE_STORAGE_CONNECTION_STRING"].split("AccountKey=")[1][:20] \
        not in str(info.value)


async def test_http_upload_puts_bytes_and_type(receiver: Receiver) -> None:
    target = HttpUpload(url_prefix=receiver.url("/put/here/"))
    url = await storage.upload(target, "c d.png", DATA, "image/png")
    assert url == receiver.url("/put/here/c%20d.png")
    method, path, headers, body = receiver.requests[-1]
    assert (method, path, headers["content-type"], body) == ("PUT", "/put/here/c%20d.png",
                                                             "image/png", DATA)
    with pytest.raises(StorageError, match="HTTP 403"):
        await storage.upload(HttpUpload(url_prefix=receiver.url("/refuse")), "x", b"x", "a/b")


def test_blocks_take_comfyui_api_fields_and_refuse_bad_ones() -> None:
    hf = HfUpload.model_validate({"repo": "me/out", "repo_type": "dataset", "directory": "/a/b/",
                                  "async": True})
    assert hf.async_ and hf.url("https://hub.test", "x y.png") == \
        "https://hub.test/datasets/me/out/resolve/main/a/b/x%20y.png"
    with pytest.raises(ValueError, match=r"\.\."):
        HfUpload(repo="me/out", directory="a/../../etc").path_in_repo("x.png")
    for bad in ({"bucket": "UPPER"}, {"bucket": "ok-bucket", "extra": 1}):
        with pytest.raises(ValidationError):
            S3Upload.model_validate(bad)
    with pytest.raises(ValidationError):
        HttpUpload(url_prefix="file:///etc/")


async def test_unknown_schemes_are_not_read() -> None:
    assert not storage.owns("https://example.com/x.png")
    with pytest.raises(StorageError, match="no storage provider reads ftp"):
        await storage.stream("ftp://example.com/x")


async def test_hf_commit_then_ranged_reads(hub: Hub) -> None:
    target = HfUpload(repo="me/outputs", repo_type="dataset", directory="/runs/")
    url = await storage.upload(target, "d.bin", DATA, "application/octet-stream")
    assert url == f"{hub.url}/datasets/me/outputs/resolve/main/runs/d.bin"
    assert hub.files[("datasets/me/outputs", "main", "runs/d.bin")] == DATA
    assert await read(url, 100) == (len(DATA), DATA[100:])
    assert await read("hf://datasets/me/outputs@main/runs/d.bin") == (len(DATA), DATA)
    with pytest.raises(StorageError, match="HTTP 404"):
        await storage.stream("hf://me/outputs/none.bin")


async def test_hf_wrong_token_is_refused_without_the_token(hub: Hub) -> None:
    bad = "hf_wrongtoken_77c1d2e3f4a5b6"
    target = HfUpload.model_validate({"repo": "me/outputs", "credentials": {"token": bad}})
    with pytest.raises(StorageError) as info:
        await storage.upload(target, "x.bin", b"x", "text/plain")
    assert info.value.status == 401 and bad not in str(info.value) and TOKEN not in str(info.value)


def test_locations_are_written_one_way_for_allow_lists(storage_env: dict[str, str]) -> None:
    """What `storage_read_allow` matches: the object the provider would read, query and
    encoding removed as the provider removes them; dot segments refused; Hub URLs left out."""
    base = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]).url.rstrip("/")
    assert storage.location(f"s3://{BUCKET}/in/a.png?versionId=3") == f"s3://{BUCKET}/in/a.png"
    assert storage.location(f"az://{CONTAINER}/in/a%20b.png") == f"az://{CONTAINER}/in/a b.png"
    assert storage.location(f"{base}/{CONTAINER}/in/a.png?sv=x&sig=y") == (
        f"az://{CONTAINER}/in/a.png")
    assert storage.location("hf://me/repo/a.png") is None
    assert storage.location("https://example.com/a.png") is None
    for bad in (f"s3://{BUCKET}/in/../x.png", f"s3://{BUCKET}/in/./x.png", f"s3://{BUCKET}",
                f"s3://{BUCKET}/in//x.png", f"az://{CONTAINER}/in/%2e%2e/x.png",
                f"{base}/{CONTAINER}/in/%2E%2E/x.png", f"az://{CONTAINER}"):
        with pytest.raises(StorageError, match="no empty, `.` or `..` parts"):
            storage.location(bad)
    with pytest.raises(StorageError, match="not a valid s3:// URL"):
        storage.location("s3://[bucket/key.png")  # urlsplit's ValueError: a 422, not a 500

"""The model downloader's `s3://` and `az://` sources, read by comfygen.storage from moto's S3
server and Azurite: ranged from an offset (resume), the whole file, and a clear refusal."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from comfygen.models import sources
from comfygen.models.cache import ModelCache
from comfygen.models.download import fetch

from .conftest import BUCKET, CONTAINER

DATA = os.urandom(300_000)


def read(url: str, offset: int = 0) -> tuple[int, int | None, bytes]:
    with sources.open_source(url, offset) as stream:
        return stream.start, stream.total, b"".join(stream.chunks)


def test_s3_and_az_sources_resume_from_an_offset(storage_env: dict[str, str]) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="models/m.safetensors", Body=DATA)
    BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]) \
        .get_blob_client(CONTAINER, "models/m.safetensors").upload_blob(DATA, overwrite=True)
    for url in (f"s3://{BUCKET}/models/m.safetensors", f"az://{CONTAINER}/models/m.safetensors"):
        assert read(url) == (0, len(DATA), DATA)
        assert read(url, 123_456) == (123_456, len(DATA), DATA[123_456:])
        assert read(url, len(DATA)) == (len(DATA), len(DATA), b"")
    with pytest.raises(sources.SourceError, match="NoSuchKey"):
        read(f"s3://{BUCKET}/models/none.safetensors")
    with pytest.raises(sources.SourceError, match="BlobNotFound"):
        read(f"az://{CONTAINER}/models/none.safetensors")


def test_fetch_verifies_an_s3_model(storage_env: dict[str, str], tmp_path: Path) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="models/v.safetensors", Body=DATA)
    cache = ModelCache(tmp_path / "cache")
    blob = fetch(cache, f"s3://{BUCKET}/models/v.safetensors",
                 checksum=("sha256", hashlib.sha256(DATA).hexdigest()), size=len(DATA))
    assert blob.read_bytes() == DATA

"""Storage fixtures: moto's S3 server and Azurite for the session, their settings in the
environment (where the providers read them, as in production), and an HTTP receiver."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from comfygen.storage import s3

from .hub import TOKEN, Hub
from .services import Receiver, start_azurite, start_s3

BUCKET = "comfygen-out"
CONTAINER = "outputs"


@pytest.fixture(scope="session")
def storage_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Both services running and configured in os.environ for the whole session."""
    server, s3_env = start_s3()
    azurite, azure_env = start_azurite(tmp_path_factory.mktemp("azurite"))
    env = {**s3_env, **azure_env}
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCOUNT",
                     "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "HF_TOKEN"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        s3.reset()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        BlobServiceClient.from_connection_string(
            os.environ["AZURE_STORAGE_CONNECTION_STRING"]).create_container(CONTAINER)
        try:
            yield env
        finally:
            s3.reset()
            azurite.terminate()
            try:
                azurite.wait(10)
            except subprocess.TimeoutExpired:  # node can be slow to exit on a loaded machine
                azurite.kill()
                azurite.wait(10)
            server.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    """The local Hub stand-in as `HF_ENDPOINT`, with `HF_TOKEN` set (see hub.py for its scope)."""
    h = Hub()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", h.url)
        mp.setenv("HF_TOKEN", TOKEN)
        try:
            yield h
        finally:
            h.stop()

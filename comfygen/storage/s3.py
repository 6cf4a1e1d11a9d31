"""S3 (and S3-compatible servers): boto3 in a worker thread.

The server's environment configures the default client as boto3 always does (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL[_S3]`, profiles,
instance roles); a request's `credentials` block gets a client of its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from comfygen.storage.errors import StorageError, scrub
from comfygen.storage.targets import S3Credentials, S3Upload

CHUNK = 1 << 20
_CONFIG = Config(s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=60,
                 retries={"max_attempts": 3, "mode": "standard"})


@functools.lru_cache(maxsize=1)
def _default_client() -> Any:
    session = boto3.session.Session()
    return session.client("s3", region_name=session.region_name or "us-east-1", config=_CONFIG)


@functools.lru_cache(maxsize=1)
def _has_default_credentials() -> bool:
    return boto3.session.Session().get_credentials() is not None


def reset() -> None:
    """Forget the cached default client (after the environment changed)."""
    _default_client.cache_clear()
    _has_default_credentials.cache_clear()


async def check(target: S3Upload) -> None:
    """StorageError now, before any work, when no credentials can sign the upload."""
    if target.credentials is None and not await asyncio.to_thread(_has_default_credentials):
        raise StorageError("s3", "the server has no AWS credentials (AWS_ACCESS_KEY_ID, ...): "
                           "send them in s3.credentials or have the operator configure them")


def _client(credentials: S3Credentials | None) -> Any:
    if credentials is None:
        return _default_client()
    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id.get_secret_value(),
        aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
        aws_session_token=(credentials.session_token.get_secret_value()
                           if credentials.session_token else None),
    )
    region = credentials.region or session.region_name or "us-east-1"
    return session.client("s3", region_name=region, config=_CONFIG)


def _secrets(credentials: S3Credentials | None) -> list[str | None]:
    if credentials is None:
        return []
    return [credentials.secret_access_key.get_secret_value(),
            credentials.session_token.get_secret_value() if credentials.session_token else None]


def _error(exc: Exception, what: str, credentials: S3Credentials | None) -> StorageError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{what}: {err.get('Code', 'error')}: {err.get('Message') or 'no message'}"
        return StorageError("s3", scrub(message, _secrets(credentials)), status=status)
    return StorageError("s3", scrub(f"{what}: {exc}", _secrets(credentials)))


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key)."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise StorageError("s3", f"not an s3://bucket/key URL: {url!r}")
    return parts.netloc, key


async def upload(target: S3Upload, filename: str, data: bytes, content_type: str) -> str:
    """Put one object; return its `s3://` URL."""
    key = target.key(filename)

    def put() -> None:
        _client(target.credentials).put_object(
            Bucket=target.bucket, Key=key, Body=data, ContentType=content_type)

    try:
        await asyncio.to_thread(put)
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, f"upload to bucket {target.bucket!r} failed", target.credentials) from None
    return f"s3://{target.bucket}/{key}"


async def stream(url: str, offset: int = 0) -> tuple[int | None, AsyncIterator[bytes]]:
    """The object's total size and its bytes from `offset` (a ranged GET)."""
    bucket, key = parse_url(url)
    client = _client(None)

    def get() -> tuple[int | None, Any]:
        try:
            kwargs = {"Range": f"bytes={offset}-"} if offset else {}
            answer = client.get_object(Bucket=bucket, Key=key, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                raise
            return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"]), None
        total = answer.get("ContentRange", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else int(answer["ContentLength"]) + offset
        return size, answer["Body"]

    try:
        size, body = await asyncio.to_thread(get)
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, f"reading {url} failed", None) from None

    async def chunks() -> AsyncIterator[bytes]:
        if body is None:
            return
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        except (BotoCoreError, OSError) as exc:
            raise _error(exc, f"reading {url} failed", None) from None
        finally:
            body.close()

    return size, chunks()

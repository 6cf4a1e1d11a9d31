"""Object storage: upload outputs to S3, Azure Blob, a Hugging Face repo or an HTTP endpoint,
and read `s3://`, `hf://` and Azure blob URLs (ranged, for media inputs and model downloads).

A library: no web framework. One module per provider; this module routes by target and URL,
importing the S3 and Azure SDKs only when they are used (seconds of start-up otherwise).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from comfygen.storage import hf, http
from comfygen.storage.errors import StorageError
from comfygen.storage.http import Send
from comfygen.storage.targets import (
    AzureBlobUpload,
    HfUpload,
    HttpUpload,
    S3Upload,
    Target,
)

__all__ = ["AzureBlobUpload", "HfUpload", "HttpUpload", "S3Upload", "Send", "StorageError",
           "Target", "check", "location", "owns", "stream", "stream_sync", "upload",
           "upload_all"]


async def check(target: Target) -> None:
    """Raise StorageError when `target`'s provider cannot be used at all (no account or
    credentials): called before a run, so no work is done for outputs that cannot be stored."""
    if isinstance(target, S3Upload):
        from comfygen.storage import s3

        await s3.check(target)
    elif isinstance(target, AzureBlobUpload):
        from comfygen.storage import azure

        azure.check(target)
    elif isinstance(target, HfUpload):
        hf.check(target)


async def upload(target: Target, filename: str, data: bytes, content_type: str, *,
                 send: Send = http.plain_put) -> str:
    """Store one output under `filename`; return the URL it can be found at."""
    if isinstance(target, S3Upload):
        from comfygen.storage import s3

        return await s3.upload(target, filename, data, content_type)
    if isinstance(target, AzureBlobUpload):
        from comfygen.storage import azure

        return await azure.upload(target, filename, data, content_type)
    if isinstance(target, HfUpload):
        return await hf.upload(target, filename, data, content_type)
    return await http.upload(target, filename, data, content_type, send)


async def upload_all(target: Target, files: Sequence[tuple[str, bytes, str]], *,
                     send: Send = http.plain_put) -> list[str]:
    """Upload (filename, data, content type) files; their URLs in order. Hugging Face files go
    one by one (each is a commit on the same branch); the others concurrently. The first
    failure is raised once every upload has ended."""
    if isinstance(target, HfUpload):
        return [await upload(target, *f, send=send) for f in files]
    results = await asyncio.gather(*(upload(target, *f, send=send) for f in files),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [str(r) for r in results]


def owns(url: str) -> bool:
    """True for a URL read through a storage SDK: `s3://`, `hf://` (or the Hub's `resolve`
    URLs), `az://<container>/<blob>` and blob URLs of the configured Azure account."""
    if url.startswith(("s3://", "az://")) or hf.owns(url):
        return True
    if not (os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            or os.environ.get("AZURE_STORAGE_ACCOUNT")):
        return False
    from comfygen.storage import azure

    return azure.owns(url)


def location(url: str) -> str | None:
    """Where a URL read with the server's own storage credentials points, written one way for
    allow-lists: `s3://<bucket>/<key>` or `az://<container>/<blob>` (a blob URL of the
    configured account becomes the latter; no query). None for a Hub URL (its own rules) or
    anything else. StorageError for a key with `.` or `..` segments or an empty part, which a
    pattern could be made to match while the store reads another object."""
    if hf.owns(url):
        return None
    if url.startswith("s3://"):
        scheme, rest = "s3", url[len("s3://"):]
    elif url.startswith("az://"):
        scheme, rest = "az", url[len("az://"):]
    elif owns(url):
        from comfygen.storage import azure

        scheme, rest = "az", url[len(str(azure.account_url())) + 1:]
    else:
        return None
    try:
        if scheme == "az":  # read as `azure.stream` reads it
            path = unquote(urlsplit(rest).path)
        else:  # as `s3.parse_url`
            split = urlsplit(url)
            path = split.netloc + split.path
    except ValueError as exc:  # e.g. an unclosed `[` in the host part
        raise StorageError("storage", f"not a valid {scheme}:// URL: {exc}") from None
    parts = path.split("/")
    if len(parts) < 2 or any(part in ("", ".", "..") for part in parts):
        raise StorageError("storage", f"not a plain {scheme}://<bucket or container>/<key> URL "
                           "(no empty, `.` or `..` parts)")
    return f"{scheme}://{path}"


async def stream(url: str, offset: int = 0, *, hf_server_token: bool = True,
                 hf_headers: Mapping[str, str] | None = None
                 ) -> tuple[int | None, AsyncIterator[bytes]]:
    """The total size (None when unknown) and the bytes of `url` from `offset` on. For a Hub
    URL, `hf_server_token=False` keeps the server's `HF_TOKEN` off the request and `hf_headers`
    are the caller's own (see `hf.stream`)."""
    if url.startswith("s3://"):
        from comfygen.storage import s3

        return await s3.stream(url, offset)
    if hf.owns(url):
        return await hf.stream(url, offset, server_token=hf_server_token, headers=hf_headers)
    if owns(url):
        from comfygen.storage import azure

        return await azure.stream(url, offset)
    raise StorageError("storage", f"no storage provider reads {url.split(':', 1)[0]}: URLs")


def stream_sync(url: str, offset: int = 0) -> tuple[int | None, Iterator[bytes]]:
    """`stream` for synchronous callers (the model downloader's worker threads): the reads run
    on an event loop of the calling thread's own, closed when the iterator ends or is closed.
    Not for a thread that already runs an event loop."""
    loop = asyncio.new_event_loop()
    try:
        size, chunks = loop.run_until_complete(stream(url, offset))
    except BaseException:
        loop.close()
        raise

    def pull() -> Iterator[bytes]:
        try:
            while True:
                try:
                    yield loop.run_until_complete(anext(chunks))
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(chunks.aclose())  # type: ignore[attr-defined]
            loop.close()

    return size, pull()

"""Media inputs from object storage: `s3://`, `hf://` (and the Hub's `resolve` URLs) and blob
URLs of the configured Azure account, read through `comfygen.storage` with the size limit.

`s3://` and Azure objects are read with the server's credentials, so a caller may name only
those the operator allowed (`storage_read_allow`).

A Hub URL gets the server's `HF_TOKEN` only for the repos the operator listed
(`hf_token_repos`); any other is read with the request's own credentials (headers of its
`credentials` whose pattern matches the Hub URL) or anonymously."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from comfygen import storage
from server.media.errors import MediaError
from server.media.limits import MediaLimits
from server.security.policy import UrlPolicy


def is_stored(url: str) -> bool:
    return storage.owns(url)


def check_location(field: str, url: str, policy: UrlPolicy | None) -> None:
    """MediaError unless a caller may have the server's storage credentials read this object:
    its `s3://` or `az://` location must match `storage_read_allow` (a Hub URL is not checked
    here: `hf_token_repos` decides whether it gets the server's token)."""
    try:
        where = storage.location(url)
    except storage.StorageError as exc:
        raise MediaError(field, "invalid_url", exc.message) from None
    if where is not None and (policy is None or not policy.storage_read_allowed(where)):
        raise MediaError(field, "storage_not_allowed",
                         f"{where} is not readable here: object storage URLs are read with the "
                         "server's credentials, only where COMFYGEN_STORAGE_READ_ALLOW allows")


def hub_url(url: str) -> str | None:
    """The Hub `resolve` URL an `hf://` (or `resolve`) URL reads, or None for another store."""
    if storage.hf.repo_id(url) is None:
        return None
    return storage.hf.resolve_url(url)


async def read_stored(field: str, url: str, limits: MediaLimits, timeout: float, *,
                      hf_server_token: bool = False,
                      hf_headers: Mapping[str, str] | None = None) -> bytes:
    """The object's bytes; MediaError when too large, unreadable or slower than `timeout`.
    `hf_server_token` and `hf_headers`: see `comfygen.storage.stream`."""
    if not limits.allow_urls:
        raise MediaError(field, "urls_disabled",
                         "URL inputs are disabled here; send base64 or a data URI")
    too_large = MediaError(field, "too_large", f"the file is larger than {limits.max_bytes} bytes")
    try:
        async with asyncio.timeout(timeout):
            size, chunks = await storage.stream(url, hf_server_token=hf_server_token,
                                                hf_headers=hf_headers)
            if size is not None and size > limits.max_bytes:
                await chunks.aclose()  # type: ignore[attr-defined]
                raise too_large
            data = bytearray()
            async for chunk in chunks:
                data += chunk
                if len(data) > limits.max_bytes:
                    await chunks.aclose()  # type: ignore[attr-defined]
                    raise too_large
    except storage.StorageError as exc:
        raise MediaError(field, "fetch_failed", f"could not read {exc.provider} URL: "
                         f"{exc.message}") from None
    except TimeoutError:
        raise MediaError(field, "fetch_timeout",
                         f"reading the URL took longer than {timeout:g} s") from None
    return bytes(data)

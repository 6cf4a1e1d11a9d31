"""`http_upload`: PUT each output to `<url_prefix>/<filename>`, as comfyui-api does.

The request goes through a `Send` the caller provides (the server passes its URL guard, so an
upload can never reach a private address it did not allow); the default is plain httpx.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from comfygen.storage.errors import StorageError
from comfygen.storage.targets import HttpUpload

Send = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]
"""PUT (url, body, headers) and return the HTTP status; raise StorageError when unreachable."""


async def plain_put(url: str, data: bytes, headers: Mapping[str, str]) -> int:
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10)) as client:
            return (await client.put(url, content=data, headers=dict(headers))).status_code
    except httpx.HTTPError as exc:
        raise StorageError("http_upload", f"could not reach {public_url(url)}: "
                           f"{type(exc).__name__}") from None


def public_url(url: str) -> str:
    """`url` without user info or query (either may carry a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def upload(target: HttpUpload, filename: str, data: bytes, content_type: str,
                 send: Send = plain_put) -> str:
    """PUT one output; return its URL (without credentials)."""
    url = target.url(filename)
    status = await send(url, data, {"Content-Type": content_type})
    if not 200 <= status < 300:
        raise StorageError("http_upload", f"upload to {public_url(url)} failed: the server "
                           f"answered HTTP {status}", status=status)
    return public_url(url)

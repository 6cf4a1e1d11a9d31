"""Where model bytes come from: `open_source(url, offset)` streams a source from a byte offset.

`https://` (and `http://`, for a mirror on a private network) is read with httpx, with a Range
header to resume; `hf://<owner>/<repo>[@<revision>]/<path>` is the Hub's
`<endpoint>/<owner>/<repo>/resolve/<revision>/<path>` (endpoint: `HF_ENDPOINT`, default
huggingface.co), and Hub URLs get `Authorization: Bearer $HF_TOKEN` (never logged) unless the
caller says the URL is not one the server's token may be used for. `s3://` and
`az://<container>/<blob>` are read by `comfygen.storage` with the environment's credentials."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

HF_DEFAULT = "https://huggingface.co"
CHUNK = 1 << 16


Transport = Callable[[], httpx.BaseTransport]
"""Makes the httpx transport a download's requests go through (a user's URL: a guarded one)."""


class SourceError(Exception):
    """A source cannot be read (bad URL, refused, not found); the message says why."""


@dataclass
class Stream:
    """An open source: the bytes from `start` on (0 when the source ignored the offset asked
    for), and the whole file's size when known."""

    start: int
    total: int | None
    chunks: Iterator[bytes]


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", HF_DEFAULT).rstrip("/")


def resolve_url(url: str) -> str:
    """`hf://owner/repo[@rev]/path` as the Hub's https URL; anything else unchanged."""
    if not url.startswith("hf://"):
        return url
    owner, _, rest = url.removeprefix("hf://").partition("/")
    repo, _, path = rest.partition("/")
    repo, _, revision = repo.partition("@")
    if not (owner and repo and path):
        raise SourceError(f"{url}: an hf:// source is hf://<owner>/<repo>[@<revision>]/<path>")
    return f"{hf_endpoint()}/{owner}/{repo}/resolve/{revision or 'main'}/{path}"


def _headers(url: str, offset: int, hub_token: bool) -> dict[str, str]:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    token = os.environ.get("HF_TOKEN") if hub_token else None
    hub_hosts = {urlsplit(HF_DEFAULT).netloc, urlsplit(hf_endpoint()).netloc}
    if token and urlsplit(url).netloc in hub_hosts:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@contextlib.contextmanager
def open_source(url: str, offset: int = 0, *, timeout: float = 60.0,
                headers: Mapping[str, str] | None = None,
                transport: Transport | None = None,
                hub_token: bool = True) -> Iterator[Stream]:
    """Stream `url` from byte `offset` (the one place a scheme is dispatched). `headers` are
    added to the request (per-request credentials; they win over the server's `HF_TOKEN`);
    `transport()` makes the httpx transport every request and redirect goes through (for a
    user's URL: one that checks and pins each address, refusing with `SourceError`);
    `hub_token=False` keeps the server's `HF_TOKEN` off the request."""
    scheme = urlsplit(url).scheme
    if scheme in ("s3", "az"):
        yield _stored(url, offset)
        return
    if scheme == "hf":
        url = resolve_url(url)
    elif scheme not in ("http", "https"):
        raise SourceError(f"{url}: unsupported source (https://, hf://, s3://, az://)")
    guarded = {"transport": transport(), "trust_env": False} if transport is not None else {}
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(httpx.Client(follow_redirects=True, timeout=timeout,
                                                  **guarded))  # type: ignore[arg-type]
        try:
            response = stack.enter_context(client.stream(
                "GET", url, headers={**_headers(url, offset, hub_token), **(headers or {})}))
        except httpx.HTTPError as exc:
            raise SourceError(f"{_shown(url)}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 416 and offset:  # the partial file is already complete
            total = _range_total(response.headers.get("content-range"))
            yield Stream(offset, total, iter(()))
            return
        if response.status_code >= 400:
            hint = " (set HF_TOKEN for gated or private Hub files)" if hub_token \
                and response.status_code in (401, 403) and "HF_TOKEN" not in os.environ else ""
            raise SourceError(f"{_shown(url)}: HTTP {response.status_code}{hint}")
        length = response.headers.get("content-length")
        if response.status_code == 206:
            total = _range_total(response.headers.get("content-range"))
            start = offset
        else:
            total = int(length) if length and length.isdigit() else None
            start = 0
        yield Stream(start, total, response.iter_bytes(CHUNK))


def _stored(url: str, offset: int) -> Stream:
    """`s3://bucket/key` and `az://container/blob` through comfygen.storage (the server's AWS_*
    and AZURE_STORAGE_* credentials), ranged like the others."""
    from comfygen import storage

    try:
        total, chunks = storage.stream_sync(url, offset)
    except storage.StorageError as exc:
        raise SourceError(f"{_shown(url)}: {exc.message}") from None
    return Stream(offset, total, _reraise(url, chunks))


def _reraise(url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    from comfygen import storage

    try:
        yield from chunks
    except storage.StorageError as exc:
        raise SourceError(f"{_shown(url)}: {exc.message}") from None


def _range_total(content_range: str | None) -> int | None:
    """The size after the slash of `bytes a-b/size` (or `bytes */size`)."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    return None


def _shown(url: str) -> str:
    """The URL without its query string (a presigned URL's signature stays out of messages)."""
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()

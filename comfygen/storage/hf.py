"""Hugging Face repos through huggingface_hub (endpoint from `HF_ENDPOINT`, token `HF_TOKEN`).

Reads take `hf://[datasets/]owner/repo[@revision]/path` or a `<endpoint>/.../resolve/<rev>/<path>`
URL and are ranged GETs on the configured endpoint with the token.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote, unquote, urlsplit

import httpx

from comfygen.storage.errors import StorageError, scrub
from comfygen.storage.targets import HfUpload

CHUNK = 1 << 20


def endpoint() -> str:
    """The Hub: `HF_ENDPOINT`, as huggingface_hub reads it, else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def owns(url: str) -> bool:
    return url.startswith("hf://") or (url.startswith(endpoint() + "/") and "/resolve/" in url)


def resolve_url(url: str) -> str:
    """`hf://` as the endpoint's `resolve` URL; a `resolve` URL as it is."""
    if not url.startswith("hf://"):
        return url
    parts = unquote(url[len("hf://"):]).split("/")
    kind = ""
    if parts and parts[0] in ("datasets", "spaces"):
        kind, parts = parts[0] + "/", parts[1:]
    if len(parts) < 3 or not all(parts):
        raise StorageError("hf", f"not an hf://owner/repo/path URL: {url}")
    owner, repo, path = parts[0], parts[1], "/".join(parts[2:])
    repo, _, revision = repo.partition("@")
    if ".." in path.split("/"):
        raise StorageError("hf", f"a path in the repo may not contain '..': {url}")
    return (f"{endpoint()}/{kind}{owner}/{repo}/resolve/{quote(revision or 'main', safe='')}"
            f"/{quote(path)}")


def repo_id(url: str) -> str | None:
    """The repo an `hf://` or Hub `resolve` URL reads from (`owner/repo`, `datasets/owner/repo`,
    `spaces/owner/repo`), or None for any other URL. Any host the server's token is sent to
    counts: the configured endpoint and huggingface.co."""
    try:
        parts = urlsplit(resolve_url(url))
    except StorageError:
        return None
    hosts = {urlsplit(endpoint()).netloc.lower(), "huggingface.co"}
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in hosts:
        return None
    segments = unquote(parts.path).split("/")[1:]
    if any(seg in (".", "..") for seg in segments) or "\\" in parts.path:
        return None  # a dot segment could step out of the repo it seems to name
    kind = ""
    if segments and segments[0] in ("datasets", "spaces"):
        kind, segments = segments[0] + "/", segments[1:]
    if len(segments) < 3 or not segments[0] or not segments[1]:
        return None
    return f"{kind}{segments[0]}/{segments[1].partition('@')[0]}"


def _token(target: HfUpload | None = None) -> str | None:
    if target is not None and target.credentials is not None:
        return target.credentials.token.get_secret_value()
    return os.environ.get("HF_TOKEN") or None


def check(target: HfUpload) -> None:
    """StorageError now, before any work, when there is no token to commit with."""
    if _token(target) is None:
        raise StorageError("hf", "the server has no Hugging Face token (HF_TOKEN): send one in "
                           "hf_upload.credentials or have the operator configure it")


async def upload(target: HfUpload, filename: str, data: bytes, content_type: str) -> str:
    """Commit one file to the repo; return its `resolve` URL. (The Hub keeps no content type.)"""
    del content_type
    token = _token(target)
    try:
        path = target.path_in_repo(filename)
    except ValueError as exc:
        raise StorageError("hf", str(exc)) from None

    def commit() -> None:
        from huggingface_hub import HfApi  # imported on use: a second of start-up otherwise

        HfApi(endpoint=endpoint(), token=token).upload_file(
            path_or_fileobj=data, path_in_repo=path, repo_id=target.repo,
            repo_type=target.repo_type, revision=target.revision,
            commit_message=f"comfygen: add {path}")

    try:
        await asyncio.to_thread(commit)
    except Exception as exc:  # noqa: BLE001 - the Hub client raises its own, httpx's and OS errors
        status = getattr(getattr(exc, "response", None), "status_code", None)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError("hf", scrub(f"upload to {target.repo!r} failed: {first}",
                                       [token]), status=status) from None
    return target.url(endpoint(), filename)


async def stream(url: str, offset: int = 0, *, server_token: bool = True,
                 headers: Mapping[str, str] | None = None
                 ) -> tuple[int | None, AsyncIterator[bytes]]:
    """A file in a repo: its total size and its bytes from `offset`. `server_token=False`
    keeps `HF_TOKEN` off the request (a user's URL the operator did not allow); `headers` (the
    request's own credentials) are sent as given and win over the token."""
    target = resolve_url(url)
    if not urlsplit(target).path or not target.startswith(endpoint() + "/"):
        raise StorageError("hf", f"not a file URL of {endpoint()}: {url}")
    from huggingface_hub.utils import build_hf_headers

    sent = httpx.Headers(build_hf_headers(token=_token() if server_token else False))
    sent.update(headers or {})  # case-insensitive: the caller's Authorization replaces ours
    if offset:
        sent["Range"] = f"bytes={offset}-"
    client = httpx.AsyncClient(follow_redirects=True, timeout=httpx.Timeout(60, connect=10))
    try:
        response = await client.send(client.build_request("GET", target, headers=sent),
                                     stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise StorageError("hf", f"reading {url} failed: {type(exc).__name__}") from None
    if response.status_code == 416:
        await response.aclose()
        await client.aclose()
        total = response.headers.get("content-range", "").rpartition("/")[2]
        return (int(total) if total.isdigit() else None), _empty()
    if response.status_code not in (200, 206):
        await response.aclose()
        await client.aclose()
        raise StorageError("hf", f"reading {url} failed: HTTP {response.status_code}",
                           status=response.status_code)
    size: int | None = None
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else None
    elif response.headers.get("content-length", "").isdigit():
        size = int(response.headers["content-length"])
    skip = offset if response.status_code == 200 else 0  # the server ignored the Range

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal skip
        try:
            async for chunk in response.aiter_bytes(CHUNK):
                if skip:
                    chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                if chunk:
                    yield chunk
        except httpx.HTTPError as exc:
            raise StorageError("hf", f"reading {url} failed: {type(exc).__name__}") from None
        finally:
            await response.aclose()
            await client.aclose()

    return size, chunks()


async def _empty() -> AsyncIterator[bytes]:
    for chunk in ():
        yield chunk

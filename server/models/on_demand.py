"""Models on demand: a model file named by a user's URL (a loader input of a raw graph, or
`POST /download`) downloaded into the ComfyUI models folder it belongs in.

Through the same `ModelStore` and download cache as the manifest's files (keyed by URL; the
cache's LRU limit is `models_cache_max_bytes`), written atomically, one download per file at a
time whoever asks. Unlike the manifest's URLs, a user's URL and every redirect it takes go
through the URL guard, and the download connects to the very address the guard checked (a
`GuardedTransport`: no second DNS answer); the server's `HF_TOKEN` goes only to the manifest's
URLs and the repos of `hf_token_repos`; the file name (the URL's last path segment, or the one given) is checked
so nothing lands outside its folder. Per-request credentials become request headers, never
stored or logged."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from comfygen.comfy.model_files import LOADER_FOLDERS
from comfygen.errors import GenerationError
from comfygen.models.cache import ModelCache, default_cache_dir
from comfygen.models.download import ModelError
from comfygen.models.manifest import ModelEntry, load_manifest
from comfygen.models.sources import SourceError, resolve_url
from comfygen.models.store import ModelStore
from server.errors import ApiError
from server.security import FetchError, ResolvedTarget, UrlCredentials, UrlGuard, redact_url
from server.security.pinning import GuardedTransport
from server.security.policy import merge_credentials
from server.settings import Settings

log = logging.getLogger("comfygen.server")

SCHEMES = ("http", "https", "hf")
_FOLDER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_NAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,200}$")
KEEP_RECORDS = 500
"""`POST /download` statuses kept for polling (the oldest finished ones go first)."""


class ModelRequestError(Exception):
    """A bad model request: `reason` (a short code) and a message naming what is wrong."""

    def __init__(self, reason: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


@dataclass
class Download:
    """One download, as `POST /download` reports it (comfyui-api's keys, plus `id`)."""

    id: str
    url: str  # redacted: no query, no userinfo
    model_type: str
    filename: str
    status: str = "started"  # started, completed, failed
    size: int | None = None
    duration: float | None = None
    error: str | None = None
    started: float = 0.0

    def body(self) -> dict[str, Any]:
        return {k: v for k, v in {
            "id": self.id, "url": self.url, "model_type": self.model_type,
            "filename": self.filename, "status": self.status, "size": self.size,
            "duration": self.duration, "error": self.error}.items() if v is not None}


def file_name(url: str, given: str | None) -> str:
    """The file name a download is saved under: `given`, else the URL's last path segment;
    ModelRequestError when it could leave the folder or is not a plain file name."""
    name = given if given is not None else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not _NAME.match(name) or name.strip() != name or name.startswith(".") \
            or name in (".", ".."):
        source = "filename" if given is not None else "the URL's last path segment"
        raise ModelRequestError(
            "invalid_filename", f"{source} {name!r} is not a plain file name (no '/', '\\', "
            "leading '.', control characters; at most 200 characters)")
    return name


class ModelsOnDemand:
    """Downloads user-named model files into `models_dir`'s folders."""

    def __init__(self, models_dir: Path, cache: Callable[[], ModelCache], guard: UrlGuard,
                 credentials: UrlCredentials | None = None) -> None:
        self.models_dir = models_dir
        self.cache = cache
        self.known: dict[str, ModelEntry] = {}
        """The manifest's entries by URL: their checksum keys the cache and verifies the file,
        and their URL (the operator's) skips the URL guard."""
        self.guard = guard
        self.credentials = merge_credentials(credentials)
        self.inflight: dict[tuple[str, str], asyncio.Future[Path]] = {}
        self.downloads: dict[str, Download] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.on_download: Callable[[dict[str, Any]], None] | None = None
        """Called with `{url, folder, filename, size}` (URL redacted) after each download."""

    @classmethod
    def from_settings(cls, settings: Settings, guard: UrlGuard,
                      base_dir: Path | None) -> ModelsOnDemand | None:
        """None when there is no models folder to write to (attached without models_dir)."""
        models_dir = settings.models_dir or (base_dir / "models" if base_dir else None)
        if models_dir is None:
            return None
        def cache() -> ModelCache:
            return ModelCache(settings.models_cache_dir or default_cache_dir(),
                              settings.models_cache_max_bytes)
        found = cls(models_dir, cache, guard, settings.media_url_credentials)
        if settings.models_manifest is not None and settings.models_manifest.is_file():
            with contextlib.suppress(GenerationError):  # a bad manifest: the puller says so
                found.known = {e.url: e for e in load_manifest(settings.models_manifest).models
                               if e.url}
        return found

    @functools.cached_property
    def store(self) -> ModelStore:
        """Made at the first download (the cache folder is created then, not at start)."""
        return ModelStore(self.models_dir, self.cache())

    def folders(self) -> list[str]:
        """The folders a file may go to: the loaders' and those under the models folder."""
        found = set(LOADER_FOLDERS)
        with contextlib.suppress(OSError):
            found |= {p.name for p in self.models_dir.iterdir() if p.is_dir()
                      and _FOLDER.match(p.name)}
        return sorted(found)

    def target(self, folder: str, name: str) -> Path:
        """Where `name` goes in `folder`: refused when the folder is unknown, or when the path
        is (or resolves through) a symlink leading out of the folder."""
        if not _FOLDER.match(folder) or folder not in self.folders():
            raise ModelRequestError("unknown_model_type",
                                    f"unknown model type {folder!r}; one of: "
                                    f"{', '.join(self.folders())}")
        home = (self.models_dir / folder)
        dest = home / name
        if dest.is_symlink() or dest.resolve().parent != home.resolve():
            raise ModelRequestError("invalid_filename",
                                    f"{name!r} would be written outside models/{folder}")
        return dest

    async def ensure(self, folder: str, url: str, name: str,
                     credentials: UrlCredentials | None = None) -> Path:
        """The file `name` in `folder`, downloaded from `url` unless it is there (shared with
        whoever asks for the same file meanwhile). ModelRequestError when the URL is refused
        (422) or the download fails (400)."""
        self.target(folder, name)
        key = (folder, name)
        shared = self.inflight.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            path = await self._download(folder, url, name, credentials)
            future.set_result(path)
            return path
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self.inflight[key]

    async def check_url(self, url: str) -> ResolvedTarget:
        """`url` as the https URL fetched and the address it is pinned to, once the URL guard
        let it through; ModelRequestError (422) otherwise."""
        return await check_url(url, self.guard)

    async def _download(self, folder: str, url: str, name: str,
                        credentials: UrlCredentials | None) -> Path:
        known = self.known.get(url)
        checked = None if known is not None else await self.check_url(url)
        https = resolve_url(url) if checked is None else str(checked.url)
        headers = merge_credentials(self.credentials, credentials).headers_for(httpx.URL(https))
        loop = asyncio.get_running_loop()

        def refused(exc: FetchError) -> SourceError:  # a redirect's target says where it went
            hop = exc.url if exc.url and exc.url != redact_url(https) else None
            return SourceError(f"redirected to {hop}: {exc.message}" if hop else exc.message)

        def transport() -> GuardedTransport:  # each request and redirect: checked, then pinned
            return GuardedTransport(self.guard, loop, refused, checked=checked)

        entry = ModelEntry(folder=folder, file=name, url=url, sha256=known.sha256,
                           blake3=known.blake3, size=known.size) if known is not None \
            else ModelEntry(folder=folder, file=name, url=url)
        started = time.monotonic()
        try:
            path = await asyncio.to_thread(
                self.store.ensure, entry, headers=headers,
                transport=None if known is not None else transport,
                hub_token=known is not None or self.guard.policy.hf_token_allowed(url))
        except (ModelError, OSError) as exc:
            raise ModelRequestError("download_failed", f"could not download "
                                    f"{redact_url(https)}: {_redacted(str(exc), https)}",
                                    status=400) from None
        size = path.stat().st_size
        log.info("model file %s/%s ready (%d bytes in %.1fs, from %s)", folder, name, size,
                 time.monotonic() - started, redact_url(https))
        if self.on_download is not None:
            self.on_download({"url": redact_url(https), "folder": folder, "filename": name,
                              "size": size})
        return path

    def for_graph(self, credentials: UrlCredentials | None
                  ) -> Callable[[str, str, str], Awaitable[str]]:
        """The `ModelFetch` of `resolve_graph_media`: (field, folder, url) -> the file name;
        ApiError naming the field when the name, the URL or the download is bad."""
        async def fetch(field: str, folder: str, url: str) -> str:
            try:
                name = file_name(url, None)
                await self.ensure(folder, url, name, credentials)
            except ModelRequestError as exc:
                raise ApiError(exc.status, "invalid_model", f"invalid request: {field}: "
                               f"{exc.message}", field=field, reason=exc.reason) from None
            return name
        return fetch

    def start(self, folder: str, url: str, name: str,
              credentials: UrlCredentials | None, record: Download) -> None:
        """Download in the background, `record` telling how it goes (`GET /download/{id}`)."""
        self.downloads[record.id] = record
        while len(self.downloads) > KEEP_RECORDS:
            oldest = next((k for k, d in self.downloads.items() if d.status != "started"), None)
            if oldest is None:
                break
            del self.downloads[oldest]

        async def run() -> None:
            try:
                path = await self.ensure(folder, url, name, credentials)
                record.status, record.size = "completed", path.stat().st_size
            except ModelRequestError as exc:
                record.status, record.error = "failed", exc.message
                log.warning("download %s failed: %s", record.id, exc.message)
            record.duration = round(time.monotonic() - record.started, 3)

        task = asyncio.create_task(run(), name=f"download-{record.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def check_url(url: str, guard: UrlGuard) -> ResolvedTarget:
    """`url` as the https URL fetched and the address it is pinned to, once `guard` let it
    through; ModelRequestError (422) otherwise."""
    if urlsplit(url).scheme.lower() not in SCHEMES:
        raise ModelRequestError("invalid_url", "a model URL is http(s):// or hf://")
    try:
        return await guard.check(resolve_url(url))
    except SourceError as exc:
        raise ModelRequestError("invalid_url", str(exc)) from None
    except FetchError as exc:
        raise ModelRequestError(exc.reason, exc.message) from None


class JobModels:
    """The model URLs of a shared job's graph: checked by the API replica (the URL guard, the
    file name) and downloaded by the worker that runs the job (`ModelsOnDemand`, before the
    run). A `ModelFetch`: (field, folder, url) -> the file name the graph then names."""

    def __init__(self, guard: UrlGuard, credentials: UrlCredentials | None) -> None:
        self.guard = guard
        self.credentials = credentials
        self.wanted: list[tuple[str, str, str, str]] = []
        """(field, folder, url, file name) of each model URL."""

    async def __call__(self, field: str, folder: str, url: str) -> str:
        try:
            name = file_name(url, None)
            https = str((await check_url(url, self.guard)).url)
        except ModelRequestError as exc:
            raise ApiError(exc.status, "invalid_model", f"invalid request: {field}: "
                           f"{exc.message}", field=field, reason=exc.reason) from None
        if self.credentials is not None and self.credentials.headers_for(httpx.URL(https)):
            raise ApiError(501, "credentials_not_shared",
                           f"{field}: request credentials for a model URL are not carried to "
                           "shared-job workers (COMFYGEN_REDIS_URL): configure them in the "
                           "workers' COMFYGEN_MEDIA_URL_CREDENTIALS", field=field)
        self.wanted.append((field, folder, url, name))
        return name


def _redacted(message: str, url: str) -> str:
    """`message` without the URL's query (a signature) if it quoted it."""
    query = urlsplit(url).query
    return message.replace(query, "...") if query else message


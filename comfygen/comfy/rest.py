"""ComfyUI's REST calls, one method each, with failures turned into typed `ComfyError`s."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import aiohttp
import httpx
import orjson

from comfygen.comfy.errors import ComfyHTTPError, ComfyUnavailableError, ComfyValidationError
from comfygen.comfy.models import OutputFile, QueueInfo

JSON_HEADERS = {"content-type": "application/json"}

_through_aiohttp = True


def trace_through_httpx() -> None:
    """Send every call through httpx, so that httpx's OpenTelemetry instrumentation sees each
    one (the server calls this when it turns tracing on)."""
    global _through_aiohttp
    _through_aiohttp = False


class ComfyRest:
    """Stateless calls to one ComfyUI over a pooled HTTP connection.

    The calls go through an aiohttp session: on each request httpx's pool checks every pooled
    connection (a `poll()` each, through anyio), about 2 ms of CPU per `POST /prompt` with 16 in
    flight against 0.2 ms (docs/performance.md). httpx remains for uploads (multipart) and for
    everything while tracing is on (its instrumentation makes the client spans)."""

    def __init__(self, url: str, *, timeout: float = 30.0, max_connections: int = 100) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        )
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made on first use, in the loop

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any call through httpx; a transport failure becomes ComfyUnavailableError."""
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ComfyUnavailableError(
                f"ComfyUI at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            ) from exc

    async def call(self, method: str, path: str, *, content: bytes | None = None,
                   params: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """A call with an optional JSON body: (status, body). A transport failure becomes
        ComfyUnavailableError."""
        headers = JSON_HEADERS if content is not None else None
        if not _through_aiohttp:
            r = await self.request(method, path, content=content, params=params, headers=headers)
            return r.status_code, r.content
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                self.url, timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                skip_auto_headers=("User-Agent",))
        try:
            async with self._session.request(method, path, data=content, params=params,
                                             headers=headers) as r:
                return r.status, await r.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ComfyUnavailableError(
                f"ComfyUI at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            ) from exc

    async def json(self, method: str, path: str) -> Any:
        """A call that must answer 200 with JSON."""
        status, answer = await self.call(method, path)
        if status != 200:
            raise ComfyHTTPError(method, path, status, answer.decode(errors="replace"))
        return orjson.loads(answer)

    async def post_prompt(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /prompt; 400 → ComfyValidationError with ComfyUI's error and node_errors."""
        try:
            content = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, say: ComfyUI will say
            content = json.dumps(body).encode()
        status, answer = await self.call("POST", "/prompt", content=content)
        if status == 400:
            try:
                data = orjson.loads(answer)
            except orjson.JSONDecodeError:
                data = {"error": {"type": "bad_request",
                                  "message": answer.decode(errors="replace")}}
            raise ComfyValidationError(data.get("error", {}), data.get("node_errors", {}))
        if status != 200:
            raise ComfyHTTPError("POST", "/prompt", status, answer.decode(errors="replace"))
        return orjson.loads(answer) or {}

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The /history entry of a prompt, or None while ComfyUI has none."""
        data = await self.json("GET", f"/history/{prompt_id}")
        return data.get(prompt_id) if isinstance(data, dict) else None

    async def queue(self) -> QueueInfo:
        """Prompt ids running and pending in ComfyUI's queue; pending in the order they will run
        (ComfyUI lists its heap as it is: sorted here by each item's queue number)."""
        data = await self.json("GET", "/queue")
        pending = sorted(data.get("queue_pending", []), key=lambda item: item[0])
        return QueueInfo(
            running=[str(item[1]) for item in data.get("queue_running", [])],
            pending=[str(item[1]) for item in pending],
        )

    async def delete_pending(self, prompt_id: str) -> None:
        """POST /queue {"delete": [id]}: take a prompt off the queue before it runs."""
        await self.call("POST", "/queue", content=orjson.dumps({"delete": [prompt_id]}))

    async def interrupt(self, prompt_id: str) -> None:
        """POST /interrupt {"prompt_id"}: stop the prompt that is running."""
        await self.call("POST", "/interrupt", content=orjson.dumps({"prompt_id": prompt_id}))

    async def system_stats(self) -> dict[str, Any]:
        return await self.json("GET", "/system_stats")

    async def object_info_body(self) -> bytes:
        """The raw `/object_info` body (about 0.5 MB on a stock install)."""
        status, body = await self.call("GET", "/object_info")
        if status != 200:
            raise ComfyHTTPError("GET", "/object_info", status, body.decode(errors="replace"))
        return body

    async def model_folders(self) -> list[str]:
        return list(await self.json("GET", "/models"))

    async def models(self, folder: str | None = None) -> Any:
        """Files of one model folder, or {folder: [files]} for every folder."""
        if folder is not None:
            return list(await self.json("GET", f"/models/{folder}"))
        folders = await self.model_folders()
        lists = await asyncio.gather(*(self.json("GET", f"/models/{f}") for f in folders))
        return dict(zip(folders, (list(x) for x in lists), strict=True))

    async def models_signature(self, folders: Iterable[str] | None = None) -> str:
        """A digest of the file lists of model folders (default: every folder), fetched one
        small request at a time (so that neither ComfyUI's loop nor ours is held for long): it
        changes when a model file is added, removed or renamed."""
        digest = hashlib.sha256()
        for folder in folders if folders is not None else await self.model_folders():
            status, body = await self.call("GET", f"/models/{folder}")
            digest.update(f"{folder}\0{status}\0".encode() + body + b"\0")
        return digest.hexdigest()

    async def fetch(self, file: OutputFile) -> bytes:
        """The bytes of an output file through /view (works with a remote ComfyUI)."""
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        status, body = await self.call("GET", "/view", params=params)
        if status != 200:
            raise ComfyHTTPError("GET", f"/view?filename={file.filename}", status,
                                 body.decode(errors="replace"))
        return body

    async def upload(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        overwrite: bool = True,
        kind: Literal["input", "temp", "output"] = "input",
        content_type: str = "application/octet-stream",
    ) -> dict[str, Any]:
        """POST /upload/image; returns {"name", "subfolder", "type"} (name may be renamed)."""
        files = {"image": (filename, data, content_type)}
        form = {"overwrite": "true" if overwrite else "false", "subfolder": subfolder,
                "type": kind}
        r = await self.request("POST", "/upload/image", files=files, data=form)
        if r.status_code != 200:
            raise ComfyHTTPError("POST", "/upload/image", r.status_code, r.text)
        return r.json()

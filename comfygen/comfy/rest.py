"""ComfyUI's REST calls, one method each, with failures turned into typed `ComfyError`s."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import httpx
import orjson

from comfygen.comfy.errors import ComfyHTTPError, ComfyUnavailableError, ComfyValidationError
from comfygen.comfy.models import OutputFile, QueueInfo

JSON_HEADERS = {"content-type": "application/json"}


class ComfyRest:
    """Stateless calls to one ComfyUI over a pooled HTTP connection."""

    def __init__(self, url: str, *, timeout: float = 30.0, max_connections: int = 100) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any call; a transport failure becomes ComfyUnavailableError."""
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ComfyUnavailableError(
                f"ComfyUI at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            ) from exc

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call that must answer 200 with JSON."""
        r = await self.request(method, path, **kwargs)
        if r.status_code != 200:
            raise ComfyHTTPError(method, path, r.status_code, r.text)
        return r.json()

    async def post_prompt(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /prompt; 400 → ComfyValidationError with ComfyUI's error and node_errors."""
        try:
            content = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, say: ComfyUI will say
            content = json.dumps(body).encode()
        r = await self.request("POST", "/prompt", content=content, headers=JSON_HEADERS)
        if r.status_code == 400:
            try:
                data = r.json()
            except ValueError:
                data = {"error": {"type": "bad_request", "message": r.text}}
            raise ComfyValidationError(data.get("error", {}), data.get("node_errors", {}))
        if r.status_code != 200:
            raise ComfyHTTPError("POST", "/prompt", r.status_code, r.text)
        return r.json() or {}

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The /history entry of a prompt, or None while ComfyUI has none."""
        data = await self.json("GET", f"/history/{prompt_id}")
        return data.get(prompt_id) if isinstance(data, dict) else None

    async def queue(self) -> QueueInfo:
        """Prompt ids running and pending in ComfyUI's queue."""
        data = await self.json("GET", "/queue")
        return QueueInfo(
            running=[str(item[1]) for item in data.get("queue_running", [])],
            pending=[str(item[1]) for item in data.get("queue_pending", [])],
        )

    async def delete_pending(self, prompt_id: str) -> None:
        """POST /queue {"delete": [id]}: take a prompt off the queue before it runs."""
        await self.request("POST", "/queue", json={"delete": [prompt_id]})

    async def interrupt(self, prompt_id: str) -> None:
        """POST /interrupt {"prompt_id"}: stop the prompt that is running."""
        await self.request("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def system_stats(self) -> dict[str, Any]:
        return await self.json("GET", "/system_stats")

    async def object_info_body(self) -> bytes:
        """The raw `/object_info` body (about 0.5 MB on a stock install)."""
        r = await self.request("GET", "/object_info")
        if r.status_code != 200:
            raise ComfyHTTPError("GET", "/object_info", r.status_code, r.text)
        return r.content

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
            r = await self.request("GET", f"/models/{folder}")
            digest.update(f"{folder}\0{r.status_code}\0".encode() + r.content + b"\0")
        return digest.hexdigest()

    async def fetch(self, file: OutputFile) -> bytes:
        """The bytes of an output file through /view (works with a remote ComfyUI)."""
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        r = await self.request("GET", "/view", params=params)
        if r.status_code != 200:
            raise ComfyHTTPError("GET", f"/view?filename={file.filename}", r.status_code, r.text)
        return r.content

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
        return await self.json("POST", "/upload/image", files=files, data=form)

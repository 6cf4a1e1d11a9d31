"""A live comfygen on the session ComfyUI, the real comfy-sdk client pointed at it, and a check of
every `/api/v2` answer against the SDK's own pydantic models (`comfy_low.models`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from comfy_low import models
from comfy_sdk import AsyncComfy

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from tests.jobs_api.live import live, settings_for
from tests.server.server_workflows import registry


@dataclass
class Checked:
    """How many answers were validated, by model name (a test can assert it saw them)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


def model_for(method: str, path: str, status: int) -> Any:
    """The SDK model an `/api/v2` answer must validate as (None: no JSON body expected)."""
    if method == "HEAD":
        return None  # no body, by definition
    if status >= 400:
        return models.ErrorEnvelope
    rest = path.split("/api/v2", 1)[1].rstrip("/")
    parts = rest.strip("/").split("/")
    if parts[0] == "health":
        return dict
    if parts[0] == "jobs":
        if len(parts) == 1:
            return models.Job if method == "POST" else "list"
        if parts[-1] == "workflow":
            return models.JobWorkflowResponse
        if parts[-1] == "events":
            return "sse"
        return models.Job
    if parts[0] == "assets":
        if method in ("HEAD", "DELETE") or parts[-1] == "content":
            return None
        return models.Asset
    raise AssertionError(f"unexpected /api/v2 path {path}")


SSE_MODELS = {"status": models.StatusEvent, "progress": models.Progress,
              "output": models.Output, "preview": models.PreviewEvent, "log": models.LogEvent}


def check_body(method: str, path: str, status: int, content_type: str, body: bytes,
               checked: Checked) -> None:
    """Validate one answer; an SSE body frame by frame."""
    kind = model_for(method, path, status)
    if kind is None:
        return
    if kind == "sse":
        assert content_type.startswith("text/event-stream"), content_type
        check_sse(body.decode(), checked)
        return
    assert content_type.startswith("application/json"), (path, status, content_type)
    data = json.loads(body)
    if kind == "list":
        assert isinstance(data["jobs"], list) and "next_cursor" not in data
        for item in data["jobs"]:
            models.Job.model_validate(item)
        checked.add("JobList")
    elif kind is dict:
        assert data["status"] in ("ok", "degraded")
    else:
        kind.model_validate(data)
        checked.add(kind.__name__)


def check_sse(text: str, checked: Checked) -> None:
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            SSE_MODELS[event].model_validate(json.loads("\n".join(data)))
            checked.add(f"sse:{event}")


def hook(checked: Checked):
    async def on_response(response: httpx.Response) -> None:
        if "/api/v2/" not in response.request.url.path:
            return
        ctype = response.headers.get("content-type", "")
        if ctype.startswith("text/event-stream") or (
                response.status_code in (200, 206) and response.request.url.path.endswith(
                    "/content")):
            return  # streamed bodies: SSE frames are checked by the tests that read them
        await response.aread()
        check_body(response.request.method, response.request.url.path, response.status_code,
                   ctype, response.content, checked)
    return on_response


@dataclass
class V2:
    url: str
    sdk: AsyncComfy
    http: httpx.AsyncClient
    checked: Checked
    app: Any = None

    async def sse(self, path: str, headers: dict[str, str] | None = None
                  ) -> list[tuple[str | None, str, dict]]:
        """(id, event, data) of every frame until the server ends the stream, each checked."""
        async with self.http.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            text = (await response.aread()).decode()
        check_body("GET", path, 200, response.headers["content-type"], text.encode(),
                   self.checked)
        blocks = text.replace("\r\n", "\n").split("\n\n")
        frames = (sse_frame(block.split("\n")) for block in blocks)
        return [frame for frame in frames if frame is not None]


Frame = tuple[str | None, str, dict]


def sse_frame(lines: list[str]) -> Frame | None:
    """(id, event, data) of one SSE frame's lines (None: a comment or keep-alive only)."""
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("id", "event", "data"):
            fields[name] = value.strip()
    if "data" not in fields:
        return None
    return fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])


@contextlib.asynccontextmanager
async def live_sse(http: httpx.AsyncClient, path: str) -> AsyncIterator[AsyncIterator[Frame]]:
    """The frames of an SSE stream as they arrive (the stream stays open while the block runs);
    `status` frames are checked against the SDK's `StatusEvent`."""
    async with http.stream("GET", path) as response:
        assert response.status_code == 200, await response.aread()

        async def frames() -> AsyncIterator[Frame]:
            lines: list[str] = []
            async for line in response.aiter_lines():
                if line:
                    lines.append(line)
                    continue
                frame, lines = sse_frame(lines), []
                if frame is not None:
                    if frame[1] == "status":
                        models.StatusEvent.model_validate(frame[2])
                    yield frame
        yield frames()


@contextlib.asynccontextmanager
async def serving(comfyui: ComfyUIProcess, monkeypatch: pytest.MonkeyPatch,
                  api_key: str | None = None, **overrides: Any) -> AsyncIterator[V2]:
    """comfygen on the session ComfyUI, the SDK and a raw client, both checked."""
    settings = settings_for(comfyui, **({"api_key": api_key} if api_key else {}), **overrides)
    checked = Checked()
    app = create_app(settings, registry())
    async with live(app) as url:
        monkeypatch.setenv("COMFY_BASE_URL", url)
        monkeypatch.delenv("COMFY_API_KEY", raising=False)
        sdk = AsyncComfy(api_key=api_key, timeout=60)
        sdk._low._client.event_hooks["response"].append(hook(checked))
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers,
                                     event_hooks={"response": [hook(checked)]}) as http:
            try:
                yield V2(url, sdk, http, checked, app)
            finally:
                await sdk.aclose()


@pytest.fixture
async def v2(comfyui: ComfyUIProcess, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[V2]:
    async with serving(comfyui, monkeypatch) as served:
        yield served

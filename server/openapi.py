"""/openapi.json and /docs with combo enums taken from the live ComfyUI."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from comfygen.comfy.errors import ComfyError
from comfygen.runtime import Workflow
from comfygen.runtime.choices import live_choices
from server.version import VERSION

DESCRIPTION = (
    "Typed endpoints for ComfyUI workflows. Each `POST /workflow/<model>/<name>` takes "
    "`{\"input\": {...}}` (plus optional `id`, `webhook_v2`, `convert_output`) and answers with "
    "base64 `images`, their `filenames`, the resolved `input` and every output by node. "
    "Choice lists (samplers, model files...) come from the connected ComfyUI."
)


def install(app: FastAPI, registry: Mapping[str, Workflow]) -> None:
    """Serve a live OpenAPI document: rebuilt whenever ComfyUI's /object_info changes."""
    cache: dict[str, Any] = {}

    def base() -> dict[str, Any]:
        if "base" not in cache:
            cache["base"] = get_openapi(title="comfygen", version=VERSION,
                                        description=DESCRIPTION, routes=app.routes)
        return cache["base"]

    def live(object_info: Mapping[str, Any] | None, digest: str) -> dict[str, Any]:
        if cache.get("digest") != digest or "live" not in cache:
            doc = copy.deepcopy(base())
            if object_info:
                for wf in registry.values():
                    _patch_enums(doc, wf, object_info)
            cache["live"], cache["digest"] = doc, digest
        return cache["live"]

    def openapi() -> dict[str, Any]:  # sync callers get the last known live state
        client = app.state.supervisor.client if hasattr(app.state, "supervisor") else None
        info = getattr(client, "_object_info", None)
        return live(info, getattr(client, "object_info_hash", ""))

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        client = app.state.supervisor.client
        info = None
        try:
            info = await client.object_info()
        except ComfyError:
            info = getattr(client, "_object_info", None)  # ComfyUI away: last known lists
        return JSONResponse(live(info, client.object_info_hash))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="comfygen - Swagger UI")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _patch_enums(doc: dict[str, Any], wf: Workflow, object_info: Mapping[str, Any]) -> None:
    if not wf.choices:
        return
    op = doc["paths"].get(f"/workflow/{wf.path}", {}).get("post")
    if not op:
        return
    body = _resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
    inputs = _resolve(doc, body["properties"]["input"])
    for field, source in wf.choices.items():
        prop = inputs.get("properties", {}).get(field)
        allowed = live_choices(object_info, source)
        if prop is None or allowed is None:
            continue
        if allowed:
            prop["enum"] = list(allowed)
        else:
            prop.pop("enum", None)
            prop["description"] = (prop.get("description", "") + " (the connected ComfyUI "
                                   "offers no values here: install some first)").strip()
        prop["x-comfygen-live"] = True

"""/openapi.json and /docs with combo enums taken from the live ComfyUI."""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from comfygen.comfy.errors import ComfyError
from comfygen.nodedefs import NodeDefs
from comfygen.runtime import Workflow
from comfygen.runtime.choices import live_choices
from server.settings import Settings
from server.version import VERSION

DESCRIPTION = (
    "Typed endpoints for ComfyUI workflows. Each `POST /workflow/<model>/<name>` takes "
    "`{\"input\": {...}}` (plus optional `id`, `webhook_v2`, `convert_output`) and answers with "
    "base64 `images`, their `filenames`, the resolved `input` and every output by node. "
    "Choice lists (samplers, model files...) come from the connected ComfyUI."
)


DOCS_ASSETS = "/docs/static"

RUN_HEADERS = [
    {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "Send `respond-async` to get 202 at once with a job to follow "
                    "(`/jobs/{id}`); leave empty for the result in the answer"},
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
     "description": "A retried request with the same key returns the first request's job "
                    "instead of running again; the same key with a different body is a 422"},
]


def operation_id(route: APIRoute) -> str:
    """A route's operation id is its function's name (`get_job`, `health`): client generators
    name their functions after it. Workflow routes set theirs (`sd35_medium_txt2img`)."""
    return route.name


def install(app: FastAPI, registry: Mapping[str, Workflow], settings: Settings) -> None:
    """Serve a live OpenAPI document: rebuilt whenever ComfyUI's /object_info changes (or,
    with `serve --reload`, the workflows: `app.state.registry` and the cache it clears)."""
    cache: dict[str, Any] = {}
    app.state.openapi_cache = cache
    app.state.registry = registry

    def base() -> dict[str, Any]:
        if "base" not in cache:
            doc = get_openapi(title="comfygen", version=VERSION, description=DESCRIPTION,
                              routes=app.routes)
            _patch_runs(doc, app.state.registry)
            _unique_operation_ids(doc)
            if settings.api_key is not None:
                _add_api_key(doc, settings.api_key_header)
            cache["base"] = doc
        return cache["base"]

    def live(nodedefs: NodeDefs | None, digest: str) -> dict[str, Any]:
        if cache.get("digest") != digest or "live" not in cache:
            doc = copy.deepcopy(base())
            if nodedefs:
                for wf in app.state.registry.values():
                    _patch_enums(doc, wf, nodedefs)
            cache["live"], cache["digest"] = doc, digest
        return cache["live"]

    def openapi() -> dict[str, Any]:  # sync callers get the last known live state
        if not hasattr(app.state, "supervisor"):
            return live(None, "")
        node_info = app.state.supervisor.client.node_info
        return live(node_info.latest, node_info.digest)

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        node_info = app.state.supervisor.client.node_info
        with contextlib.suppress(ComfyError):  # ComfyUI away: the last known lists
            await node_info.get()
        return JSONResponse(live(node_info.latest, node_info.digest))

    # Swagger UI's assets are served from a PyPI package: /docs works offline, no CDN.
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")),
              name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="comfygen - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _patch_enums(doc: dict[str, Any], wf: Workflow, nodedefs: NodeDefs) -> None:
    if not wf.choices:
        return
    op = doc["paths"].get(f"/workflow/{wf.path}", {}).get("post")
    if not op:
        return
    body = _resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
    inputs = _resolve(doc, body["properties"]["input"])
    for field, source in wf.choices.items():
        prop = inputs.get("properties", {}).get(field)
        allowed = live_choices(nodedefs, source)
        if prop is None or allowed is None:
            continue
        if allowed:
            prop["enum"] = list(allowed)
        else:
            prop.pop("enum", None)
            prop["description"] = (prop.get("description", "") + " (the connected ComfyUI "
                                   "offers no values here: install some first)").strip()
        prop["x-comfygen-live"] = True


def _patch_runs(doc: dict[str, Any], registry: Mapping[str, Workflow]) -> None:
    """`Prefer` and `Idempotency-Key` headers on every run; multipart bodies for media inputs."""
    paths = doc["paths"]
    for path in ["/prompt", *(f"/workflow/{wf.path}" for wf in registry.values())]:
        op = paths.get(path, {}).get("post")
        if op is not None:
            op.setdefault("parameters", []).extend(copy.deepcopy(RUN_HEADERS))
    for wf in registry.values():
        for path in (f"/workflow/{wf.path}", f"/workflow/{wf.path}/validate"):
            op = paths.get(path, {}).get("post")
            if op and wf.media:
                _add_multipart(op, wf)


def _add_multipart(op: dict[str, Any], wf: Workflow) -> None:
    """The multipart form of a body with media files."""
    props: dict[str, Any] = {
        "request": {"type": "string", "description": "The JSON envelope, e.g. "
                    '{"input": {...}, "id": "..."}'},
        "input": {"type": "string", "description": "The input as a JSON object"},
    }
    for field in sorted(wf.media):
        props[field] = {"type": "string", "format": "binary",
                        "description": f"The {wf.media[field].value} file for input.{field}"}
    op["requestBody"]["content"]["multipart/form-data"] = {
        "schema": {"type": "object", "properties": props}}


def _unique_operation_ids(doc: dict[str, Any]) -> None:
    """Operation ids must be unique: two routes whose functions share a name get their method
    and path appended (`get_job_get_v2_jobs_job_id`)."""
    ops = [(path, method, op) for path, item in doc["paths"].items()
           for method, op in item.items() if "operationId" in op]
    counts: dict[str, int] = {}
    for _, _, op in ops:
        counts[op["operationId"]] = counts.get(op["operationId"], 0) + 1
    for path, method, op in ops:
        if counts[op["operationId"]] > 1:
            slug = re.sub(r"[^0-9a-z]+", "_", path.lower()).strip("_")
            op["operationId"] = f"{op['operationId']}_{method}_{slug}"


def _add_api_key(doc: dict[str, Any], header: str) -> None:
    doc.setdefault("components", {}).setdefault("securitySchemes", {})["ApiKey"] = {
        "type": "apiKey", "in": "header", "name": header}
    open_paths = {"/health", "/ready"}
    for path, ops in doc["paths"].items():
        if path not in open_paths:
            for op in ops.values():
                op["security"] = [{"ApiKey": []}]

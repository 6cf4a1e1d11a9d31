"""Every failure becomes an answer with a reason: HTTP status, `error` text, `type`, details."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from comfygen.comfy.errors import (
    ComfyError,
    ComfyExecutionError,
    ComfyHTTPError,
    ComfyInterruptedError,
    ComfyTimeoutError,
    ComfyUnavailableError,
    ComfyValidationError,
)
from comfygen.comfy.model_files import missing_message, model_folder

log = logging.getLogger("comfygen.server")

HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


class ErrorBody(BaseModel):
    """Every error answer: a readable `error`, a machine `type`, and details by type."""

    model_config = ConfigDict(extra="allow")

    error: str
    type: str
    id: str | None = None


class ApiError(Exception):
    """An answer to send: status, readable message, machine type, extra fields."""

    def __init__(self, status: int, type_: str, message: str, *,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "type": self.type}
        if request_id is not None:
            body["id"] = request_id
        body.update(self.extra)
        return jsonable_encoder(body)

    def response(self, request_id: str | None = None, path: str = "") -> JSONResponse:
        """The comfygen error body, or under `/api/v2/` the Comfy API v2 envelope."""
        if path.startswith(V2_PREFIX):
            return JSONResponse(self.envelope(), V2_STATUS.get(self.type, self.status),
                                headers=self.headers)
        return JSONResponse(self.body(request_id), self.status, headers=self.headers)

    def envelope(self) -> dict[str, Any]:
        """Comfy API v2's `{"error": {"code", "message", "details"}}` (docs/comfy-api-v2.md)."""
        code = V2_CODES.get(self.type, self.type)
        details = jsonable_encoder(self.extra) or None
        return {"error": {"code": code, "message": self.message, "details": details}}


V2_PREFIX = "/api/v2/"
"""Where errors take the Comfy API v2 shape (server/v2): the contract wins there."""
V2_CODES = {"job_not_found": "not_found", "comfyui_validation": "invalid_workflow",
            "invalid_input": "invalid_request", "http_error": "invalid_request",
            "job_finished": "already_completed"}
"""comfygen error types that Comfy API v2 names differently."""
V2_STATUS = {"comfyui_validation": 422}


def missing_model_error(missing: list[dict[str, Any]],
                        fields: Mapping[tuple[str, str], str], **extra: Any) -> ApiError:
    """424 naming every missing model file and its folder (and the public field, if any)."""
    for m in missing:
        field = fields.get((m["node"], str(m["input"])))
        if field:
            m["field"] = f"input.{field}"
    return ApiError(424, "missing_model", missing_message(missing), missing_models=missing,
                    **extra)


def from_comfy(exc: ComfyError, retry_after: int = 5,
               fields: Mapping[tuple[str, str], str] | None = None) -> ApiError:
    """Map a client error; `fields` maps (node, input) to a public input field."""
    if isinstance(exc, ComfyUnavailableError):
        return ApiError(503, "comfyui_unavailable", str(exc),
                        headers={"Retry-After": str(retry_after)})
    if isinstance(exc, ComfyValidationError):
        return _validation(exc, fields or {})
    if isinstance(exc, ComfyExecutionError):
        return ApiError(
            500, "execution_error", f"ComfyUI failed to run the prompt: {exc}",
            node_id=exc.node_id, node_type=exc.node_type, exception_type=exc.exception_type,
            exception_message=exc.exception_message,
        )
    if isinstance(exc, ComfyTimeoutError):
        what = {"interrupted": "it was interrupted", "deleted": "it was removed from the queue"}
        done = what.get(exc.cancelled or "", "it had already ended")
        return ApiError(504, "timeout", f"{exc}; {done}", cancelled=exc.cancelled,
                        timeout=exc.timeout)
    if isinstance(exc, ComfyInterruptedError):
        return ApiError(409, "interrupted", f"{exc} before it finished")
    if isinstance(exc, ComfyHTTPError):
        return ApiError(502, "comfyui_error", str(exc))
    return ApiError(502, "comfyui_error", f"{type(exc).__name__}: {exc}")


def _validation(exc: ComfyValidationError, fields: Mapping[tuple[str, str], str]) -> ApiError:
    problems: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for node, entry in sorted(exc.node_errors.items()):
        class_type = entry.get("class_type")
        for err in entry.get("errors") or []:
            info = err.get("extra_info") or {}
            input_name = info.get("input_name")
            problem = {
                "node": str(node), "class_type": class_type, "input": input_name,
                "type": err.get("type"), "message": err.get("message"),
                "details": err.get("details"),
            }
            if "received_value" in info:
                problem["received"] = info["received_value"]
            field = fields.get((str(node), str(input_name)))
            if field:
                problem["field"] = f"input.{field}"
            problems.append(problem)
            value = info.get("received_value")
            folder = model_folder(str(class_type), str(input_name), value)
            if err.get("type") == "value_not_in_list" and folder:
                missing.append({"file": value, "folder": folder, "node": str(node),
                                "input": input_name})
    if missing and len(missing) == len(problems):
        return missing_model_error(missing, fields, node_errors=problems)
    top = exc.error.get("message") or "ComfyUI rejected the prompt"
    first = "; ".join(
        f"node {p['node']} ({p['class_type']})"
        + (f" input {p['input']!r}" if p["input"] else "")
        + f": {_why(p)}"
        for p in problems[:5]
    )
    message = f"ComfyUI rejected the prompt: {top}" + (f": {first}" if first else "")
    details = exc.error.get("details")
    if not problems and details:
        message += f" ({details})"
    return ApiError(400, "comfyui_validation", message,
                    comfyui_error=exc.error.get("type"), node_errors=problems)


def _why(problem: dict[str, Any]) -> str:
    """ComfyUI's message, plus its `details` when they say more (range errors put only the
    input name there; custom validation puts the reason there)."""
    message, details = problem.get("message") or "", problem.get("details") or ""
    if details and details != problem.get("input") and details not in message:
        return f"{message} ({details})" if message else details
    return message or details


def _finite(value: Any) -> Any:
    """`value` with NaN and the infinities (JSON has none; Python's parser reads them) as
    strings, so that an error echoing such an input can itself be sent as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def install_handlers(app: FastAPI) -> None:
    """422 with field paths, ApiError as is, and no bare 500."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(getattr(request.state, "request_id", None), request.url.path)

    @app.exception_handler(ComfyError)
    async def comfy_error(request: Request, exc: ComfyError) -> JSONResponse:
        retry = request.app.state.settings.retry_after
        return from_comfy(exc, retry).response(getattr(request.state, "request_id", None),
                                               request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _finite(jsonable_encoder(exc.errors(), custom_encoder={Exception: str}))
        for e in errors:
            e.pop("url", None)
            if {"credentials", "auth"} & set(e.get("loc", ())):  # never echo a secret
                e.pop("input", None)
        shown = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:] if p != 'body') or 'body'}: {e['msg']}"
            for e in errors[:5]
        )
        if request.url.path.startswith(V2_PREFIX):
            return ApiError(422, "invalid_input", f"invalid request: {shown}",
                            errors=errors).response(path=request.url.path)
        return JSONResponse(
            {"error": f"invalid request: {shown}", "type": "invalid_input", "detail": errors},
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = HTTP_TYPES.get(exc.status_code, "http_error")
        if request.url.path.startswith(V2_PREFIX):
            return ApiError(exc.status_code, kind, str(exc.detail),
                            headers=getattr(exc, "headers", None)).response(path=request.url.path)
        return JSONResponse({"error": str(exc.detail), "type": kind}, exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        if request.url.path.startswith(V2_PREFIX):
            return ApiError(500, "internal_error", f"internal error: {type(exc).__name__}"
                            ).response(path=request.url.path)
        return JSONResponse(
            {"error": f"internal error: {type(exc).__name__}: {exc}", "type": "internal_error",
             "id": getattr(request.state, "request_id", None)},
            500,
        )

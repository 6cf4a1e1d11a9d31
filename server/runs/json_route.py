"""The run routes' request handler: a valid JSON request goes straight to the endpoint.

FastAPI's own handler reads the body with the standard library's JSON parser, sets up dependency
solving, exit stacks and telemetry hooks, then validates; on the hottest route that is a large
part of the server's CPU per request (docs/performance.md). `JsonRoute` handles the common case
itself: a JSON body (`application/json` or `+json`) that orjson parses into an object and the
route's own body field (FastAPI's, so the same validation) accepts, for an endpoint that takes
only the request and that body. Anything else (no or another content type, bad JSON, a NaN or
an integer orjson does not read, invalid input, OpenTelemetry data wanted for the request) goes
to FastAPI's handler, which answers exactly as it always does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class JsonRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        names = _fast_parameters(self)
        if names is None:
            return handler
        request_name, body_name = names
        field = self.body_field
        call = self.dependant.call
        assert field is not None and call is not None

        async def route(request: Request) -> Response:
            if (not _is_json(request.headers.get("content-type"))
                    or get_telemetry_data() is not None):
                return await handler(request)
            try:
                raw = await request.body()
            except HTTPException:
                raise
            except Exception as exc:  # noqa: BLE001 - FastAPI decides what a failed read answers
                return await handler(_failing(request, exc))
            try:
                data = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                value, errors = field.validate(data, {}, loc=("body",))
                if not errors:
                    response = await call(**{request_name: request, body_name: value})
                    assert isinstance(response, Response)
                    return response
            return await handler(request)  # the body is kept: FastAPI parses it again

        return route


def _fast_parameters(route: APIRoute) -> tuple[str, str] | None:
    """(request, body) parameter names when the endpoint takes nothing else and answers a
    Response itself; None for any other endpoint (FastAPI's handler serves it)."""
    d = route.dependant
    if (d.request_param_name is None or len(d.body_params) != 1 or route.body_field is None
            or d.dependencies or d.path_params or d.query_params or d.header_params
            or d.cookie_params or d.response_param_name or d.background_tasks_param_name
            or d.websocket_param_name or d.http_connection_param_name
            or d.security_scopes_param_name or route.response_field is not None
            or not inspect.iscoroutinefunction(d.call)):
        return None
    return d.request_param_name, d.body_params[0].name


def _is_json(content_type: str | None) -> bool:
    """`application/json` or `application/<anything>+json`, as FastAPI reads JSON bodies."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def _failing(request: Request, exc: Exception) -> Request:
    """The request again, its body read failing with `exc` (for FastAPI to translate)."""

    async def receive() -> Message:
        raise exc

    return Request(request.scope, receive)

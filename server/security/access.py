"""Access control for a public endpoint: API key, request body limit, CORS (ASGI middleware)."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ApiError
from server.settings import Settings

OPEN_PATHS = frozenset({"/health", "/ready", "/api/v2/health"})
DOC_PATHS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect"})
DOC_ASSETS = "/docs/static/"  # Swagger UI's own JS and CSS: public files, never protected


class BodyTooLarge(HTTPException):
    """The request body passed `max_body_size` while it was being read. An HTTPException, since
    FastAPI turns any other exception raised while it reads a body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """413 for a declared Content-Length over the limit; stop reading a longer streamed body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                too_large = ApiError(413, "body_too_large",
                                     f"the request body is larger than {self.limit} bytes",
                                     limit=self.limit)
                await too_large.response(path=scope["path"])(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


class ApiKeyMiddleware:
    """401 unless the request carries the API key (probes, CORS preflights and docs excepted)."""

    def __init__(self, app: ASGIApp, key: str, header: str, protect_docs: bool,
                 public: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._key = key.encode()
        self.header = header.lower().encode("latin-1")
        self.header_name = header
        self.open = OPEN_PATHS | public | (frozenset() if protect_docs else DOC_PATHS)

    def __repr__(self) -> str:
        return f"ApiKeyMiddleware(header={self.header_name!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] in self.open
                or scope["path"].startswith(DOC_ASSETS)
                or scope["method"] == "OPTIONS" or self._authorised(scope)):
            await self.app(scope, receive, send)
            return
        unauthorized = ApiError(
            401, "unauthorized", f"missing or wrong API key: send it in the {self.header_name} "
            "header (or as Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"})
        await unauthorized.response(path=scope["path"])(scope, receive, send)

    def _authorised(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == self.header and hmac.compare_digest(value.strip(), self._key):
                return True
            if key == b"authorization" and value[:7].lower() == b"bearer ":
                if hmac.compare_digest(value[7:].strip(), self._key):
                    return True
        return False


def install(app: Any, settings: Settings) -> None:
    """Add the middleware; CORS is outermost so preflights and 401s carry its headers."""
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_size)
    if settings.api_key is not None and settings.api_key.get_secret_value():
        app.add_middleware(ApiKeyMiddleware, key=settings.api_key.get_secret_value(),
                           header=settings.api_key_header,
                           protect_docs=settings.api_key_protect_docs,
                           public=frozenset({"/metrics"} if settings.metrics_public else ()))
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_allow_origins,
            allow_methods=settings.cors_allow_methods, allow_headers=settings.cors_allow_headers,
            allow_credentials=settings.cors_allow_credentials, max_age=settings.cors_max_age,
            expose_headers=["Location", "Retry-After", "Preference-Applied",
                            "Idempotent-Replayed", "X-Request-ID"],
        )

"""`JsonRoute` (the run routes' handler): a valid JSON request skips FastAPI's handler, and every
other request gets exactly FastAPI's answer. The same endpoint is mounted twice, once as a plain
`APIRoute`, and each request is sent to both; status, headers that matter and body must agree."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from server.errors import install_handlers
from server.media.multipart import media_route
from server.runs.json_route import JsonRoute
from server.security.access import BodyLimitMiddleware


class Inner(BaseModel):
    steps: int = Field(ge=1, le=50)
    name: str = "x"


class Envelope(BaseModel):
    id: str = "default"
    input: Inner


def app_with(route_class: type | None) -> FastAPI:
    app = FastAPI()
    install_handlers(app)
    router = APIRouter()

    async def run(request: Request, body: Annotated[Envelope, Body()]) -> Response:
        return Response(body.model_dump_json(), media_type="application/json",
                        headers={"x-seen": request.headers.get("x-probe", "")})

    router.add_api_route("/run", run, methods=["POST"], route_class_override=route_class)
    app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, limit=200)
    return app


async def both(content: bytes | None, headers: dict[str, str]) -> list[httpx.Response]:
    answers = []
    for app in (app_with(None), app_with(JsonRoute)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as http:
            answers.append(await http.post("/run", content=content, headers=headers))
    return answers


JSON = {"content-type": "application/json"}
CASES = [
    (b'{"input": {"steps": 3}}', JSON),  # valid: the fast path
    (b'{"input": {"steps": 3}, "id": "a"}', {"content-type": "application/problem+json"}),
    (b'{"input": {"steps": 3}}', {"content-type": "Application/JSON; charset=utf-8"}),
    (b'{"input": {"steps": 0}}', JSON),  # out of range
    (b'{"input": {}}', JSON),  # missing field
    (b'{"input": {"steps": 3}', JSON),  # bad JSON
    (b'[1, 2]', JSON),  # not an object
    (b'null', JSON),
    (b'', JSON),  # no body
    (b'{"input": {"steps": NaN}}', JSON),  # JSON orjson does not read, the stdlib does
    (b'{"input": {"steps": 3, "name": 123456789012345678901234567890}}', JSON),  # > 64 bits
    (b'{"input": {"steps": 3}}', {}),  # no content type
    (b'{"input": {"steps": 3}}', {"content-type": "text/plain"}),
    (b'{"input": {"steps": 3}, "pad": "' + b"x" * 300 + b'"}', JSON),  # over the body limit
]


@pytest.mark.parametrize(("content", "headers"), CASES)
async def test_answers_exactly_as_fastapi_does(content: bytes, headers: dict[str, str]) -> None:
    plain, fast = await both(content, {**headers, "x-probe": "p"})
    assert (fast.status_code, fast.content) == (plain.status_code, plain.content)
    assert fast.headers.get("content-type") == plain.headers.get("content-type")
    assert fast.headers.get("x-seen") == plain.headers.get("x-seen")


async def test_a_valid_request_skips_fastapis_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastapi.routing

    async def refuse(**_: object) -> None:
        raise AssertionError("FastAPI's dependency solving ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", refuse)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(JsonRoute)),
                                 base_url="http://t") as http:
        ok = await http.post("/run", json={"input": {"steps": 3}})
        assert ok.status_code == 200 and ok.json()["input"]["steps"] == 3
        with pytest.raises(AssertionError, match="dependency solving"):
            await http.post("/run", json={"input": {"steps": 0}})  # invalid: FastAPI's handler


CALLS: list[str] = []


async def dependency(request: Request) -> str:
    CALLS.append(request.url.path)
    return "dep"


async def with_dependency(request: Request, body: Envelope,
                          value: Annotated[str, Depends(dependency)]) -> Response:
    return Response(value)


async def test_an_endpoint_with_dependencies_keeps_fastapis_handler() -> None:
    CALLS.clear()
    app = FastAPI()
    router = APIRouter(route_class=JsonRoute)
    router.add_api_route("/with-dep", with_dependency, methods=["POST"])
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        r = await http.post("/with-dep", json={"input": {"steps": 1}})
    assert (r.status_code, r.text, CALLS) == (200, "dep", ["/with-dep"])


class WithImage(BaseModel):
    image: str | None = None


class MediaEnvelope(BaseModel):
    input: WithImage


SEEN: list[str] = []


async def run_media(request: Request, body: MediaEnvelope) -> Response:
    SEEN.append(body.input.image or "")
    return Response("ok")


async def test_multipart_requests_still_reach_the_fast_handler_as_json(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import fastapi.routing

    async def refuse(**_: object) -> None:
        raise AssertionError("FastAPI's dependency solving ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", refuse)
    SEEN.clear()
    app = FastAPI()
    app.state.settings = SimpleNamespace(max_body_size=1 << 20)
    install_handlers(app)
    router = APIRouter()
    router.add_api_route("/m", run_media, methods=["POST"],
                         route_class_override=media_route(frozenset({"image"}), JsonRoute))
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        r = await http.post("/m", files={"input.image": ("a.png", b"\x89PNG", "image/png")},
                            data={"input": "{}"})
    assert r.status_code == 200, r.text
    assert len(SEEN) == 1 and SEEN[0]  # the part, named in the JSON envelope

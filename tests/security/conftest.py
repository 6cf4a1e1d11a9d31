"""Fixtures for guard tests: a loopback server and a way to prove no connection was attempted."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator

import httpx
import pytest

from .loopback import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


WATCHED = contextvars.ContextVar("no_connections_watched", default=False)


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any request the test makes that reaches httpx's send (i.e. would open a
    connection). Only the test's own: tasks started before it (the probes of a session-wide
    server's supervisor, say) started in a context without the mark and go through."""
    attempts: list[str] = []
    send = httpx.AsyncClient.send

    async def refuse(self: httpx.AsyncClient, request: httpx.Request, **kwargs: object) -> object:
        if not WATCHED.get():
            return await send(self, request, **kwargs)
        attempts.append(str(request.url))
        raise AssertionError(f"a connection was attempted to {request.url}")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    token = WATCHED.set(True)
    yield attempts
    WATCHED.reset(token)

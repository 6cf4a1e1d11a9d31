"""Fixtures for guard tests: a loopback server and a way to prove no connection was attempted."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .loopback import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any request that reaches httpx's send (i.e. would open a connection)."""
    attempts: list[str] = []

    async def refuse(self: httpx.AsyncClient, request: httpx.Request, **kwargs: object) -> None:
        attempts.append(str(request.url))
        raise AssertionError(f"a connection was attempted to {request.url}")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    return attempts

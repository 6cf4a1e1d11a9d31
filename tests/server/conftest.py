"""Server fixtures: an app attached to the session ComfyUI, and a factory for variants."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings

from .helpers import running, settings_for
from .server_workflows import registry


@pytest.fixture(scope="session")
def make_settings(comfyui: ComfyUIProcess) -> Callable[..., Settings]:
    """`make_settings(**overrides)`: settings attached to the session ComfyUI."""
    return functools.partial(settings_for, comfyui)


@pytest.fixture(scope="session")
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """The app attached to the session ComfyUI, with the test registry."""
    async with running(create_app(make_settings(), registry())) as http:
        yield http

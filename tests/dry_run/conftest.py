"""A server on the session ComfyUI with the server tests' workflows and the broken ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from tests.server.helpers import running, settings_for
from tests.server.server_workflows import registry

from .broken_workflows import registry as broken


@pytest.fixture(scope="session")
async def api(comfyui: ComfyUIProcess) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(comfyui, media_max_pixels=256 * 256)
    async with running(create_app(settings, {**registry(), **broken()})) as http:
        yield http

"""Fixtures for the ComfyUI client tests: a client on the session ComfyUI, and a cuttable proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.launcher import ComfyUIProcess
from tests.comfyui_testing import TcpProxy


@pytest.fixture
async def client(comfyui: ComfyUIProcess) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(comfyui.url) as c:
        await c.wait_connected()
        yield c


@pytest.fixture
async def proxy(comfyui: ComfyUIProcess) -> AsyncIterator[TcpProxy]:
    p = await TcpProxy(comfyui.host, comfyui.port).start()
    yield p
    await p.stop()

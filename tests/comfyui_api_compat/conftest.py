"""Fixtures of the comfyui-api compatibility suite: apps attached to the session ComfyUI (the
helpers of tests/server), a media server on 127.0.0.2 and a webhook receiver."""

from __future__ import annotations

import functools
import io
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings
from tests.server.helpers import running, settings_for
from tests.server.media_server import MediaServer
from tests.server.webhook_receiver import Receiver


def image_bytes(color: tuple[int, int, int], size: tuple[int, int] = (8, 6),
                fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    fill = (*color, 0) if mode == "RGBA" else color
    Image.new(mode, size, fill).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_settings(comfyui: ComfyUIProcess) -> Callable[..., Settings]:
    return functools.partial(settings_for, comfyui)


@pytest.fixture(scope="module")
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """comfygen as a comfyui-api deployment would configure it; small media limits."""
    settings = make_settings(media_max_bytes=200_000, media_max_pixels=250_000)
    async with running(create_app(settings, {})) as http:
        yield http


@pytest.fixture(scope="module")
def media_server() -> Iterator[MediaServer]:
    server = MediaServer("127.0.0.2").start()
    server.routes["/red.png"] = lambda h: (200, {"Content-Type": "image/png"},
                                           image_bytes((250, 0, 0)))
    yield server
    server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = await Receiver().start()
    yield hook
    await hook.stop()

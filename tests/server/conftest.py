"""Server fixtures: an app attached to the session ComfyUI, and a factory for variants."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from server.settings import Settings

from .helpers import SECRET, running
from .server_workflows import registry


@pytest.fixture(scope="session")
def make_settings(comfyui: ComfyUIProcess) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "comfyui_url": comfyui.url, "comfyui_output_dir": comfyui.base_dir / "output",
            "comfyui_temp_dir": comfyui.base_dir / "temp", "webhook_secret": SECRET,
            "webhook_allow_cidrs": "127.0.0.0/8", "media_allow_cidrs": "127.0.0.0/8",
            "webhook_backoff": 0.2, "object_info_ttl": 30,
            "jobs_db": Path(tempfile.mkdtemp(prefix="comfygen-jobs-")) / "jobs.sqlite3",
        }
        values.update(overrides)
        return Settings(**values)
    return make


@pytest.fixture(scope="session")
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """The app attached to the session ComfyUI, with the test registry."""
    async with running(create_app(make_settings(), registry())) as http:
        yield http

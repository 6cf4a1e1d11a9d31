"""A live server on the session ComfyUI, its /openapi.json, and the pinned client generators
that scripts/setup.sh installs into .cache/client-tools (missing: the tests fail, never skip)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from tests.jobs_api.live import live, settings_for
from tests.server.server_workflows import registry

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "client-tools"


def tool(path: str) -> Path:
    found = TOOLS / path
    if not found.exists():
        pytest.fail(f"{found} is missing: run `scripts/setup.sh test` (it installs the pinned "
                    "client generators into .cache/client-tools)")
    return found


@pytest.fixture(scope="module")
async def server(comfyui: ComfyUIProcess) -> AsyncIterator[str]:
    async with live(create_app(settings_for(comfyui), registry())) as url:
        yield url


@pytest.fixture(scope="module")
async def openapi_file(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The live document (enums from the running ComfyUI), as a client author downloads it."""
    async with httpx.AsyncClient(base_url=server) as http:
        doc: dict[str, Any] = (await http.get("/openapi.json")).json()
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path

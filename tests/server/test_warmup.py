"""The optional warmup workflow runs before the server reports ready; a warmup that fails keeps
it unready (with the reason) instead of being skipped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app

from .helpers import running, settings_for
from .server_workflows import registry


def warmup_file(tmp_path: Path, width: int, prefix: str) -> Path:
    graph = {"1": {"class_type": "EmptyImage",
                   "inputs": {"width": width, "height": 8, "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": prefix}}}
    path = tmp_path / "warmup.json"
    path.write_text(json.dumps(graph))
    return path


async def test_warmup_runs_before_ready(comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    prefix = f"warmup-{tmp_path.name}"
    settings = settings_for(comfyui, warmup_workflow=warmup_file(tmp_path, 8, prefix))
    async with running(create_app(settings, registry())) as http:
        assert (await http.get("/ready")).status_code == 200
        history = httpx.get(f"{comfyui.url}/history", params={"max_items": 50}).json()
    prefixes = [node["inputs"].get("filename_prefix") for entry in history.values()
                for node in entry["prompt"][2].values()]
    assert prefix in prefixes


async def test_failing_warmup_keeps_the_server_unready(comfyui: ComfyUIProcess,
                                                       tmp_path: Path) -> None:
    settings = settings_for(comfyui, warmup_workflow=warmup_file(tmp_path, 0, "never"))
    async with running(create_app(settings, registry()), ready=False) as http:
        for _ in range(30):  # 3 s: long enough for the supervisor's watch to have looked again
            ready = await http.get("/ready")
            assert ready.status_code == 503
            await asyncio.sleep(0.1)
        body = ready.json()
        assert "startup failed" in body["reason"] and "width" in body["reason"], body
        health = await http.get("/health")
        assert health.status_code == 503

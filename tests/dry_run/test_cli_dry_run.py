"""`comfygen run --dry-run` against a live server on the real ComfyUI."""

from __future__ import annotations

import json

import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from server.app import create_app
from tests.cli_run.test_run import comfygen
from tests.jobs_api.live import live, settings_for
from tests.server.server_workflows import registry

from .broken_workflows import registry as broken

pytestmark = pytest.mark.comfyui


async def test_run_dry_run(comfyui: ComfyUIProcess) -> None:
    async with live(create_app(settings_for(comfyui), {**registry(), **broken()})) as url:
        code, out, err = await comfygen("run", "test/invert", "-i", "size=4", "--dry-run",
                                        "--json", "--server", url)
        assert code == 0, err
        result = json.loads(out)
        assert result["valid"] is True and result["input"]["size"] == 4
        assert isinstance(result["input"]["seed"], int)
        assert result["prompt"]["1"]["inputs"]["width"] == 4

        code, out, err = await comfygen("run", "test/invert", "--dry-run", "--server", url)
        assert code == 0 and "valid" in err and '"seed"' in out, err

        code, out, err = await comfygen("run", "broken/range", "-i", "size=20000", "--dry-run",
                                        "--server", url)
        assert code == 1 and "HTTP 400" in err and "bigger than max" in err, err
        code, out, err = await comfygen("run", "test/ckpt", "--dry-run", "--server", url)
        assert code == 1 and "HTTP 424" in err and "model.safetensors" in err, err

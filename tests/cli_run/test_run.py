"""`comfygen run` against a live server on the real ComfyUI: progress, files, --json, errors."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from comfygen.remote import parse_inputs
from server.app import create_app
from tests.jobs_api.live import live, settings_for
from tests.server.server_workflows import registry

pytestmark = pytest.mark.comfyui
ROOT = Path(__file__).resolve().parents[2]


async def comfygen(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfygen", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, stdout.decode(), stderr.decode()


def test_parse_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    assert parse_inputs(["steps=20", "prompt=a cat", "ok=true", "n=null", "img=@a.png",
                         'list=[1, 2]', 'text="123"'], base=tmp_path) == {
        "steps": 20, "prompt": "a cat", "ok": True, "n": None,
        "img": "data:image/png;base64,iVBORw==", "list": [1, 2], "text": "123"}


async def test_run_writes_images(comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), (20, 120, 220)).save(photo)
    async with live(create_app(settings_for(comfyui, api_key="cli-key"), registry())) as url:
        code, out, err = await comfygen(
            "run", "test/scale", "--input", f"image=@{photo}", "-i", "width=10", "-i",
            "height=6", "--out", str(tmp_path / "out"), "--json", "--server", url,
            "--api-key", "cli-key")
        assert code == 0, err
        result = json.loads(out)
        assert result["state"] == "succeeded" and result["error"] is None
        written = Path(result["files"][0])
        assert written.parent == tmp_path / "out"
        img = Image.open(io.BytesIO(written.read_bytes())).convert("RGB")
        assert img.size == (10, 6) and img.getpixel((1, 1)) == (20, 120, 220)

        code, out, err = await comfygen(
            "run", "test/invert", "-i", "size=4", "--out", str(tmp_path / "human"),
            "--server", url, "--api-key", "cli-key")
        assert code == 0, err
        assert "wrote" in out and len(list((tmp_path / "human").glob("*.png"))) == 1

        code, out, err = await comfygen("run", "test/invert", "-i", "size=0", "-i", "nope=1",
                                        "--server", url, "--api-key", "cli-key")
        assert code == 1 and "HTTP 422" in err and "input.size" in err and "input.nope" in err
        code, out, err = await comfygen("run", "test/invert", "--server", url, "--json")
        assert code == 1 and json.loads(out)["status"] == 401
        code, out, err = await comfygen("run", "test/nothing", "--server", url,
                                        "--api-key", "cli-key")
        assert code == 1 and "HTTP 404" in err

        code, out, err = await comfygen(  # out of range: the 422 names the field
            "run", "test/scale", "-i", f"image=@{photo}", "-i", "width=99999", "--server", url,
            "--api-key", "cli-key")
        assert code == 1 and "422" in err and "input.width" in err
    code, out, err = await comfygen("run", "test/invert", "--server",
                                    f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "cannot reach the comfygen server" in err

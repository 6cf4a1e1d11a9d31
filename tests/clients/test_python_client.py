"""openapi-python-client makes a working, typed client from the live /openapi.json."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from .conftest import ROOT, tool

pytestmark = pytest.mark.comfyui
CALLER = Path(__file__).with_name("caller.py")


async def test_generated_python_client_calls_the_endpoints(server: str, openapi_file: Path,
                                                     tmp_path: Path) -> None:
    generator = tool("venv/bin/openapi-python-client")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"project_name_override": "comfygen-client",
                                  "package_name_override": "comfygen_client"}))
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}  # its ruff
    made = subprocess.run(
        [str(generator), "generate", "--path", str(openapi_file), "--config", str(config),
         "--meta", "none", "--output-path", str(tmp_path / "comfygen_client")],
        capture_output=True, text=True, timeout=180, env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout, made.stdout  # every schema and operation generated
    api = tmp_path / "comfygen_client" / "api"
    assert (api / "sd3_5_medium" / "sd35_medium_txt2img.py").exists()
    assert (api / "jobs" / "get_job.py").exists()  # readable names for every operation
    # Run the caller with the generator's interpreter: httpx and attrs, not comfygen.
    # (The server runs in this event loop: the caller runs beside it, not blocking it.)
    proc = await asyncio.create_subprocess_exec(
        str(generator.parent / "python"), str(CALLER), server, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**env, "PYTHONPATH": str(tmp_path)})
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, (stdout + stderr).decode()
    out = json.loads(stdout.decode().strip().splitlines()[-1])
    assert "sd3.5_medium.safetensors" in out["missing"]
    with Image.open(io.BytesIO(base64.b64decode(out["image"]))) as img:
        assert img.convert("RGB").getpixel((0, 0)) == (0xEF, 0xDF, 0xCF)  # inverted 0x102030

"""The seed recipe's curl request, unchanged but for size and steps, against comfygen's built-in
`/workflow/sd3.5-medium/txt2img` endpoint: a real `comfygen serve` process attached to a real
ComfyUI that has random-weight SD3.5 Medium files (tests/e2e/conftest.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BODY = {"input": {"prompt": "a leafy green spaceship from the distant future", "steps": 2,
                  "width": 256, "height": 256}}


def test_seed_curl_request_returns_a_256_png(sd35_comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "comfygen", "serve", "--port", str(port),
         "--comfyui-url", sd35_comfyui.url],
        cwd=ROOT, env={**os.environ, "COMFYGEN_REQUEST_TIMEOUT": "1200",
                      "COMFYGEN_JOBS_DB": str(tmp_path / "jobs.sqlite3")},
        stdout=open(tmp_path / "server.log", "wb"), stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        started = time.monotonic()
        curl = subprocess.run(
            ["curl", "-sS", "-X", "POST", f"{url}/workflow/sd3.5-medium/txt2img",
             "-H", "accept: application/json", "-H", "Content-Type: application/json",
             "-d", json.dumps(BODY)],
            capture_output=True, timeout=1500, check=True,
        )
        elapsed = time.monotonic() - started
        body = json.loads(curl.stdout)
        assert "images" in body, body
        png = base64.b64decode(body["images"][0])  # jq -r '.images[0]' | base64 -d
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        image = Image.open(io.BytesIO(png))
        assert image.size == (256, 256)
        assert body["input"]["steps"] == 2 and isinstance(body["input"]["seed"], int)
        print(f"SD3.5 256x256, 2 steps through comfygen: {elapsed:.1f}s")
    finally:
        server.terminate()
        server.wait(60)

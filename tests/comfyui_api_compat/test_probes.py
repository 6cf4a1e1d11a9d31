"""comfyui-api README "Probes" and "Download and Use": a container definition written for
comfyui-api (its variable names: `PORT`, `HOST`, `MAX_QUEUE_DEPTH`, `MAX_BODY_SIZE_MB`, `CMD`, ...)
starts `comfygen serve` unchanged, `/health` and `/ready` answer as comfyui-api's do, and the
variables comfygen has no meaning for are named in one warning line.

The probes' states (starting, ComfyUI down, queue full) are tested in tests/server/test_api.py
and tests/server/test_faults.py; the aliases one by one in test_configuration.py.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from tests.conftest import ROOT
from tests.serving import serving

pytestmark = pytest.mark.comfyui


def test_a_comfyui_api_container_definition_serves(comfyui: ComfyUIProcess,
                                                   tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFYGEN_")}
    env.update({
        "PYTHONPATH": str(ROOT),  # this checkout's comfygen, as the other server tests run it
        "COMFYGEN_COMFYUI_URL": comfyui.url,
        "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "INFO",
        "MAX_QUEUE_DEPTH": "0", "MAX_BODY_SIZE_MB": "1", "PROMPT_WEBHOOK_RETRIES": "2",
        "CMD": "init.sh", "COMFY_HOME": "/opt/ComfyUI", "MARKDOWN_SCHEMA_DESCRIPTIONS": "true",
        "SYSTEM_META_batch": "abc", "COMFYGEN_KEEP_ALIVE_TIMEOUT": "1",
    })
    argv = [sys.executable, "-m", "comfygen", "serve", "--root", str(ROOT)]
    with serving(argv, tmp_path, env, port) as url:  # PORT and HOST were honoured
        health = httpx.get(url + "/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "healthy"
        ready = httpx.get(url + "/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        big = httpx.post(url + "/prompt", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                         headers={"Content-Type": "application/json"}, timeout=30)
        assert big.status_code == 413  # MAX_BODY_SIZE_MB=1
        assert 0.5 < idle_close(port) < 4  # COMFYGEN_KEEP_ALIVE_TIMEOUT=1 (uvicorn's default: 5)
    log = (tmp_path / f"serve-{port}.log").read_text()
    warnings = [line for line in log.splitlines() if "ignoring comfyui-api environment" in line]
    assert len(warnings) == 1, log
    assert "CMD, COMFY_HOME, MARKDOWN_SCHEMA_DESCRIPTIONS" in warnings[0]
    assert "PORT" not in warnings[0] and "MAX_QUEUE_DEPTH" not in warnings[0]


def idle_close(port: int) -> float:
    """Seconds from a keep-alive response until the server closes the idle connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = None
        while sock.recv(65536):
            answered = answered or time.monotonic()
        assert answered is not None, "no answer"
        return time.monotonic() - answered

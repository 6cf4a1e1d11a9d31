"""The built-in SD3.5 Medium example, end to end on CPU, against a real ComfyUI.

Random-weight model files (scripts/make_sd35_fixtures.py) that ComfyUI detects as SD3.5 Medium;
the unchanged graph at 256x256 and 2 steps, submitted straight to ComfyUI's /prompt. Slow: the
first run writes ~6.6 GB of fixtures once (cached), and the cold prompt loads a 4.76B-parameter
T5 on CPU (about 14 GB peak RSS, one to three minutes depending on machine load).

    pytest -m slow tests/e2e/test_sd35_cpu.py
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from comfygen.comfy.launcher import ComfyUIProcess

pytestmark = [pytest.mark.slow, pytest.mark.comfyui, pytest.mark.timeout(1800)]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_TIMEOUT = 900.0
# Lines ComfyUI logs when a file does not match the architecture it built for it.
DETECTION_PROBLEMS = (
    "clip missing",
    "unet missing",
    "Missing VAE keys",
    "no match {",
    "not a checkpoint file",
    "unet unexpected",
)


@dataclass
class Run:
    prompt_id: str
    status: str
    seconds: float
    images: list[bytes]
    history: dict[str, Any]


def run_prompt(comfy: ComfyUIProcess, graph: dict[str, Any], timeout: float = RUN_TIMEOUT) -> Run:
    """POST /prompt, follow the websocket until ComfyUI closes the prompt (falling back to
    /history if a message is missed), then fetch every output image through /view."""
    client_id = uuid.uuid4().hex
    ws_url = f"ws://{comfy.host}:{comfy.port}/ws?clientId={client_id}"
    with (
        httpx.Client(base_url=comfy.url, timeout=60) as http,
        connect(ws_url, max_size=None, open_timeout=30) as ws,
    ):
        started = time.monotonic()
        resp = http.post("/prompt", json={"prompt": graph, "client_id": client_id})
        assert resp.status_code == 200, resp.text
        prompt_id = resp.json()["prompt_id"]
        deadline = started + timeout
        entry: dict[str, Any] | None = None
        while entry is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prompt {prompt_id} not done after {timeout}s:\n{comfy.log_tail()}"
                )
            if comfy.proc is not None and comfy.proc.poll() is not None:
                raise RuntimeError(
                    f"ComfyUI exited with {comfy.proc.returncode} (out of memory? "
                    f"the cold run peaks near 14 GB):\n{comfy.log_tail()}"
                )
            try:
                message = ws.recv(timeout=5)
            except TimeoutError:
                message = None
            if isinstance(message, str):
                data = json.loads(message)
                body = data.get("data") or {}
                closes = (
                    data.get("type") == "executing"
                    and body.get("node") is None
                    and body.get("prompt_id") == prompt_id
                )
                if not closes:
                    continue
            elif message is not None:
                continue  # binary preview frame
            # Closing message seen, or quiet for 5 s: the history entry tells.
            history = http.get(f"/history/{prompt_id}").json()
            if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
                if history[prompt_id]["status"]["status_str"] in ("success", "error"):
                    entry = history[prompt_id]
        seconds = time.monotonic() - started
        images = []
        for output in entry.get("outputs", {}).values():
            for ref in output.get("images", []):
                got = http.get(
                    "/view",
                    params={
                        "filename": ref["filename"],
                        "subfolder": ref["subfolder"],
                        "type": ref["type"],
                    },
                )
                assert got.status_code == 200, (ref, got.status_code)
                images.append(got.content)
    return Run(prompt_id, entry["status"]["status_str"], seconds, images, entry)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def error_messages(run: Run) -> str:
    return json.dumps(run.history.get("status", {}).get("messages", []), indent=1)[-4000:]


def test_sd35_txt2img_on_cpu_returns_a_256px_png(
    sd35_comfyui: ComfyUIProcess, sd35_graph: Callable[..., dict[str, Any]]
) -> None:
    run = run_prompt(sd35_comfyui, sd35_graph(width=256, height=256, steps=2))
    assert run.status == "success", error_messages(run)
    assert len(run.images) == 1
    assert png_size(run.images[0]) == (256, 256)

    log = (sd35_comfyui.base_dir / "comfyui.log").read_text(errors="replace")
    problems = [line for line in log.splitlines() if any(p in line for p in DETECTION_PROBLEMS)]
    assert not problems, "ComfyUI did not load the fixtures cleanly:\n" + "\n".join(problems)
    assert "model_type FLOW" in log  # SD3 family detected (rectified flow)


def test_sd35_same_seed_same_bytes(
    sd35_comfyui: ComfyUIProcess, sd35_graph: Callable[..., dict[str, Any]]
) -> None:
    """Seed A, seed B, seed A again: the sampler and VAE really re-run for the last one (ComfyUI
    only caches the latest outputs), and it must give the first run's bytes."""
    seed_a, seed_b = 998428620595727, 1
    first = run_prompt(sd35_comfyui, sd35_graph(seed=seed_a))
    other = run_prompt(sd35_comfyui, sd35_graph(seed=seed_b))
    again = run_prompt(sd35_comfyui, sd35_graph(seed=seed_a))
    for run in (first, other, again):
        assert run.status == "success", error_messages(run)
        assert png_size(run.images[0]) == (256, 256)
    assert again.images[0] == first.images[0]
    assert other.images[0] != first.images[0]

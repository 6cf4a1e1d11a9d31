"""`comfygen serve` with COMFYGEN_MODELS_PULL (a real server subprocess attached to the session
ComfyUI): `before_start` keeps /ready at 503 until the files are in place; `background` answers
503 + Retry-After for a request whose file is still downloading, 424 for one nobody fetches."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.comfy.launcher import ComfyUIProcess
from tests.models.conftest import checkpoint_graph, sha, write_manifest
from tests.models.file_server import FileServer, Served
from tests.security.loopback import free_port
from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]
DATA = os.urandom(2 * 1024 * 1024)


@pytest.fixture
def pulled(project: Path, files: FileServer, comfyui: ComfyUIProcess,
           tmp_path: Path) -> Iterator[tuple[Path, Path, threading.Event]]:
    """The project with demo/ckpt (its file in the manifest, held halfway by the file server
    until the event is set) and demo/other (a file nobody fetches); the file's final path in
    the session ComfyUI's models folder, removed after the test."""
    folder = f"comfygen-models-test-{uuid.uuid4().hex[:8]}"
    name = f"{folder}/tiny.safetensors"
    for path, ckpt in (("demo/ckpt", name), ("demo/other", f"{folder}/nobody.safetensors")):
        graph = tmp_path / f"{path.replace('/', '-')}.json"
        graph.write_text(json.dumps(checkpoint_graph(ckpt)))
        result = CliRunner().invoke(app, ["add-workflow", path, str(graph), "--root",
                                          str(project)])
        assert result.exit_code == 0, result.output
    hold = threading.Event()
    files.files["/tiny.safetensors"] = Served(DATA, hold=hold)
    write_manifest(project, [{"folder": "checkpoints", "file": name, "sha256": sha(DATA),
                              "url": files.url("/tiny.safetensors")}])
    target = comfyui.base_dir / "models/checkpoints" / name
    try:
        yield project, target, hold
    finally:
        hold.set()
        shutil.rmtree(target.parent, ignore_errors=True)


def serve_env(project: Path, comfyui: ComfyUIProcess, mode: str, port: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(project), str(ROOT))),
            "COMFYGEN_PORT": str(port), "COMFYGEN_COMFYUI_URL": comfyui.url,
            "COMFYGEN_MODELS_PULL": mode,
            "COMFYGEN_MODELS_DIR": str(comfyui.base_dir / "models")}


def wait_for(check, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.comfyui
def test_before_start_gates_ready(pulled: tuple[Path, Path, threading.Event],
                                  comfyui: ComfyUIProcess) -> None:
    project, target, hold = pulled
    port = free_port()
    argv = [str(ROOT / ".venv/bin/comfygen"), "serve", "--root", str(project)]
    with serving(argv, project, serve_env(project, comfyui, "before_start", port), port,
                 until="/health") as url:
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 503, ready.text
        assert ready.headers["Retry-After"]
        reason = ready.json()["reason"]
        assert reason.startswith("model files not ready: checkpoints/comfygen-models-test-")
        assert "tiny.safetensors (downloading" in reason
        assert not target.exists()  # never half a file under its name
        hold.set()
        wait_for(lambda: httpx.get(url + "/ready").status_code == 200)
        assert target.read_bytes() == DATA
        listed = httpx.get(url + "/models").json()["checkpoints"]
        assert str(target.relative_to(comfyui.base_dir / "models/checkpoints")) in listed


@pytest.mark.comfyui
def test_background_answers_503_while_downloading(pulled: tuple[Path, Path, threading.Event],
                                                  comfyui: ComfyUIProcess) -> None:
    project, target, hold = pulled
    port = free_port()
    argv = [str(ROOT / ".venv/bin/comfygen"), "serve", "--root", str(project)]
    with serving(argv, project, serve_env(project, comfyui, "background", port), port) as url:
        busy = httpx.post(url + "/workflow/demo/ckpt", json={"input": {}}, timeout=60)
        assert busy.status_code == 503, busy.text
        assert busy.headers["Retry-After"] == "5"
        body = busy.json()
        assert body["type"] == "models_downloading"
        assert "still downloading" in body["error"] and "tiny.safetensors" in body["error"]
        assert body["downloading"][0]["state"] == "downloading"
        job = httpx.post(url + "/workflow/demo/ckpt", json={"input": {}},
                         headers={"Prefer": "respond-async"}, timeout=60)
        assert job.status_code == 503, job.text  # refused, not accepted as a job bound to fail
        nobody = httpx.post(url + "/workflow/demo/other", json={"input": {}}, timeout=60)
        assert nobody.status_code == 424, nobody.text
        assert nobody.json()["type"] == "missing_model"
        hold.set()
        wait_for(target.exists)
        assert target.read_bytes() == DATA

"""Graphs built by generated code pass a real ComfyUI 0.3.75's own `/prompt` validation.

ComfyUI validates model names against the files it finds, so the SD3.5 test gives it empty
placeholder files (validation only looks at names; the run that follows fails to load them,
which is expected here and awaited so it does not leak into other tests).
"""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess
from tests.generator.helpers import import_module_text, render_case
from tests.repo_project import WORKFLOWS

CASES = Path(__file__).parents[1] / "cases"
SD35_FILES = (
    "checkpoints/sd3.5_medium.safetensors",
    "clip/clip_g.safetensors",
    "clip/clip_l.safetensors",
    "clip/t5xxl_fp8_e4m3fn.safetensors",
)


def submit(comfyui: ComfyUIProcess, graph: dict) -> httpx.Response:
    return httpx.post(
        f"{comfyui.url}/prompt",
        json={"prompt": graph, "client_id": "tests", "prompt_id": str(uuid.uuid4())},
        timeout=30,
    )


def wait_done(comfyui: ComfyUIProcess, prompt_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = httpx.get(f"{comfyui.url}/history/{prompt_id}", timeout=10).json().get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
            return entry
        time.sleep(0.1)
    raise TimeoutError(prompt_id)


@pytest.fixture
def sd35_placeholders(comfyui: ComfyUIProcess):
    made = []
    for rel in SD35_FILES:
        path = comfyui.base_dir / "models" / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            made.append(path)
    yield
    for path in made:
        path.unlink(missing_ok=True)


def test_sd35_default_request_passes_validation(comfyui: ComfyUIProcess, sd35_placeholders) -> None:
    graph = WORKFLOWS["sd3.5-medium/txt2img"].build({"prompt": "a leafy green spaceship"})
    response = submit(comfyui, graph)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node_errors"] == {}
    entry = wait_done(comfyui, body["prompt_id"])
    # Empty placeholder weights cannot load: the failure is at execution, not validation.
    assert entry["status"]["status_str"] == "error"


def test_sd35_unknown_sampler_is_what_comfyui_rejects(
    comfyui: ComfyUIProcess, sd35_placeholders
) -> None:
    workflow = WORKFLOWS["sd3.5-medium/txt2img"]
    graph = workflow.build(workflow.input_model(prompt="x", sampler_name="warp_drive"))
    response = submit(comfyui, graph)
    assert response.status_code == 400
    errors = response.json()["node_errors"]["294"]["errors"]
    assert [(e["type"], e["extra_info"]["input_name"]) for e in errors] == [
        ("value_not_in_list", "sampler_name")
    ]


def test_without_model_files_comfyui_names_the_missing_checkpoint(comfyui: ComfyUIProcess) -> None:
    graph = WORKFLOWS["sd3.5-medium/txt2img"].build({"prompt": "x"})
    response = submit(comfyui, graph)
    assert response.status_code == 400
    node_errors = response.json()["node_errors"]
    assert node_errors["4"]["errors"][0]["extra_info"]["input_name"] == "ckpt_name"


@pytest.mark.parametrize("case", ["image_pipeline", "multi_target", "tricky_strings",
                                  "old_api_export"])
def test_model_free_cases_run_to_success(comfyui: ComfyUIProcess, case: str) -> None:
    ir, text = render_case(CASES / case)
    workflow = import_module_text(text).WORKFLOW
    if case == "image_pipeline":
        buf = io.BytesIO()
        Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, "PNG")
        (comfyui.base_dir / "input" / "example.png").write_bytes(buf.getvalue())
    data = workflow.input_model()
    response = submit(comfyui, workflow.build(data))
    assert response.status_code == 200, response.text
    entry = wait_done(comfyui, response.json()["prompt_id"])
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert set(entry["outputs"]) >= set(workflow.outputs)
    if case == "tricky_strings":  # the exact text reached ComfyUI and came back out
        assert entry["outputs"]["2"]["text"] == [data.text]

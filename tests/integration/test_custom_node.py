"""A custom node works with no change to comfygen: refresh node definitions from the live
ComfyUI (which loaded tests/fixtures/custom_nodes), add a workflow using it, serve the result."""

from __future__ import annotations

import json
import shutil
import time

import httpx
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.comfy.launcher import ComfyUIProcess
from tests.generator.helpers import ROOT, import_module_text

GRAPH = {
    "1": {"class_type": "ComfygenTestPattern",
          "inputs": {"width": 64, "height": 48, "pattern": "stripes", "intensity": 0.5,
                     "invert": False, "label": "hi"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "custom"}},
}
SPEC = """
summary: Test pattern from a custom node
inputs:
  width: {target: 1.width, le: 256}
  pattern: {target: 1.pattern}
  intensity: {target: 1.intensity}
  invert: {target: 1.invert}
"""


def test_custom_node_becomes_a_typed_endpoint(comfyui: ComfyUIProcess, tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.comfygen]\n")
    (tmp_path / "workflow_templates").mkdir()
    shutil.copy(ROOT / "workflow_templates/object_info.json", tmp_path / "workflow_templates")
    (tmp_path / "wf.json").write_text(json.dumps(GRAPH))
    (tmp_path / "wf.yaml").write_text(SPEC)
    runner = CliRunner()
    root = ["--root", str(tmp_path)]

    # The snapshot predates the custom node: generation names the unknown class.
    before = runner.invoke(app, ["add-workflow", "custom/pattern", str(tmp_path / "wf.json"),
                                 "--spec", str(tmp_path / "wf.yaml"), *root])
    assert before.exit_code == 1
    assert "unknown node class 'ComfygenTestPattern'" in before.output

    refreshed = runner.invoke(app, ["nodes", "refresh", "--url", comfyui.url, *root])
    assert refreshed.exit_code == 0, refreshed.output
    added = runner.invoke(app, ["add-workflow", "custom/pattern", str(tmp_path / "wf.json"),
                                "--spec", str(tmp_path / "wf.yaml"), *root])
    assert added.exit_code == 0, added.output

    module = import_module_text((tmp_path / "generated/custom/pattern.py").read_text())
    schema = module.Input.model_json_schema()["properties"]
    assert schema["width"].items() >= {"type": "integer", "minimum": 8, "maximum": 256, "default": 64,
                                    "description": "Image width in pixels."}.items()
    assert schema["intensity"]["type"] == "number" and schema["invert"]["type"] == "boolean"
    assert module.WORKFLOW.choices["pattern"].node_class == "ComfygenTestPattern"

    graph = module.WORKFLOW.build({"width": 32, "pattern": "checker", "invert": True})
    response = httpx.post(f"{comfyui.url}/prompt", json={"prompt": graph}, timeout=30)
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    for _ in range(300):
        entry = httpx.get(f"{comfyui.url}/history/{prompt_id}").json().get(prompt_id)
        if entry and entry["status"].get("completed"):
            break
        time.sleep(0.1)
    assert entry["status"]["status_str"] == "success"
    (image,) = entry["outputs"]["2"]["images"]
    png = httpx.get(f"{comfyui.url}/view", params=image).content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

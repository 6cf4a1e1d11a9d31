"""API exports saved before their nodes gained required inputs: the inputs are filled from the
node definitions' defaults, with a warning naming node, class, input and value.

The golden case is tests/cases/old_api_export (its default request runs in the real ComfyUI:
tests/integration/test_comfyui_accepts_generated_graphs.py); without the filling, ComfyUI 0.3.75
refuses that graph with `required_input_missing` (checked here against the real one).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.comfy.launcher import ComfyUIProcess
from comfygen.errors import Severity
from comfygen.workflow.api_format import validate_api_graph
from comfygen.workflow.load import load_workflow
from comfygen.workflow.old_exports import fill_new_inputs
from tests.workflow.conftest import ROOT

OLD = ROOT / "tests/cases/old_api_export/workflow.json"


def test_missing_required_widgets_are_filled_with_a_warning_each(nodedefs):
    graph, problems = load_workflow(OLD, nodedefs)
    assert graph["1"]["inputs"]["color"] == 0
    assert graph["2"]["inputs"]["crop"] == "disabled"
    assert [(p.severity, p.file, p.node, p.input) for p in problems] == [
        (Severity.WARNING, str(OLD), "1", "color"), (Severity.WARNING, str(OLD), "2", "crop")]
    assert problems[0].message == ("EmptyImage requires 'color', which this older export lacks; "
                                   "filled with its default 0")
    assert "ImageScale requires 'crop'" in problems[1].message
    assert "'disabled'" in problems[1].message


def test_only_missing_required_widgets_with_a_default_are_filled(nodedefs):
    graph, _ = validate_api_graph({
        "1": {"class_type": "ImageInvert", "inputs": {}},  # a missing link: nothing to fill
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                     "color": 5}},  # complete: untouched
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
    }, nodedefs)
    warnings = fill_new_inputs(graph, nodedefs, "w.json")
    assert graph["1"]["inputs"] == {}
    assert graph["2"]["inputs"]["color"] == 5
    assert graph["3"]["inputs"]["filename_prefix"] == "ComfyUI"
    assert [(w.node, w.input) for w in warnings] == [("3", "filename_prefix")]


@pytest.mark.comfyui
def test_comfyui_refuses_the_old_export_as_saved(comfyui: ComfyUIProcess):
    """The reason for the filling: the raw old graph fails ComfyUI's own validation."""
    raw = json.loads(OLD.read_text("utf-8"))
    response = httpx.post(f"{comfyui.url}/prompt", timeout=30, json={
        "prompt": raw, "client_id": "tests", "prompt_id": str(uuid.uuid4())})
    assert response.status_code == 400
    errors = response.json()["node_errors"]
    assert {(node, e["type"], e["extra_info"]["input_name"])
            for node, entry in errors.items() for e in entry["errors"]} >= {
        ("2", "required_input_missing", "crop")}


def test_add_workflow_keeps_the_filled_graph_and_prints_the_warnings(tmp_path):
    project = tmp_path / "p"
    (project / "workflow_templates").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.comfygen]\ntemplates_dir = "workflow_templates"\noutput_dir = "generated"\n'
        'object_info = "workflow_templates/object_info.json"\n')
    shutil.copy(ROOT / "workflow_templates/object_info.json", project / "workflow_templates")
    result = CliRunner().invoke(app, ["add-workflow", "demo/old", str(OLD), "--root",
                                      str(project)])
    assert result.exit_code == 0, result.output
    assert f"warning: {OLD}, node 1, input 'color': EmptyImage requires 'color'" in result.output
    assert "node 2, input 'crop'" in result.output
    kept = json.loads(Path(project / "workflow_templates/demo/old.json").read_text("utf-8"))
    assert kept["2"]["inputs"]["crop"] == "disabled"
    # Generating again reads the filled graph: no warnings left.
    again = CliRunner().invoke(app, ["generate", "--root", str(project)])
    assert again.exit_code == 0 and "warning" not in again.output, again.output

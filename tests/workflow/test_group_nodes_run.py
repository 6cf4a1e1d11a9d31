"""A workflow with a legacy group node, added with `add-workflow`, gives an endpoint whose default
request real ComfyUI 0.3.75 validates and runs (fixtures/group_node_ui.json, model-free)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.comfy.client import ComfyClient
from comfygen.comfy.launcher import ComfyUIProcess
from tests.generator.helpers import import_module_text
from tests.workflow.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.comfyui


async def run(url: str, graph: dict):
    async with ComfyClient(url) as client:
        return await client.run(graph, timeout=120)


def test_group_node_endpoint_default_request_runs(comfyui: ComfyUIProcess, tmp_path: Path):
    project = tmp_path / "p"
    (project / "workflow_templates").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.comfygen]\ntemplates_dir = "workflow_templates"\noutput_dir = "generated"\n'
        'object_info = "workflow_templates/object_info.json"\n')
    shutil.copy(ROOT / "workflow_templates/object_info.json", project / "workflow_templates")
    added = CliRunner().invoke(app, ["add-workflow", "demo/grouped",
                                     str(FIXTURES / "group_node_ui.json"), "--root", str(project)])
    assert added.exit_code == 0, added.output
    module = import_module_text((project / "generated/demo/grouped.py").read_text("utf-8"))
    graph = module.WORKFLOW.build(module.WORKFLOW.input_model())
    assert {"3:0", "3:1", "3:2"} <= set(graph)
    result = asyncio.run(run(comfyui.url, graph))
    assert result.status["status_str"] == "success"
    assert set(result.outputs) == {"4", "5"}
    # ImageScale inside the group got the width the PrimitiveNode outside it sets (24 x 18).
    saved = result.outputs["5"]["images"][0]
    path = comfyui.base_dir / "output" / saved["subfolder"] / saved["filename"]
    assert Image.open(path).size == (24, 18)

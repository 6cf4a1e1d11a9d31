"""A throw-away project with one slow model-free workflow, `demo/slow`, whose spec the tests
edit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.comfyui_testing import slow_graph

ROOT = Path(__file__).resolve().parents[2]

SPEC = """summary: Slow blur
inputs:
  {name}:
    target: 1.color
    default: {default}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.comfygen]\ntemplates_dir = "workflow_templates"\noutput_dir = "generated"\n'
        'object_info = "workflow_templates/object_info.json"\n')
    templates = tmp_path / "workflow_templates"
    (templates / "demo").mkdir(parents=True)
    shutil.copy(ROOT / "workflow_templates/object_info.json", templates)
    (templates / "demo/slow.json").write_text(json.dumps(slow_graph(blurs=6)))
    (templates / "demo/slow.yaml").write_text(SPEC.format(name="color", default=1))
    return tmp_path



"""The CLI on a throw-away project: add-workflow (drafted and given specs), check, generate, list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from comfygen.cli import app

from .helpers import ROOT

CASES = Path(__file__).parents[1] / "cases"
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.comfygen]\ntemplates_dir = "workflow_templates"\noutput_dir = "generated"\n'
        'object_info = "workflow_templates/object_info.json"\n'
    )
    (tmp_path / "workflow_templates").mkdir()
    shutil.copy(ROOT / "workflow_templates/object_info.json", tmp_path / "workflow_templates")
    return tmp_path


def add_pipeline(project: Path):
    """Add tests/cases/image_pipeline as demo/pipeline (workflow and spec)."""
    return cli(
        project,
        "add-workflow",
        "demo/pipeline",
        str(CASES / "image_pipeline/workflow.json"),
        "--spec",
        str(CASES / "image_pipeline/spec.yaml"),
    )


def cli(project: Path, *args: str):
    return runner.invoke(app, [*args, "--root", str(project)])


def test_add_workflow_with_spec_then_check(project: Path) -> None:
    result = add_pipeline(project)
    assert result.exit_code == 0, result.output
    assert (project / "workflow_templates/demo/pipeline.json").exists()
    assert (project / "generated/demo/pipeline.py").exists()
    assert cli(project, "check").exit_code == 0
    listing = cli(project, "list")
    assert "POST /workflow/demo/pipeline" in listing.output


def test_add_workflow_drafts_a_spec(project: Path) -> None:
    result = cli(
        project,
        "add-workflow",
        "sd3.5-medium/txt2img",
        str(ROOT / "workflow_templates/sd3.5-medium/txt2img.json"),
    )
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load((project / "workflow_templates/sd3.5-medium/txt2img.yaml").read_text())
    targets = {name: f["target"] for name, f in spec["inputs"].items()}
    assert targets == {
        "checkpoint": "4.ckpt_name",
        "prompt": "6.text",
        "negative_prompt": "71.text",
        "width": "135.width",
        "height": "135.height",
        "batch_size": "135.batch_size",
        "seed": "294.seed",
        "steps": "294.steps",
        "cfg": "294.cfg",
        "sampler_name": "294.sampler_name",
        "scheduler": "294.scheduler",
        "denoise": "294.denoise",
    }
    assert spec["inputs"]["seed"]["default"] == "random"


def test_generated_registry_imports_and_builds(project: Path) -> None:
    add_pipeline(project)
    code = (
        "from comfygen.config import load_config; from comfygen.registry import load_workflows; "
        "import json; w = load_workflows(load_config())['demo/pipeline']; "
        "print(json.dumps(w.build({'width': 10})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["3"]["inputs"]["width"] == 10


def test_check_fails_when_generated_is_stale(project: Path) -> None:
    add_pipeline(project)
    spec = project / "workflow_templates/demo/pipeline.yaml"
    spec.write_text(spec.read_text().replace("le: 4096", "le: 2048", 1))
    result = cli(project, "check")
    assert result.exit_code == 1
    assert "stale: generated/demo/pipeline.py" in result.output
    assert cli(project, "generate").exit_code == 0
    assert cli(project, "check").exit_code == 0


def test_check_flags_leftover_generated_files(project: Path) -> None:
    add_pipeline(project)
    (project / "workflow_templates/demo/pipeline.json").unlink()
    (project / "workflow_templates/demo/pipeline.yaml").unlink()
    result = cli(project, "check")
    assert result.exit_code == 1 and "stale: generated/demo/pipeline.py" in result.output
    assert cli(project, "generate").exit_code == 0
    assert not (project / "generated/demo/pipeline.py").exists()


def test_failed_add_reports_every_error_and_leaves_nothing(project: Path) -> None:
    case = Path(__file__).parents[1] / "cases_errors/bad_targets"
    result = cli(
        project,
        "add-workflow",
        "demo/bad",
        str(case / "workflow.json"),
        "--spec",
        str(case / "spec.yaml"),
    )
    assert result.exit_code == 1
    assert "node 3: unknown node class 'MadeUpCustomNode'" in result.output
    assert "field 'missing_input', node 1, input 'depth'" in result.output
    assert "field 'linked', node 2, input 'image'" in result.output
    assert not (project / "workflow_templates/demo").exists()
    assert not (project / "generated/demo").exists()


def test_add_refuses_to_overwrite_and_bad_names(project: Path) -> None:
    wf = str(CASES / "image_pipeline/workflow.json")
    spec = str(CASES / "image_pipeline/spec.yaml")
    assert cli(project, "add-workflow", "demo/pipeline", wf, "--spec", spec).exit_code == 0
    again = cli(project, "add-workflow", "demo/pipeline", wf, "--spec", spec)
    assert again.exit_code == 1 and "--force" in again.output
    bad = cli(project, "add-workflow", "../evil/x", wf, "--spec", spec)
    assert bad.exit_code == 1 and "not a usable endpoint path segment" in bad.output
    assert not (project / "evil").exists()


def test_repository_generated_is_in_sync() -> None:
    assert runner.invoke(app, ["check", "--root", str(ROOT)]).exit_code == 0


def test_dynamic_prompts_generate_the_same_bytes_in_two_processes(project: Path) -> None:
    """`{a|b|c}` choices in a UI-format workflow are resolved at generation time: the same way in
    every process (else `comfygen check` would flip), with a warning that says so."""
    prompt = " ".join(f"{{a{i}|b{i}|c{i}}}" for i in range(8))
    workflow = {
        "nodes": [
            {"id": 1, "type": "EmptyImage", "widgets_values": [64, 64, 1, 0],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}]},
            {"id": 2, "type": "SaveImage", "widgets_values": ["dyn"],
             "inputs": [{"name": "images", "type": "IMAGE", "link": 1}]},
            {"id": 3, "type": "CLIPTextEncode", "widgets_values": [prompt]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
    }
    folder = project / "workflow_templates/demo"
    folder.mkdir()
    (folder / "dyn.json").write_text(json.dumps(workflow))
    (folder / "dyn.yaml").write_text("inputs:\n  width:\n    target: 1.width\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outputs = []
    for _ in range(2):
        shutil.rmtree(project / "generated", ignore_errors=True)
        proc = subprocess.run(
            [sys.executable, "-m", "comfygen", "generate", "--root", str(project)],
            capture_output=True, text=True, env=env,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "node 3, input 'text'" in proc.stderr and "resolved once" in proc.stderr
        generated = sorted((project / "generated").rglob("*"))
        outputs.append({p.relative_to(project): p.read_bytes() for p in generated if p.is_file()})
    assert outputs[0] == outputs[1]
    assert Path("generated/demo/dyn.py") in outputs[0]

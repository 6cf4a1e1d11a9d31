"""Code blocks in the docs are real: specs validate and resolve, commands exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.parser import parse
from comfygen.sources import WorkflowSource
from comfygen.spec.models import WorkflowSpec
from tests.generator.helpers import NODEDEFS, ROOT

DOCS = ROOT / "docs"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(name: str, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall((DOCS / name).read_text()) if kind == lang]


def test_spec_example_resolves_against_the_sd35_workflow() -> None:
    import json

    (example,) = blocks("spec.md", "yaml")
    spec = WorkflowSpec.model_validate(yaml.safe_load(example))
    wf = ROOT / "workflow_templates/sd3.5-medium/txt2img.json"
    source = WorkflowSource("sd3.5-medium", "txt2img", wf, Path("docs/spec.md"), ROOT)
    ir, problems = parse(source, json.loads(wf.read_text()), spec, NODEDEFS)
    assert ir is not None and not problems, problems
    assert [f.name for f in ir.fields] == ["prompt", "width", "seed", "sampler_name"]


@pytest.mark.parametrize("doc", ["spec.md", "../README.md"])
def test_documented_comfygen_commands_exist(doc: str) -> None:
    runner = CliRunner()
    for body in blocks(doc, "text") + blocks(doc, "sh"):
        for line in body.splitlines():
            line = line.split("#")[0].strip()
            if not re.match(r"^(\.venv/bin/)?comfygen ", line):
                continue
            words = shlex.split(line)[1:]
            command = [w for w in words if not w.startswith("-")][:2]
            path = command[:2] if command[0] == "nodes" else command[:1]
            result = runner.invoke(app, [*path, "--help"])
            assert result.exit_code == 0, f"{doc}: {line}: {result.output}"

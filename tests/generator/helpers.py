"""Build one workflow case (workflow + spec in a folder) with the library, as the CLI would."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from types import ModuleType

from comfygen.errors import Problem
from comfygen.generator import build_ir
from comfygen.ir import WorkflowIR
from comfygen.nodedefs import NodeDefs
from comfygen.render.code import render_workflow_module
from comfygen.sources import WorkflowSource

ROOT = Path(__file__).resolve().parents[2]
NODEDEFS = NodeDefs.load(ROOT / "workflow_templates" / "object_info.json")
_counter = itertools.count()


def case_source(case_dir: Path) -> WorkflowSource:
    workflow = case_dir / "workflow.json"
    return WorkflowSource("cases", case_dir.name, workflow, case_dir / "spec.yaml", ROOT)


def build_case(case_dir: Path) -> tuple[WorkflowIR | None, list[Problem]]:
    return build_ir(case_source(case_dir), NODEDEFS)


def import_module_text(text: str) -> ModuleType:
    """Import rendered module text under a fresh name (it only imports comfygen.runtime)."""
    name = f"_comfygen_case_{next(_counter)}"
    module = ModuleType(name)
    sys.modules[name] = module  # pydantic resolves the model's annotations through it
    exec(compile(text, f"<{name}>", "exec"), module.__dict__)
    return module


def render_case(case_dir: Path) -> tuple[WorkflowIR, str]:
    ir, problems = build_case(case_dir)
    assert ir is not None, "\n".join(map(str, problems))
    return ir, render_workflow_module(ir)

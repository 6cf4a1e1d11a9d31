"""Golden cases: tests/cases/<case>/{workflow.json, spec.yaml, expected/}. Regenerate with
`python tests/regen_golden.py` and review the diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfygen.render.schema import input_schema

from .helpers import render_case

CASES = sorted(p for p in (Path(__file__).parents[1] / "cases").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_module_matches_golden(case: Path) -> None:
    _, text = render_case(case)
    assert text == (case / "expected" / "module.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_schema_matches_golden(case: Path) -> None:
    ir, _ = render_case(case)
    expected = json.loads((case / "expected" / "input.schema.json").read_text(encoding="utf-8"))
    assert input_schema(ir) == expected


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rendering_is_deterministic(case: Path) -> None:
    assert render_case(case)[1] == render_case(case)[1]

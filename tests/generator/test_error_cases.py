"""Bad sources, one folder each under tests/cases_errors/: every problem is reported at once,
naming the file, field, node and input. The text is snapshotted in expected_errors.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfygen.errors import Severity

from .helpers import build_case

CASES = sorted(p for p in (Path(__file__).parents[1] / "cases_errors").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_errors_match_snapshot(case: Path) -> None:
    ir, problems = build_case(case)
    assert ir is None
    assert any(p.severity == Severity.ERROR for p in problems)
    text = "\n".join(map(str, problems)) + "\n"
    assert text == (case / "expected_errors.txt").read_text(encoding="utf-8")

"""Rewrite tests/cases/*/expected/ from the current generator. Review the diff before committing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generator.helpers import render_case  # noqa: E402

from comfygen.render.schema import input_schema  # noqa: E402

for case in sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir()):
    ir, text = render_case(case)
    expected = case / "expected"
    expected.mkdir(exist_ok=True)
    (expected / "module.py").write_text(text, encoding="utf-8")
    schema = json.dumps(input_schema(ir), indent=2, ensure_ascii=False) + "\n"
    (expected / "input.schema.json").write_text(schema, encoding="utf-8")
    print(f"wrote {expected}")

for case in sorted(p for p in (Path(__file__).parent / "cases_errors").iterdir() if p.is_dir()):
    from generator.helpers import build_case  # noqa: E402

    _, problems = build_case(case)
    (case / "expected_errors.txt").write_text("\n".join(map(str, problems)) + "\n")
    print(f"wrote {case / 'expected_errors.txt'}")

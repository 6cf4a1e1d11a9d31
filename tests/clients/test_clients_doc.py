"""docs/clients.md shows what the client tests run: its code is cut from their callers and its
commands use their flags."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import ROOT

DOC = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", DOC, re.S | re.M)
HERE = Path(__file__).parent


def test_code_blocks_are_cut_from_the_tested_callers() -> None:
    assert [kind for kind, _ in BLOCKS] == ["sh", "python", "sh", "ts", "sh"]
    callers = {"python": (HERE / "caller.py").read_text(), "ts": (HERE / "caller.ts").read_text()}
    for kind, body in BLOCKS:
        if kind in callers:
            assert body in callers[kind], body


def test_commands_use_the_tested_pins_and_flags() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    python_gen, _, ts_gen, _, run = (body for _, body in BLOCKS)
    assert "--meta none" in python_gen and "package_name_override" in python_gen
    pin = re.search(r"openapi-typescript@([\d.]+)", ts_gen)
    assert pin and f"openapi-typescript@{pin.group(1)}" in setup
    assert "--default-non-nullable false" in ts_gen
    assert "--default-non-nullable\", \"false\"" in (HERE / "test_typescript_client.py").read_text()
    assert "comfygen run" in run and "--dry-run" in run

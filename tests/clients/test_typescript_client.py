"""openapi-typescript makes TypeScript types from the live /openapi.json that type-check a small
caller with tsc, and reject a caller that breaks the contract."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import tool

pytestmark = pytest.mark.comfyui
CALLER = Path(__file__).with_name("caller.ts")
TSC = ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--lib",
       "es2022,dom", "--moduleResolution", "bundler"]


def tsc(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool("npm/node_modules/.bin/tsc")), *TSC, "caller.ts"],
                          cwd=folder, capture_output=True, text=True, timeout=180)


def test_typescript_types_check_a_caller(openapi_file: Path, tmp_path: Path) -> None:
    # Fields with a default are optional in a request: openapi-typescript's default
    # (--default-non-nullable) would make them required (openapi-ts/openapi-typescript#2012).
    made = subprocess.run(
        [str(tool("npm/node_modules/.bin/openapi-typescript")), str(openapi_file),
         "--default-non-nullable", "false", "-o", str(tmp_path / "schema.d.ts")],
        capture_output=True, text=True, timeout=180)
    assert made.returncode == 0, made.stdout + made.stderr
    schema = (tmp_path / "schema.d.ts").read_text()
    assert "sd35_medium_txt2img: {" in schema and "Sd35MediumTxt2imgInput: {" in schema
    assert '"euler"' in schema  # the sampler enum, live from ComfyUI
    shutil.copy(CALLER, tmp_path / "caller.ts")
    checked = tsc(tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # One run with three callers that break the contract: each line is refused.
    bad = {
        'sampler_name: "sideways"': "TS2322",  # not in the enum
        'steps: "20"': "TS2322",  # a string for an integer
        "steps: 20": "TS2741",  # the required prompt left out
    }
    lines = []
    for i, (field, code) in enumerate(bad.items()):
        prompt = "" if code == "TS2741" else 'prompt: "x", '
        lines.append(f"export const bad{i}: Request = {{ input: {{ {prompt}{field} }} }};")
    text = CALLER.read_text()
    (tmp_path / "caller.ts").write_text(text + "\n".join(lines) + "\n")
    broken = tsc(tmp_path)
    first = len(text.splitlines()) + 1
    for n, code in enumerate(bad.values()):
        assert f"caller.ts({first + n}," in broken.stdout and code in broken.stdout, broken.stdout
    assert broken.stdout.count("error TS") == 3, broken.stdout

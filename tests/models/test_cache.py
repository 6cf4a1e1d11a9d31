"""The download cache as issue 16's "models on demand" uses it: one URL into one folder
through `ModelStore.ensure`, threads deduplicated, least recently used files evicted past the
size limit while the placed files stay."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from comfygen.models.cache import ModelCache
from comfygen.models.download import ChecksumError
from comfygen.models.manifest import ModelEntry
from comfygen.models.store import FileState, ModelStore
from tests.models.file_server import FileServer, Served


def test_on_demand_threads_and_lru(tmp_path: Path, files: FileServer) -> None:
    blobs = {name: os.urandom(100_000) for name in ("a", "b", "c")}
    for name, data in blobs.items():
        files.files[f"/{name}"] = Served(data, delay=0.05)
    cache = ModelCache(tmp_path / "cache", max_bytes=250_000)
    store = ModelStore(tmp_path / "models", cache)
    entry = ModelEntry(folder="loras", file="a.safetensors", url=files.url("/a"))
    threads = [threading.Thread(target=store.ensure, args=(entry,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert files.files["/a"].gets == [None]  # three callers, one download
    assert (tmp_path / "models/loras/a.safetensors").read_bytes() == blobs["a"]
    for name in ("b", "c"):
        time.sleep(0.01)  # distinct modification times: the LRU order
        store.ensure(ModelEntry(folder="loras", file=f"{name}.safetensors",
                                url=files.url(f"/{name}")))
    left = sorted(p.name for p in (cache.root / "blobs").iterdir())
    assert len(left) == 2 and cache.key(files.url("/a"), None) not in left  # a was evicted
    assert (tmp_path / "models/loras/a.safetensors").read_bytes() == blobs["a"]  # it stays


def test_blake3_checksum(tmp_path: Path, files: FileServer) -> None:
    import blake3

    data = os.urandom(50_000)
    files.files["/b3"] = Served(data)
    store = ModelStore(tmp_path / "models", ModelCache(tmp_path / "cache"))
    wrong = ModelEntry(folder="vae", file="w.safetensors", url=files.url("/b3"), blake3="0" * 64)
    with pytest.raises(ChecksumError, match="blake3 is .* the manifest says 0000"):
        store.ensure(wrong)
    assert not (tmp_path / "models/vae/w.safetensors").exists()
    right = wrong.model_copy(update={"blake3": blake3.blake3(data).hexdigest()})
    assert store.ensure(right).read_bytes() == data
    assert store.check(right).state is FileState.PRESENT
    assert store.check(wrong).state is FileState.WRONG_CHECKSUM

"""The download cache as issue 16's "models on demand" uses it: one URL into one folder
through `ModelStore.ensure`, threads deduplicated, least recently used files evicted past the
size limit while the placed files stay."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from comfygen.models.cache import ModelCache
from comfygen.models.manifest import ModelEntry
from comfygen.models.store import ModelStore
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

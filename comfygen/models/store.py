"""A models folder kept as a manifest says: check each file (present, missing, wrong checksum)
and `ensure` one (fetch it through the cache, verify, place it atomically). The unit issue
16's "models on demand" reuses: one URL into one folder, deduplicated, cached."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from comfygen.models.cache import ModelCache, VerifiedFiles
from comfygen.models.download import ChecksumError, ModelError, Progress, fetch
from comfygen.models.manifest import ModelEntry
from comfygen.models.sources import Transport


class FileState(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    WRONG_CHECKSUM = "wrong checksum"
    WRONG_SIZE = "wrong size"


@dataclass(frozen=True)
class Check:
    entry: ModelEntry
    state: FileState
    path: Path
    detail: str = ""


class ModelStore:
    """ComfyUI's `models/` folder (`models_dir`) fed from a `ModelCache`."""

    def __init__(self, models_dir: Path, cache: ModelCache) -> None:
        self.models_dir = models_dir
        self.cache = cache
        self.verified = VerifiedFiles(cache.root / "verified.json")

    def path(self, entry: ModelEntry) -> Path:
        return self.models_dir / entry.folder / entry.file

    def check(self, entry: ModelEntry) -> Check:
        """Is the file there, of the right size and checksum? (Hashes once per file version.)"""
        path = self.path(entry)
        if not path.is_file():
            return Check(entry, FileState.MISSING, path)
        size = path.stat().st_size
        if entry.size is not None and size != entry.size:
            return Check(entry, FileState.WRONG_SIZE, path, f"{size} bytes, expected {entry.size}")
        if entry.checksum is not None:
            algorithm, expected = entry.checksum
            got = self.verified.digest(path, algorithm)
            if got != expected:
                return Check(entry, FileState.WRONG_CHECKSUM, path, f"{algorithm} {got}")
        return Check(entry, FileState.PRESENT, path)

    def ensure(self, entry: ModelEntry, progress: Progress | None = None, *,
               headers: Mapping[str, str] | None = None,
               transport: Transport | None = None, hub_token: bool = True) -> Path:
        """The entry's file in its folder: fetched (or taken from the cache) and verified when
        missing or wrong, then placed by rename (never half a file under its name)."""
        found = self.check(entry)
        if found.state is FileState.PRESENT:
            if progress is not None:
                size = found.path.stat().st_size
                progress(size, size)
            return found.path
        if entry.url is None:
            raise ModelError(f"{entry.label}: the manifest gives no url; fill it in")
        blob = fetch(self.cache, entry.url, checksum=entry.checksum, size=entry.size,
                     progress=progress, headers=headers, transport=transport,
                     hub_token=hub_token)
        if entry.checksum is not None:
            algorithm, expected = entry.checksum
            got = self.verified.digest(blob, algorithm)
            if got != expected:  # a cached file changed on disk since it was verified
                blob.unlink(missing_ok=True)
                raise ChecksumError(f"{entry.label}: the cached copy hashes to {got}, not "
                                    f"{expected}; it was deleted, pull again")
        place(blob, found.path)
        if entry.checksum is not None:
            self.verified.put(found.path, *entry.checksum)
        return found.path


def place(blob: Path, dest: Path) -> None:
    """Put `blob` at `dest` atomically: a hard link (or a copy) under a temporary name, then a
    rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(blob, tmp)
        except OSError:
            shutil.copyfile(blob, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)

"""The shared download cache: one complete, verified file per key (its checksum, else its URL),
a lock file per key so that concurrent pulls (threads or processes) download a file once, and
an optional size limit that evicts the least recently used files."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3


def default_cache_dir() -> Path:
    """`$COMFYGEN_MODELS_CACHE_DIR`, else `~/.cache/comfygen/models` (XDG_CACHE_HOME)."""
    if configured := os.environ.get("COMFYGEN_MODELS_CACHE_DIR"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "comfygen/models"


class ModelCache:
    """Files under `root/blobs/`, partial downloads beside them (`.part`), locks in `root/locks/`."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "locks").mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(url: str, checksum: tuple[str, str] | None) -> str:
        """`sha256-<hex>` / `blake3-<hex>` (content-addressed), else `url-<hash of the URL>`."""
        if checksum:
            return f"{checksum[0]}-{checksum[1]}"
        return "url-" + hashlib.sha256(url.encode()).hexdigest()[:40]

    def blob(self, key: str) -> Path:
        return self.root / "blobs" / key

    def part(self, key: str) -> Path:
        return self.root / "blobs" / f"{key}.part"

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Hold the key's lock: other threads and processes wait here (an flock on a file of
        its own, released by the kernel if the holder dies)."""
        with open(self.root / "locks" / f"{key}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def touch(self, key: str) -> None:
        """Mark a file as just used (the LRU order is the files' modification times)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.blob(key))

    def evict(self, keep: str) -> list[str]:
        """Remove least recently used files (never `keep`, never one being written) until the
        cache fits `max_bytes`; return the keys removed."""
        if self.max_bytes is None:
            return []
        blobs = [p for p in (self.root / "blobs").iterdir() if not p.name.endswith(".part")]
        total = sum(p.stat().st_size for p in blobs)
        removed = []
        for path in sorted(blobs, key=lambda p: p.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if path.name == keep:
                continue
            with open(self.root / "locks" / f"{path.name}.lock", "a+b") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # in use
                total -= path.stat().st_size
                path.unlink()
                removed.append(path.name)
        return removed


class VerifiedFiles:
    """Digests of files already hashed, by path, size and modification time: a 5 GB checkpoint
    is hashed once, not at every `status` or server start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def _read(self) -> dict[str, list]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def get(self, file: Path, algorithm: str) -> str | None:
        st = file.stat()
        known = self._read().get(f"{algorithm}:{file.resolve()}")
        if known and known[:2] == [st.st_size, st.st_mtime_ns]:
            return known[2]
        return None

    def digest(self, file: Path, algorithm: str) -> str:
        """The file's digest, from memory when the file did not change since."""
        known = self.get(file, algorithm)
        if known is None:
            known = digest_of(file, algorithm)
            self.put(file, algorithm, known)
        return known

    def put(self, file: Path, algorithm: str, digest: str) -> None:
        """Remember a hash (best effort: a lost update only means hashing the file again)."""
        st = file.stat()
        with self.lock:
            data = self._read()
            data[f"{algorithm}:{file.resolve()}"] = [st.st_size, st.st_mtime_ns, digest]
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)


def hasher(algorithm: str) -> Any:
    """A new hashlib-style object for `sha256` or `blake3`."""
    if algorithm == "blake3":
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return hashlib.sha256()


def digest_of(path: Path, algorithm: str) -> str:
    digest = hasher(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

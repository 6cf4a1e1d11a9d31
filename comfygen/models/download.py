"""Download one source into the cache: resume a partial file with a Range request, retry a cut
connection, verify size and checksum, sha256 or blake3 (a mismatch deletes the file and fails), then rename the
finished file into place. Concurrent callers of one key wait on its lock and find it done."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from comfygen.models.cache import ModelCache, hasher
from comfygen.models.sources import SourceError, Transport, open_source

log = logging.getLogger("comfygen.models")

Progress = Callable[[int, int | None], None]
"""Called with (bytes of the file written so far, its total size when known)."""


class ModelError(Exception):
    """A model file could not be fetched or is not what the manifest says."""


class ChecksumError(ModelError):
    """The bytes do not hash (or measure) to the manifest's value; the file was deleted."""


def fetch(cache: ModelCache, url: str, *, checksum: tuple[str, str] | None = None,
          size: int | None = None, progress: Progress | None = None, attempts: int = 4,
          headers: Mapping[str, str] | None = None,
          transport: Transport | None = None, hub_token: bool = True) -> Path:
    """The cached file for `url` (downloaded once, whoever else asks at the same time), its
    `checksum` ((algorithm, hex)) and size verified; `headers`, `transport` and `hub_token` go to
    `open_source`."""
    key = cache.key(url, checksum)
    with cache.locked(key):
        blob = cache.blob(key)
        if blob.exists() and (size is None or blob.stat().st_size == size):
            cache.touch(key)
            if progress is not None:
                progress(0, blob.stat().st_size)
            return blob
        for attempt in range(1, attempts + 1):
            try:
                _download(cache.part(key), url, checksum, size, progress, headers, transport,
                          hub_token)
                break
            except (httpx.TransportError, SourceError) as exc:
                transient = isinstance(exc, httpx.TransportError)
                if not transient or attempt == attempts:
                    raise ModelError(f"{url}: {exc}" if transient else str(exc)) from None
                log.warning("download of %s cut (%s); resuming (attempt %d of %d)",
                            url.split("?")[0], type(exc).__name__, attempt + 1, attempts)
                time.sleep(0.2 * 2 ** attempt)
        os.replace(cache.part(key), blob)
        cache.evict(keep=key)
        return blob


def _download(part: Path, url: str, checksum: tuple[str, str] | None, size: int | None,
              progress: Progress | None, headers: Mapping[str, str] | None = None,
              transport: Transport | None = None, hub_token: bool = True) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    algorithm, expected_digest = checksum or ("sha256", None)
    digest = hasher(algorithm) if expected_digest else None
    with open_source(url, offset, headers=headers, transport=transport,
                     hub_token=hub_token) as stream:
        mode = "ab" if stream.start else "wb"
        total = size or stream.total
        with open(part, mode) as out:
            if stream.start and digest is not None:  # resumed: hash the bytes already here
                with open(part, "rb") as existing:
                    while chunk := existing.read(1 << 20):
                        digest.update(chunk)
            done = stream.start
            if progress is not None:
                progress(done, total)
            for chunk in stream.chunks:
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
    got_size = part.stat().st_size
    expected = size or stream.total
    if expected is not None and got_size != expected:
        part.unlink()
        raise ChecksumError(f"{url}: got {got_size} bytes, expected {expected}; the download "
                            "was deleted")
    if digest is not None and digest.hexdigest() != expected_digest:
        part.unlink()
        raise ChecksumError(f"{url}: {algorithm} is {digest.hexdigest()}, the manifest says "
                            f"{expected_digest}; the download was deleted")

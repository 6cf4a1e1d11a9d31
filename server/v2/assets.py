"""Uploaded assets: bytes kept once per blake3 hash, records by UUID (SQLite, beside the jobs).

Files live in `<jobs_db folder>/comfygen-assets/blobs/<hex>`; a record names a blob, its content
type (sniffed, never taken from the client) and the client's display `file_path` (a name only,
never used as a path). A blob is deleted with its last record."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import blake3

HASH_PREFIX = "blake3:"


@dataclass(frozen=True)
class AssetRecord:
    id: str
    hash: str
    size_bytes: int
    content_type: str
    file_path: str | None
    created_at: datetime


def blake3_of(data: bytes) -> str:
    """`blake3:<hex>` of the bytes (the contract's hash form)."""
    return HASH_PREFIX + blake3.blake3(data).hexdigest()


def parse_hash(value: str) -> str | None:
    """The hex digest of a `blake3:<64 hex>` text, or None when it is not one."""
    if not value.startswith(HASH_PREFIX):
        return None
    hexdigest = value[len(HASH_PREFIX):].lower()
    if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        return None
    return hexdigest


def display_name(file_path: str | None) -> str | None:
    """The last component of a client's `file_path`, for display and extensions only."""
    if not file_path:
        return None
    name = file_path.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or None


class AssetStore:
    """Asset records and their deduplicated blobs."""

    def __init__(self, root: Path) -> None:
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "assets.sqlite3", check_same_thread=False,
                                   isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS assets (id TEXT PRIMARY KEY, hash TEXT NOT NULL, "
            "size INTEGER NOT NULL, content_type TEXT NOT NULL, file_path TEXT, "
            "created_at REAL NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS assets_hash ON assets (hash)")

    def close(self) -> None:
        self._db.close()

    def blob(self, digest: str) -> Path:
        """The file holding the bytes of `blake3:<digest>` (digest already validated)."""
        return self.blobs / digest

    async def add(self, data: bytes, content_type: str, file_path: str | None
                  ) -> tuple[AssetRecord, bool]:
        """A new record for these bytes; True when the bytes were new to the store."""
        return await asyncio.to_thread(self._add, data, content_type, file_path)

    def _add(self, data: bytes, content_type: str, file_path: str | None
             ) -> tuple[AssetRecord, bool]:
        digest = blake3_of(data)
        blob = self.blob(digest[len(HASH_PREFIX):])
        with self._lock:
            new = not blob.exists()
            if new:
                partial = blob.with_suffix(f".{uuid.uuid4().hex}.part")
                partial.write_bytes(data)
                partial.replace(blob)
            return self._insert(digest, len(data), content_type, file_path), new

    async def from_hash(self, digest: str, file_path: str | None) -> AssetRecord | None:
        """A new record over bytes the store already has, or None."""
        return await asyncio.to_thread(self._from_hash, digest, file_path)

    def _from_hash(self, digest: str, file_path: str | None) -> AssetRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM assets WHERE hash = ? LIMIT 1",
                                   (digest,)).fetchone()
            if row is None or not self.blob(digest[len(HASH_PREFIX):]).exists():
                return None
            return self._insert(digest, row["size"], row["content_type"], file_path)

    def _insert(self, digest: str, size: int, content_type: str, file_path: str | None
                ) -> AssetRecord:
        record = AssetRecord(str(uuid.uuid4()), digest, size, content_type,
                             display_name(file_path), datetime.now(UTC))
        self._db.execute("INSERT INTO assets VALUES (?, ?, ?, ?, ?, ?)", (
            record.id, record.hash, record.size_bytes, record.content_type, record.file_path,
            record.created_at.timestamp()))
        return record

    async def has_hash(self, digest: str) -> bool:
        return await self.by_hash(digest) is not None

    async def by_hash(self, digest: str) -> AssetRecord | None:
        def find() -> AssetRecord | None:
            row = self._db.execute("SELECT * FROM assets WHERE hash = ? LIMIT 1",
                                   (digest,)).fetchone()
            return _record(row) if row is not None else None
        return await asyncio.to_thread(find)

    async def get(self, asset_id: str) -> AssetRecord | None:
        def find() -> AssetRecord | None:
            row = self._db.execute("SELECT * FROM assets WHERE id = ?", (asset_id,)).fetchone()
            return _record(row) if row is not None else None
        return await asyncio.to_thread(find)

    async def delete(self, asset_id: str) -> bool:
        """Remove the record, and the blob when no other record uses it."""
        def remove() -> bool:
            with self._lock:
                row = self._db.execute("SELECT hash FROM assets WHERE id = ?",
                                       (asset_id,)).fetchone()
                if row is None:
                    return False
                self._db.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
                left = self._db.execute("SELECT 1 FROM assets WHERE hash = ? LIMIT 1",
                                        (row["hash"],)).fetchone()
                if left is None:
                    self.blob(row["hash"][len(HASH_PREFIX):]).unlink(missing_ok=True)
                return True
        return await asyncio.to_thread(remove)

    async def read(self, record: AssetRecord) -> bytes:
        return await asyncio.to_thread(self.blob(record.hash[len(HASH_PREFIX):]).read_bytes)


def _record(row: sqlite3.Row) -> AssetRecord:
    return AssetRecord(row["id"], row["hash"], row["size"], row["content_type"], row["file_path"],
                       datetime.fromtimestamp(row["created_at"], UTC))

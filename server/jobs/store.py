"""A SQLite job store (WAL mode) used from async code through short calls in a worker thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from server.jobs.models import (
    ACTIVE_STATES,
    IdempotencyConflict,
    InvalidTransition,
    Job,
    JobNotFound,
    JobState,
    Progress,
)

T = TypeVar("T")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    state TEXT NOT NULL,
    progress_value REAL NOT NULL DEFAULT 0,
    progress_max REAL NOT NULL DEFAULT 0,
    progress_node TEXT,
    result TEXT,
    result_path TEXT,
    error TEXT,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    prompt_id TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_expires ON jobs(expires_at);
"""
_ALLOWED_FROM: dict[JobState, frozenset[JobState]] = {
    JobState.RUNNING: frozenset({JobState.QUEUED}),
    JobState.SUCCEEDED: ACTIVE_STATES,
    JobState.FAILED: ACTIVE_STATES,
    JobState.CANCELLED: ACTIVE_STATES,
}

class JobStore:
    """Jobs in one SQLite file; reopening the file after a restart finds them again."""

    def __init__(
        self,
        path: str | Path,
        *,
        ttl: float | None = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    async def create(
        self,
        workflow: str,
        *,
        job_id: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> tuple[Job, bool]:
        """A new queued job, or the first job with this idempotency key (and False)."""
        return await self._run(
            self._create,
            workflow,
            job_id or str(uuid.uuid4()),
            idempotency_key,
            request_hash,
            meta or {},
        )

    async def get(self, job_id: str) -> Job | None:
        """The job, or None when unknown or expired and purged."""
        return await self._run(self._get, job_id)

    async def require(self, job_id: str) -> Job:
        """The job, or raise `JobNotFound`."""
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def find_key(self, idempotency_key: str, request_hash: str | None = None) -> Job | None:
        """The job created with this key; `IdempotencyConflict` if it was for another request."""
        return await self._run(self._find_key, idempotency_key, request_hash)

    async def list(self, states: Iterable[JobState] | None = None, limit: int = 100) -> list[Job]:
        """Jobs newest first, optionally only in `states`."""
        return await self._run(self._list, tuple(states or ()), limit)

    async def count(self, states: Iterable[JobState] = ACTIVE_STATES) -> int:
        """How many jobs are in `states` (queued and running by default)."""
        return await self._run(self._count, tuple(states))

    async def mark_running(self, job_id: str, *, prompt_id: str | None = None) -> Job:
        """queued -> running."""
        return await self._run(self._transition, job_id, JobState.RUNNING, {"prompt_id": prompt_id})

    async def set_prompt_id(self, job_id: str, prompt_id: str) -> Job:
        """Record ComfyUI's prompt id (needed to dequeue or interrupt)."""
        return await self._run(self._set, job_id, {"prompt_id": prompt_id})

    async def update_progress(self, job_id: str, progress: Progress) -> Job:
        """Store the latest progress of an active job."""
        fields = {
            "progress_value": progress.value,
            "progress_max": progress.max,
            "progress_node": progress.node,
        }
        return await self._run(self._set, job_id, fields, ACTIVE_STATES)

    async def succeed(
        self, job_id: str, result: Any = None, *, result_path: str | None = None
    ) -> Job:
        """-> succeeded with a JSON result (or a path to one)."""
        fields = {"result": _dump(result), "result_path": result_path}
        return await self._run(self._transition, job_id, JobState.SUCCEEDED, fields)

    async def fail(self, job_id: str, error: dict[str, Any]) -> Job:
        """-> failed with a JSON error body."""
        fields = {"error": _dump(error)}
        return await self._run(self._transition, job_id, JobState.FAILED, fields)

    async def cancel(self, job_id: str, error: dict[str, Any] | None = None) -> Job:
        """-> cancelled (from queued or running)."""
        fields = {"error": _dump(error)} if error else {}
        return await self._run(self._transition, job_id, JobState.CANCELLED, fields)

    async def purge_expired(self) -> int:
        """Delete finished jobs whose expiry has passed; return how many."""
        return await self._run(self._purge)

    async def recover(self, error: dict[str, Any]) -> list[str]:
        """Mark jobs left queued/running by a dead process as failed with `error` (the error
        body their requests answer with); return their ids."""
        return await self._run(self._recover, error)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    def _find_key(self, key: str, request_hash: str | None) -> Job | None:
        existing = self._get_by("idempotency_key", key)
        if existing is not None and request_hash:
            stored = self._db.execute(
                "SELECT request_hash FROM jobs WHERE id = ?", (existing.id,)
            ).fetchone()[0]
            if stored and stored != request_hash:
                raise IdempotencyConflict(existing)
        return existing

    def _create(
        self,
        workflow: str,
        job_id: str,
        key: str | None,
        request_hash: str | None,
        meta: dict[str, Any],
    ) -> tuple[Job, bool]:
        if key is not None:
            existing = self._find_key(key, request_hash)
            if existing is not None:
                return existing, False
        now = self._clock()
        self._db.execute(
            "INSERT INTO jobs (id, workflow, state, idempotency_key, request_hash, meta, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                workflow,
                JobState.QUEUED.value,
                key,
                request_hash,
                json.dumps(meta),
                now,
                now,
            ),
        )
        job = self._get(job_id)
        assert job is not None
        return job, True

    def _get(self, job_id: str) -> Job | None:
        return self._get_by("id", job_id)

    def _get_by(self, column: str, value: str) -> Job | None:
        row = self._db.execute(f"SELECT * FROM jobs WHERE {column} = ?", (value,)).fetchone()
        return None if row is None else _job(row)

    def _list(self, states: tuple[JobState, ...], limit: int) -> list[Job]:
        sql, params = "SELECT * FROM jobs", []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            params = [s.value for s in states]
        rows = self._db.execute(f"{sql} ORDER BY created_at DESC LIMIT ?", (*params, limit))
        return [_job(row) for row in rows]

    def _count(self, states: tuple[JobState, ...]) -> int:
        marks = ",".join("?" * len(states))
        sql = f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})"
        return int(self._db.execute(sql, [s.value for s in states]).fetchone()[0])

    def _set(
        self, job_id: str, fields: dict[str, Any], states: frozenset[JobState] | None = None
    ) -> Job:
        job = self._get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if states is not None and job.state not in states:
            return job
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(
            f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",
            (*fields.values(), self._clock(), job_id),
        )
        updated = self._get(job_id)
        assert updated is not None
        return updated

    def _transition(self, job_id: str, target: JobState, fields: dict[str, Any]) -> Job:
        fields = {k: v for k, v in fields.items() if v is not None}
        allowed = _ALLOWED_FROM[target]
        now = self._clock()
        if target.terminal:
            fields["expires_at"] = None if self.ttl is None else now + self.ttl
        fields["state"] = target.value
        assignments = ", ".join(f"{name} = ?" for name in fields)
        marks = ",".join("?" * len(allowed))
        cursor = self._db.execute(
            f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ? AND state IN ({marks})",
            (*fields.values(), now, job_id, *(s.value for s in allowed)),
        )
        job = self._get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if cursor.rowcount == 0:
            raise InvalidTransition(job, target)
        return job

    def _purge(self) -> int:
        cursor = self._db.execute(
            "DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._clock(),)
        )
        return cursor.rowcount

    def _recover(self, error: dict[str, Any]) -> list[str]:
        active = [JobState.QUEUED.value, JobState.RUNNING.value]
        ids = [
            row[0] for row in self._db.execute("SELECT id FROM jobs WHERE state IN (?, ?)", active)
        ]
        for job_id in ids:
            self._transition(job_id, JobState.FAILED, {"error": _dump(error)})
        return ids


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        workflow=row["workflow"],
        state=JobState(row["state"]),
        progress=Progress(
            value=row["progress_value"], max=row["progress_max"], node=row["progress_node"]
        ),
        result=_load(row["result"]),
        result_path=row["result_path"],
        error=_load(row["error"]),
        idempotency_key=row["idempotency_key"],
        prompt_id=row["prompt_id"],
        meta=_load(row["meta"]) or {},
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        expires_at=_time(row["expires_at"]),
    )

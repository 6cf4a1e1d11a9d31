"""Job records, idempotency keys and per-job event streams in Redis (see `connection`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.jobs.models import (
    ACTIVE_STATES,
    IdempotencyConflict,
    InvalidTransition,
    Job,
    JobNotFound,
    JobState,
    Progress,
)
from server.jobs.shared.connection import CREATE, TRANSITION, Keys

log = logging.getLogger("comfygen.server")


@dataclass(frozen=True)
class StreamEvent:
    """One job event as stored in its stream; `id` is the stream entry id (the SSE id)."""

    id: str
    type: str
    data: dict[str, Any]
    final: bool = False


class SharedStore:
    """The `JobStore` methods the job manager uses, on Redis; plus event streams."""

    def __init__(self, redis: Redis, reader: Redis, keys: Keys, *, ttl: float,
                 events_max: int, retry_for: float = 0.0) -> None:
        self.redis = redis
        self.reader = reader  # a client with room for blocking reads
        self.keys = keys
        self.ttl = max(1, int(ttl))
        self.events_max = events_max
        self.retry_for = retry_for  # a worker's writes wait out a Redis restart this long
        self._create = redis.register_script(CREATE)
        self._transition = redis.register_script(TRANSITION)
        self._outbox: asyncio.Queue[tuple[str, str, dict[str, Any], bool]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    # -- records ---------------------------------------------------------------------------

    async def create(self, workflow: str, *, job_id: str, idempotency_key: str | None,
                     request_hash: str | None, meta: dict[str, Any],
                     sub: dict[str, Any]) -> tuple[Job, bool]:
        """A new queued job (record, queue entry and `queued` event written atomically), or the
        job that already holds the idempotency key (and False)."""
        now = time.time()
        doc = {"workflow": workflow, "idempotency_key": idempotency_key,
               "request_hash": request_hash, "meta": meta}
        key = self.keys.key(idempotency_key) if idempotency_key else self.keys.key("")
        queued = json.dumps({"id": job_id, "state": "queued"})
        for _ in range(50):
            held = await self._create(
                keys=[self.keys.job(job_id), key, self.keys.queue, self.keys.events(job_id)],
                args=[job_id, self.ttl, json.dumps(doc), json.dumps(sub), repr(now),
                      self.events_max, queued, "1" if idempotency_key else "0"])
            if not held:
                return await self.require(job_id), True
            first = await self._find_held(held, request_hash)
            if first is not None:
                return first, False
            await asyncio.sleep(0.01)  # the key outlived its job: wait for expiry
        raise JobNotFound(held)

    async def _find_held(self, job_id: str, request_hash: str | None) -> Job | None:
        job = await self.get(job_id)
        if job is None:
            return None
        if request_hash is not None and job.meta.get("_request_hash") not in (None, request_hash):
            raise IdempotencyConflict(job)
        return job

    async def find_key(self, idempotency_key: str, request_hash: str | None = None) -> Job | None:
        """The job created with this key; `IdempotencyConflict` if it was for another request."""
        held = await self.redis.get(self.keys.key(idempotency_key))
        return None if held is None else await self._find_held(held, request_hash)

    async def get(self, job_id: str) -> Job | None:
        raw = await self.redis.hgetall(self.keys.job(job_id))
        return _job(job_id, raw) if raw else None

    async def require(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def submission(self, job_id: str) -> tuple[Job, dict[str, Any]] | None:
        """The record and what to run, for a worker."""
        raw = await self.redis.hgetall(self.keys.job(job_id))
        if not raw:
            return None
        return _job(job_id, raw), json.loads(raw["sub"])

    async def update(self, job_id: str, allowed: Iterable[JobState], fields: dict[str, Any],
                     *, final: bool = False, fetch: bool = True) -> Job | None:
        """Write `fields` if the job is in one of `allowed` (atomically); else raise
        `InvalidTransition` (or `JobNotFound`). The record after it when `fetch`."""
        allowed = [s.value for s in allowed]
        pairs: list[Any] = ["updated_at", repr(time.time())]
        if final:
            pairs += ["expires_at", repr(time.time() + self.ttl)]
        for name, value in fields.items():
            pairs += [name, value if isinstance(value, str) else json.dumps(value)]
        args = [len(allowed), *allowed, self.ttl if final else 0, *pairs]
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                done = await self._transition(keys=[self.keys.job(job_id)], args=args)
                break
            except RedisError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.5)
        if done == -1:
            raise JobNotFound(job_id)
        if done == 0:
            job = await self.require(job_id)
            raise InvalidTransition(job, JobState(fields.get("state", job.state.value)))
        return await self.require(job_id) if fetch else None

    # The worker-side writes below answer None: the job manager does not read the record back.

    async def set_prompt_id(self, job_id: str, prompt_id: str) -> None:
        await self.update(job_id, ACTIVE_STATES, {"prompt_id": prompt_id}, fetch=False)

    async def mark_running(self, job_id: str, *, prompt_id: str | None = None) -> None:
        fields: dict[str, Any] = {"state": "running"}
        if prompt_id:
            fields["prompt_id"] = prompt_id
        await self.update(job_id, {JobState.QUEUED}, fields, fetch=False)

    async def requeue(self, job_id: str, attempt: int) -> None:
        """Back to queued for another attempt (after its worker died)."""
        await self.update(job_id, ACTIVE_STATES, {"state": "queued", "attempt": attempt,
                                                  "prompt_id": ""}, fetch=False)

    async def update_progress(self, job_id: str, progress: Progress) -> None:
        await self.update(job_id, ACTIVE_STATES, {"progress": progress.model_dump()},
                          fetch=False)

    async def succeed(self, job_id: str, result: Any = None) -> None:
        await self.update(job_id, ACTIVE_STATES, {"state": "succeeded", "result": result},
                          final=True, fetch=False)

    async def fail(self, job_id: str, error: dict[str, Any]) -> None:
        await self.update(job_id, ACTIVE_STATES, {"state": "failed", "error": error},
                          final=True, fetch=False)

    async def cancel(self, job_id: str, error: dict[str, Any] | None = None) -> Job:
        fields: dict[str, Any] = {"state": "cancelled"}
        if error:
            fields["error"] = error
        job = await self.update(job_id, ACTIVE_STATES, fields, final=True)
        assert job is not None
        return job

    async def depth(self) -> int:
        """Jobs waiting or running, across every replica."""
        return int(await self.redis.xlen(self.keys.queue))

    # -- events ----------------------------------------------------------------------------

    def publish(self, job_id: str, type: str, data: dict[str, Any] | None = None, *,
                final: bool = False) -> None:
        """Queue an event for its stream (written in order by one writer task)."""
        self._outbox.put_nowait((job_id, type, dict(data or {}), final))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_events(), name="job-events")

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued events are written (or `timeout`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._outbox.join()

    async def close(self) -> None:
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_events(self) -> None:
        while True:
            job_id, type, data, final = await self._outbox.get()
            try:
                for wait in (0.1, 0.2, 0.5, 1, 1, 2, 2, 5, 5, 10, 10, 0):
                    try:
                        await self.append(job_id, type, data, final)
                        break
                    except RedisError as exc:
                        if not wait:
                            log.error("job %s: event %s lost: %s", job_id, type, exc)
                        await asyncio.sleep(wait)
            finally:
                self._outbox.task_done()

    async def append(self, job_id: str, type: str, data: dict[str, Any], final: bool) -> str:
        key = self.keys.events(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"type": type, "data": json.dumps(data, separators=(",", ":")),
                            "final": "1" if final else "0"},
                      maxlen=self.events_max, approximate=True)
            pipe.expire(key, self.ttl)
            entry, _ = await pipe.execute()
        return entry

    async def events(self, job_id: str, after: str | None = None, *,
                     block: int = 1000) -> AsyncIterator[StreamEvent]:
        """The job's events after entry id `after` (all of them without), then live ones, until
        the final one. Redis errors while following are retried (a restart is waited out)."""
        last = after or "0-0"
        quiet_while_final = 0
        while True:
            try:
                answer = await self.reader.xread({self.keys.events(job_id): last}, count=100,
                                                 block=block)
            except RedisError:
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = StreamEvent(entry_id, fields["type"], json.loads(fields["data"]),
                                        fields.get("final") == "1")
                    yield event
                    if event.final:
                        return
            if not answer:
                # A job's state turns final a moment before its final event is appended: only
                # after a few quiet reads of a final job is its stream taken as expired or
                # capped away (the next read picks up whatever came in meanwhile).
                job = await self._quiet_get(job_id)
                if job is not None and job.terminal:
                    quiet_while_final += 1
                    if quiet_while_final >= FINAL_GRACE_READS and not await self._has_final(job_id):
                        return

    async def _quiet_get(self, job_id: str) -> Job | None:
        try:
            return await self.get(job_id)
        except RedisError:
            return None

    async def _has_final(self, job_id: str) -> bool:
        last = await self.redis.xrevrange(self.keys.events(job_id), count=1)
        return bool(last) and last[0][1].get("final") == "1"


FINAL_GRACE_READS = 3
"""Quiet reads (one `block` each) of a final job before its stream is taken as gone."""


def _job(job_id: str, raw: dict[str, str]) -> Job:
    doc = json.loads(raw["doc"])
    meta = dict(doc.get("meta") or {})
    if doc.get("request_hash"):
        meta["_request_hash"] = doc["request_hash"]

    def load(name: str) -> Any:
        value = raw.get(name)
        return json.loads(value) if value else None

    def stamp(name: str) -> datetime | None:
        value = raw.get(name)
        return datetime.fromtimestamp(float(value), UTC) if value else None

    return Job(id=job_id, workflow=doc["workflow"], state=JobState(raw["state"]),
               progress=Progress(**(load("progress") or {})), result=load("result"),
               error=load("error"), idempotency_key=doc.get("idempotency_key"),
               prompt_id=raw.get("prompt_id") or None, meta=meta,
               created_at=stamp("created_at"), updated_at=stamp("updated_at"),
               expires_at=stamp("expires_at"))

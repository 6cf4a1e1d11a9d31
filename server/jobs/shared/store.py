"""Job records, idempotency keys and per-job event streams in Redis (see `connection`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
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
from server.jobs.shared.connection import APPEND, CREATE, TRANSITION, Keys

log = logging.getLogger("comfygen.server")

INDEX_MAX = 10_000  # jobs a listing can reach: older ids leave the index (their records expire)


class QueueFull(Exception):
    """The shared queue holds its limit of jobs (`depth` of them): nothing was created."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


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
        self._append = redis.register_script(APPEND)
        self._outbox: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
        self._flashing: set[asyncio.Task[None]] = set()
        self._writer: asyncio.Task[None] | None = None
        # A worker's claimed queue entries by job id that the script ending the job acks and
        # deletes (popped then; '' for one the worker acks itself).
        self.claimed: dict[str, str] = {}

    # -- records ---------------------------------------------------------------------------

    async def create(self, workflow: str, *, job_id: str, idempotency_key: str | None,
                     request_hash: str | None, meta: dict[str, Any], sub: dict[str, Any],
                     prompt_id: str | None = None, limit: int = 0,
                     media: Mapping[str, bytes] | None = None,
                     private: dict[str, Any] | None = None) -> tuple[Job, bool]:
        """A new queued job (record, media files, queue entry, index and `queued` event written
        atomically, in one round trip), or the job that already holds the idempotency key (and
        False; nothing written). `prompt_id`: what the first worker submits it to ComfyUI as
        (known to every replica from the start, so a cancel finds it without the worker
        writing it first). `QueueFull` when `limit` jobs (if not 0) are waiting or running
        already (nothing written either)."""
        now = repr(time.time())
        doc = {"workflow": workflow, "idempotency_key": idempotency_key,
               "request_hash": request_hash, "meta": meta}
        key = self.keys.key(idempotency_key) if idempotency_key else self.keys.key("")
        queued = _dumps({"id": job_id, "state": "queued"})
        files = [part for name, data in (media or {}).items() for part in (name, data)]
        for _ in range(50):
            held = await self._create(
                keys=[self.keys.job(job_id), key, self.keys.queue, self.keys.events(job_id),
                      self.keys.index, self.keys.media(job_id), self.keys.private(job_id)],
                args=[job_id, self.ttl, _encode(doc), _encode(sub), now, self.events_max,
                      queued, "1" if idempotency_key else "0", prompt_id or "", INDEX_MAX,
                      limit, _encode(private) if private else "", *files])
            if isinstance(held, list):
                raise QueueFull(int(held[1]))
            if not held:  # the record as the script wrote it
                stamp = datetime.fromtimestamp(float(now), UTC)
                return Job(id=job_id, workflow=workflow, state=JobState.QUEUED,
                           idempotency_key=idempotency_key, prompt_id=prompt_id or None,
                           meta=_meta(doc), created_at=stamp, updated_at=stamp), True
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
        return _job(job_id, raw), decode(raw["sub"])

    async def update(self, job_id: str, allowed: Iterable[JobState], fields: dict[str, Any],
                     *, final: dict[str, Any] | None = None, fetch: bool = True) -> Job | None:
        """Write `fields` if the job is in one of `allowed` (atomically); else raise
        `InvalidTransition` (or `JobNotFound`). The record after it when `fetch`.

        `final` (the data of the final event, whose type is the new state) ends the job: the
        record gets its final TTL and the event is appended in the same script, after the
        events still queued here (a reader that sees the state final finds the event), with
        the `done` entry its waiters block on; the queue entry this worker claimed for it (if
        any) is acked and deleted in the same script."""
        allowed = [s.value for s in allowed]
        pairs: list[Any] = ["updated_at", repr(time.time())]
        event = ["", ""]
        ack = ""
        if final is not None:
            await self.flush()
            pairs += ["expires_at", repr(time.time() + self.ttl)]
            event = [fields["state"], _dumps(final)]
            ack = self.claimed.get(job_id, "")
        for name, value in fields.items():
            pairs += [name, value if isinstance(value, str) else _encode(value)]
        args = [len(allowed), *allowed, self.ttl if final is not None else 0, self.events_max,
                *event, ack, *pairs]
        keys = [self.keys.job(job_id), self.keys.events(job_id), self.keys.done(job_id),
                self.keys.queue, self.keys.media(job_id), self.keys.private(job_id)]
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                done = await self._transition(keys=keys, args=args)
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
        if ack:
            self.claimed.pop(job_id, None)
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

    # The final events carry what `JobManager` publishes with them (`publish` skips those).

    async def succeed(self, job_id: str, result: Any = None) -> None:
        await self.update(job_id, ACTIVE_STATES, {"state": "succeeded", "result": result},
                          final={"id": job_id, "state": "succeeded"}, fetch=False)

    async def fail(self, job_id: str, error: dict[str, Any]) -> None:
        await self.update(job_id, ACTIVE_STATES, {"state": "failed", "error": error},
                          final={"id": job_id, "state": "failed", "error": error}, fetch=False)

    async def cancel(self, job_id: str, error: dict[str, Any] | None = None) -> Job:
        fields: dict[str, Any] = {"state": "cancelled"}
        event: dict[str, Any] = {"id": job_id, "state": "cancelled"}
        if error:
            fields["error"] = error
            if "cancelled" in error:
                event["cancelled"] = error["cancelled"]
        job = await self.update(job_id, ACTIVE_STATES, fields, final=event)
        assert job is not None
        return job

    async def list(self, states: Iterable[JobState] | None = None, limit: int = 100) -> list[Job]:
        """Jobs newest first, optionally only in `states`, from every replica; ids whose records
        expired are dropped from the index on the way."""
        wanted = set(states or ())
        found: list[Job] = []
        start, page = 0, max(limit, 100)
        while len(found) < limit:
            ids = await self.redis.zrevrange(self.keys.index, start, start + page - 1)
            if not ids:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self.keys.job(job_id))
                raws = await pipe.execute()
            gone = [job_id for job_id, raw in zip(ids, raws, strict=True) if not raw]
            if gone:
                await self.redis.zrem(self.keys.index, *gone)
            found += [job for job_id, raw in zip(ids, raws, strict=True) if raw
                      and (job := _job(job_id, raw)) and (not wanted or job.state in wanted)]
            start += page - len(gone)
        return found[:limit]

    async def depth(self) -> int:
        """Jobs waiting or running, across every replica."""
        return int(await self.redis.xlen(self.keys.queue))

    # -- events ----------------------------------------------------------------------------

    def publish(self, job_id: str, type: str, data: dict[str, Any] | None = None, *,
                final: bool = False) -> None:
        """Queue an event for its stream (written in order by one writer task). A final event
        is already in the stream: `succeed`, `fail` and `cancel` appended it with the state."""
        if final:
            return
        self._outbox.put_nowait((job_id, type, dict(data or {})))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_events(), name="job-events")

    def subscriber_count(self, job_id: str) -> int:
        """Unknown here (a job's listeners are on the API replicas): assume one, so that its
        previews are published (`flash`)."""
        del job_id
        return 1

    def flash(self, job_id: str, type: str, data: dict[str, Any]) -> int:
        """Publish a transient event (a preview) to the job's channel for whoever listens now,
        in the background; a Redis error drops it (logged at debug). Returns 0 (not known)."""
        task = asyncio.create_task(self._flash(job_id, type, data))
        self._flashing.add(task)
        task.add_done_callback(self._flashing.discard)
        return 0

    async def _flash(self, job_id: str, type: str, data: dict[str, Any]) -> None:
        try:
            await self.redis.publish(self.keys.previews(job_id),
                                     orjson.dumps({"type": type, "data": data}))
        except RedisError as exc:
            log.debug("preview of job %s dropped: %s", job_id, exc)

    async def previews(self, job_id: str) -> AsyncIterator[StreamEvent]:
        """The job's transient events (previews) published from now on, each a `StreamEvent`
        without an id, until the caller stops iterating (it holds one Redis connection)."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.previews(job_id))
            while True:
                # a bounded wait, not `listen()`: some redis-py releases let the client's
                # socket timeout end an idle `listen()` (a job still queued sends nothing)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                try:
                    body = orjson.loads(message["data"])
                except (orjson.JSONDecodeError, TypeError):
                    continue
                yield StreamEvent("", str(body.get("type")), body.get("data") or {})
        finally:
            with contextlib.suppress(RedisError):
                await pubsub.aclose()

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
        """Everything queued so far in one script call (a burst of ComfyUI messages costs one
        round trip), in order; a Redis error retries the burst, then gives it up (logged)."""
        while True:
            burst = [await self._outbox.get()]
            while not self._outbox.empty() and len(burst) < 100:
                burst.append(self._outbox.get_nowait())
            try:
                for wait in (0.1, 0.2, 0.5, 1, 1, 2, 2, 5, 5, 10, 10, 0):
                    try:
                        await self.append(burst)
                        break
                    except RedisError as exc:
                        if not wait:
                            log.error("events lost (%s): %s", ", ".join(
                                f"job {job_id} {type}" for job_id, type, _ in burst), exc)
                        await asyncio.sleep(wait)
            finally:
                for _ in burst:
                    self._outbox.task_done()

    async def append(self, events: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
        """Events that do not end their job, while it runs or waits (final events come with
        the state change; nothing follows them). Their entry ids ('' for one dropped)."""
        keys: list[str] = []
        args: list[Any] = [self.events_max, self.ttl]
        for job_id, type, data in events:
            keys += [self.keys.job(job_id), self.keys.events(job_id)]
            args += [type, _dumps(data)]
        return await self._append(keys=keys, args=args)

    async def until_final(self, job_id: str, *, block: int = 1000) -> Job:
        """The record once final. Blocks on the job's `done` stream (written by the script that
        makes the state final, so it wakes once, at the end, not at every event), pipelined
        with the record's HGETALL, which Redis runs right after the read returns: the read that
        wakes brings the final record in the same round trip; no polling. `JobNotFound` when it
        expired; Redis errors are waited out (the caller has its own timeout)."""
        done, record = self.keys.done(job_id), self.keys.job(job_id)
        while True:
            try:
                async with self.reader.pipeline(transaction=False) as pipe:
                    _, raw = await pipe.xread({done: "0-0"}, count=1, block=block).hgetall(
                        record).execute()
            except RedisError:
                await asyncio.sleep(0.5)
                continue
            if not raw:
                raise JobNotFound(job_id)
            if JobState(raw["state"]).terminal:
                return _job(job_id, raw)

    async def events(self, job_id: str, after: str | None = None, *,
                     block: int = 1000) -> AsyncIterator[StreamEvent]:
        """The job's events after entry id `after` (all of them without), then live ones, until
        the final one. Redis errors while following are retried (a restart is waited out).

        The final event is appended by the script that makes the state final, so once a quiet
        read finds the job final (or gone), one more read returns everything left: a stream
        without its final event then was expired, or `after` was past it."""
        key = self.keys.events(job_id)
        last = after or "0-0"
        wait: int | None = None  # the first read answers at once
        draining = False
        while True:
            try:
                answer = await self.reader.xread({key: last}, count=100,
                                                 block=None if draining else wait)
            except RedisError:
                await asyncio.sleep(0.5)
                continue
            wait = block
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = StreamEvent(entry_id, fields["type"], json.loads(fields["data"]),
                                        fields.get("final") == "1")
                    yield event
                    if event.final:
                        return
            if answer:
                continue
            if draining:
                return
            try:
                job = await self.get(job_id)
            except RedisError:
                continue
            draining = job is None or job.terminal


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _encode(value: Any) -> str:
    """JSON text of a record field (orjson: the result's base64 is encoded once, fast). What
    only the standard library writes exactly (an integer beyond 64 bits, which orjson would
    read back as a float) starts with a space: still JSON, and `decode` knows to use `json`."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return " " + json.dumps(value, separators=(",", ":"))


def decode(text: str) -> Any:
    return json.loads(text) if text[:1] == " " else orjson.loads(text)


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = dict(doc.get("meta") or {})
    if doc.get("request_hash"):
        meta["_request_hash"] = doc["request_hash"]
    return meta


def _job(job_id: str, raw: dict[str, str]) -> Job:
    doc = decode(raw["doc"])
    meta = _meta(doc)

    def load(name: str) -> Any:
        value = raw.get(name)
        return decode(value) if value else None

    def stamp(name: str) -> datetime | None:
        value = raw.get(name)
        return datetime.fromtimestamp(float(value), UTC) if value else None

    return Job(id=job_id, workflow=doc["workflow"], state=JobState(raw["state"]),
               progress=Progress(**(load("progress") or {})), result=load("result"),
               error=load("error"), idempotency_key=doc.get("idempotency_key"),
               prompt_id=raw.get("prompt_id") or None, meta=meta,
               created_at=stamp("created_at"), updated_at=stamp("updated_at"),
               expires_at=stamp("expires_at"))

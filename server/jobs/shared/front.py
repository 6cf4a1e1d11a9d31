"""`SharedJobs`: what the HTTP side of any replica does with jobs when they live in Redis.

It has the methods `answer()` and the `/jobs` routes use on the local `JobManager` (`get`,
`find_key`, `submit`, `wait`, `cancel`, `admission`, `depth`) plus `stream` for SSE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from redis.exceptions import RedisError, ResponseError

from comfygen.comfy.errors import ComfyUnavailableError
from comfygen.comfy.object_info import ObjectInfoCache
from server.errors import ApiError
from server.jobs.manager import Submission
from server.jobs.models import InvalidTransition, Job, JobState
from server.jobs.recent import Recent
from server.jobs.shared import codec
from server.jobs.shared.connection import GROUP, WAITING, Keys, connect
from server.jobs.shared.store import QueueFull, SharedStore, StreamEvent
from server.settings import Settings

log = logging.getLogger("comfygen.server")


class SharedSlot:
    """Admission in the shared mode is the queue length in Redis: nothing to hold locally."""

    def hand_over(self) -> SharedSlot:
        return self

    def release(self) -> None:
        pass

    async def __aenter__(self) -> SharedSlot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class SharedAdmission:
    """429 + Retry-After while the shared queue (waiting + running jobs) is at `limit`. Checked
    by the script that creates the job (one round trip for both): `acquire` holds nothing.

    After a refusal, and for `retry_after` seconds, `acquire` also reads the queue's length
    first, so that while the queue stays full a request is refused before its media are
    fetched and decoded; otherwise it costs no round trip."""

    def __init__(self, limit: int, retry_after: int,
                 depth: Callable[[], Awaitable[int]]) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self._depth = depth
        self._full_until = 0.0

    async def acquire(self) -> SharedSlot:
        if self.limit and time.monotonic() < self._full_until:
            try:
                depth = await self._depth()
            except RedisError:  # the create script answers for itself (503)
                return SharedSlot()
            if depth >= self.limit:
                raise self.refuse(depth)
        return SharedSlot()

    def refuse(self, depth: int) -> ApiError:
        self._full_until = time.monotonic() + self.retry_after
        return ApiError(
            429, "queue_full",
            f"the job queue is full ({depth} jobs waiting or running, limit "
            f"{self.limit}); retry after {self.retry_after} s",
            headers={"Retry-After": str(self.retry_after)}, queue=depth, limit=self.limit)


def unavailable(settings: Settings, exc: Exception) -> ApiError:
    return ApiError(503, "queue_unavailable",
                    f"the shared job store (Redis) is unavailable: {type(exc).__name__}; retry "
                    f"after {settings.retry_after} s",
                    headers={"Retry-After": str(settings.retry_after)})


class SharedJobs:
    """Jobs in Redis: created here, run by any worker, read/streamed/cancelled from anywhere."""

    local = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.redis = connect(settings)
        self.reader = connect(settings, blocking=2.0)
        self.raw = connect(settings, decode=False)  # bytes (the node definitions)
        self.store = SharedStore(self.redis, self.reader, self.keys, ttl=settings.job_ttl,
                                 events_max=settings.job_events_max)
        self._waiting = self.redis.register_script(WAITING)
        self._untaken = Recent(lambda: self._waiting(keys=[self.keys.queue], args=[GROUP]))
        self.admission = SharedAdmission(settings.queue_limit, settings.retry_after,
                                          self.store.depth)

    async def start(self) -> None:
        try:
            await ensure_group(self.redis, self.keys)
        except RedisError as exc:  # /ready says so; the workers create the group later
            log.warning("Redis unavailable at start: %s", exc)

    async def close(self) -> None:
        await self.store.close()
        await self.redis.aclose()
        await self.reader.aclose()
        await self.raw.aclose()

    def published_nodedefs(self) -> ObjectInfoCache:
        """The `/object_info` a worker last published, as an API replica's node definitions
        (live choices, OpenAPI enums); ComfyUnavailableError until one did. `watch_published`
        refreshes it when a worker publishes another."""

        async def fetch() -> bytes:
            try:
                body = await self.raw.get(self.keys.nodedefs)
            except RedisError as exc:
                raise ComfyUnavailableError(f"Redis is unavailable: {exc}") from exc
            if body is None:
                raise ComfyUnavailableError("no worker has published its node definitions yet")
            return body

        return ObjectInfoCache(fetch)

    async def watch_published(self, cache: ObjectInfoCache) -> None:
        """Refresh `cache` whenever the digest a worker published changes (a 64-byte read every
        `object_info_ttl` seconds). Runs until cancelled."""

        async def signature() -> str:
            try:
                digest = await self.raw.get(self.keys.nodedefs + ":digest")
            except RedisError as exc:
                raise ComfyUnavailableError(f"Redis is unavailable: {exc}") from exc
            return digest.decode() if digest else ""

        await cache.watch(signature, self.settings.object_info_ttl or 10.0)

    async def ping(self) -> str | None:
        """None when Redis answers, else why not."""
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            return f"Redis is unavailable: {type(exc).__name__}: {exc}"
        return None

    async def depth(self) -> int | None:
        return await self.store.depth()

    async def queue_positions(self, jobs: Iterable[Job]) -> dict[str, int]:
        """Each of these queued jobs' place among the jobs no worker has taken yet (1: the next
        one taken), by job id; a job a worker has taken (or a Redis error) has none. One script
        call a second at most (shared by every caller; again when a queued job is not in the
        last one), only when one of them is queued; the entries stay in Redis (only ids come
        back)."""
        queued = {j.id for j in jobs if j.state is JobState.QUEUED}
        if not queued:
            return {}
        try:
            waiting = await self._untaken.get()
            if not queued <= set(waiting):  # one may have been created since: look again
                waiting = await self._untaken.get(fresh=True)
        except RedisError:
            return {}
        return {job_id: i for i, job_id in enumerate(waiting, 1) if job_id in queued}

    async def get(self, job_id: str) -> Job:
        job = await self.store.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found",
                           f"no job {job_id!r}: it never existed or its result expired")
        return job

    async def find_key(self, key: str, request_hash: str | None) -> Job | None:
        return await self.store.find_key(key, request_hash)

    async def submit(self, sub: Submission, slot: SharedSlot) -> tuple[Job, bool]:
        """The job written to Redis (record, queue entry, first event) before this returns."""
        slot.release()
        meta = {"request_id": sub.run.id, "prompt": sub.run.graph}
        if sub.run.input is not None:
            meta["input"] = sub.run.input
        try:
            return await self.store.create(
                sub.workflow, job_id=str(uuid.uuid4()), idempotency_key=sub.idempotency_key,
                request_hash=sub.request_hash, meta=meta, sub=codec.dump(sub),
                prompt_id=str(uuid.uuid4()), limit=self.admission.limit,
                media=sub.run.attachments,
                private={"models": [list(m) for m in sub.run.models]} if sub.run.models else None)
        except QueueFull as full:
            raise self.admission.refuse(full.depth) from None

    async def wait(self, job_id: str) -> Job:
        """Until the job is final (woken by its event stream); its record. A 504 after
        `request_timeout` (no worker took it, or a long backlog): the job goes on."""
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                return await self.store.until_final(job_id)
        except TimeoutError:
            raise ApiError(504, "timeout", f"job {job_id} did not finish within "
                           f"{self.settings.request_timeout:g} s; it is still queued or running: "
                           f"follow it at /jobs/{job_id}", job_id=job_id) from None

    async def cancel(self, job_id: str) -> tuple[Job, str]:
        """Record the cancellation (with its final event), then tell the worker running it
        (pub/sub; workers also re-check the state at every heartbeat)."""
        job = await self.get(job_id)
        if job.terminal:
            raise ApiError(409, "job_finished", f"job {job_id} already {job.state.value}; "
                           "nothing to cancel", state=job.state.value)
        outcome = "interrupted" if job.state is JobState.RUNNING else "deleted"
        what = {"deleted": "removed from the queue before it ran",
                "interrupted": "interrupted while running"}[outcome]
        try:
            job = await self.store.cancel(job_id, {
                "error": f"job cancelled: {what}", "type": "cancelled",
                "cancelled": outcome, "id": job.meta.get("request_id")})
        except InvalidTransition as exc:  # it ended (or was cancelled) meanwhile
            raise ApiError(409, "job_finished", f"job {job_id} already "
                           f"{exc.job.state.value}; nothing to cancel",
                           state=exc.job.state.value) from None
        if outcome == "deleted":  # not started: out of the queue (and the depth) at once
            entry = await self.redis.hget(self.keys.job(job_id), "entry")
            if entry:
                await self.redis.xdel(self.keys.queue, entry)
        await self.redis.publish(self.keys.cancel, job_id)
        return job, outcome

    async def stream(self, job_id: str, last_event_id: str | None, *,
                     previews: bool = False) -> AsyncIterator[StreamEvent]:
        """The job's events after `last_event_id` until its final one (from any replica); with
        `previews`, its worker's previews too, as they come (events without an id)."""
        await self.get(job_id)
        after = last_event_id if last_event_id and _entry_id(last_event_id) else None
        if not previews:
            async for event in self.store.events(job_id, after):
                yield event
            return
        live = self.store.previews(job_id)
        kept = self.store.events(job_id, after)
        flashes: asyncio.Future[StreamEvent] | None = asyncio.ensure_future(anext(live))
        upcoming = asyncio.ensure_future(anext(kept))
        try:
            while True:
                await asyncio.wait([t for t in (flashes, upcoming) if t is not None],
                                   return_when=asyncio.FIRST_COMPLETED)
                if flashes is not None and flashes.done():
                    preview = None
                    try:
                        preview = flashes.result()
                        flashes = asyncio.ensure_future(anext(live))
                    except (StopAsyncIteration, RedisError, OSError) as exc:
                        log.debug("previews of job %s end: %r", job_id, exc)
                        flashes = None  # no more previews; the kept events go on
                    if preview is not None:
                        yield preview
                if upcoming.done():
                    try:
                        event = upcoming.result()
                    except StopAsyncIteration:
                        return
                    yield event
                    upcoming = asyncio.ensure_future(anext(kept))
        finally:
            for task in (flashes, upcoming):
                if task is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await task
            await live.aclose()
            await kept.aclose()


async def ensure_group(redis: object, keys: Keys) -> None:
    try:
        await redis.xgroup_create(keys.queue, GROUP, id="0", mkstream=True)  # type: ignore[attr-defined]
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _entry_id(value: str) -> bool:
    ms, _, seq = value.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())

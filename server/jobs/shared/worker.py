"""`SharedWorker`: pulls jobs from the Redis queue and runs them on this worker's ComfyUI.

It is the local `JobManager` (same running, following and webhook code) with its store and
events in Redis, plus a consumer loop: XREADGROUP for new jobs, XAUTOCLAIM for jobs whose worker
stopped sending heartbeats (XCLAIM ... JUSTID every beat), XPENDING delivery counts for the
dead-letter rule, pub/sub (and the state, read every beat) for cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import mimetypes
import os
import socket
import time
import uuid
from typing import Any

from redis.exceptions import RedisError

from comfygen.comfy.errors import ComfyError
from server.errors import ApiError
from server.execution.runner import Run, Runner
from server.jobs.manager import JobManager, Submission
from server.jobs.models import InvalidTransition, Job, JobNotFound, JobState
from server.jobs.shared import codec
from server.jobs.shared.connection import GROUP, connect
from server.jobs.shared.front import SharedJobs, ensure_group
from server.jobs.shared.store import SharedStore, decode
from server.settings import Settings
from server.webhooks import DeliveryResult

log = logging.getLogger("comfygen.server")


class SharedWorker(JobManager):
    """Runs jobs from the shared queue, one at a time (ComfyUI runs one prompt at a time)."""

    def __init__(self, runner: Runner, settings: Settings, shared: SharedJobs) -> None:
        # Not JobManager.__init__: no SQLite here.
        self.runner = runner
        self.settings = settings
        self.shared = shared
        self.keys = shared.keys
        self.redis = shared.redis
        self.reader = connect(settings, blocking=2.0)
        # Its own store: a worker's writes retry through a Redis restart.
        self.store = SharedStore(self.redis, self.reader, self.keys, ttl=settings.job_ttl,
                                 events_max=settings.job_events_max, retry_for=120.0)
        self.events = self.store  # type: ignore[assignment]  # same `publish` signature
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.cancelling: set[str] = set()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stopping = False
        self.beat = min(0.5, settings.job_claim_timeout / 3)
        self._loops: list[asyncio.Task[None]] = []
        self._reclaimed_at = 0.0
        self._swept_at = 0.0
        self._staged_at = 0.0
        self._purger = None
        root = runner.input_root
        # where this worker's ComfyUI keeps inputs (None: not reachable, nothing to remove)
        self.staged = None if root is None else self.keys.staged(hashlib.sha256(
            f"{socket.gethostname()}:{root.resolve()}".encode()).hexdigest()[:16])

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._pull(), name="worker-pull"),
                       asyncio.create_task(self._listen(), name="worker-cancels"),
                       asyncio.create_task(self._publish_nodedefs(), name="worker-nodedefs")]

    async def close(self) -> None:
        """Stop pulling; a job still running is left to the queue (another worker takes it)."""
        self.stopping = True
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await self.store.close()
        await self.reader.aclose()

    async def _publish_nodedefs(self) -> None:
        """Put this ComfyUI's `/object_info` in Redis for API replicas (when it changed; the key
        lives a day and is refreshed every minute)."""
        published = ""
        refreshed = 0.0
        while not self.stopping:
            await asyncio.sleep(1.0)
            if not self.runner.supervisor.ready:
                continue
            try:
                node_info = self.runner.supervisor.client.node_info
                nodedefs = await node_info.get()  # refreshed when ComfyUI's nodes or models change
                if node_info.digest != published:
                    body = json.dumps(nodedefs.raw, separators=(",", ":")).encode()
                    digest = node_info.digest
                    await self.shared.raw.set(self.keys.nodedefs, body, ex=86400)
                    await self.shared.raw.set(self.keys.nodedefs + ":digest", digest, ex=86400)
                    published, refreshed = digest, time.monotonic()
                elif time.monotonic() - refreshed > 60:
                    await self.redis.expire(self.keys.nodedefs, 86400)
                    await self.redis.expire(self.keys.nodedefs + ":digest", 86400)
                    refreshed = time.monotonic()
            except (ComfyError, RedisError) as exc:
                log.debug("publishing node definitions: %s", exc)

    # -- pulling ---------------------------------------------------------------------------

    async def _pull(self) -> None:
        group_ready = False
        while not self.stopping:
            try:
                if self.tasks:  # one job at a time: wait for it to end
                    await asyncio.wait(list(self.tasks.values()), timeout=1.0)
                    continue
                if not self.runner.supervisor.ready:
                    await asyncio.sleep(0.05)
                    continue
                await self._sweep_staged()
                if not group_ready:
                    await ensure_group(self.redis, self.keys)
                    group_ready = True
                item = await self._reclaim() or await self._next()
                if item is not None:
                    entry, job_id, deliveries, start = item
                    task = self.runner.spawn(self._work(entry, job_id, deliveries, start))
                    self.tasks[job_id] = task
                    task.add_done_callback(lambda _t, j=job_id: self._done(j))
            except RedisError as exc:
                log.warning("worker %s: Redis unavailable: %s", self.consumer, exc)
                group_ready = False
                await asyncio.sleep(1)

    def _done(self, job_id: str) -> None:
        self.tasks.pop(job_id, None)
        self.cancelling.discard(job_id)

    async def _next(self) -> tuple[str, str, int, tuple[str, str] | None] | None:
        """A new job: its entry, id, delivery 1 and what to run (the submission and prompt id
        the entry carries; None from an entry without them: read the record)."""
        answer = await self.reader.xreadgroup(GROUP, self.consumer, {self.keys.queue: ">"},
                                              count=1, block=1000)
        for _stream, entries in answer or []:
            for entry, fields in entries:
                start = ((fields["sub"], fields["prompt_id"])
                         if fields.get("sub") and fields.get("prompt_id") else None)
                return entry, fields["job"], 1, start
        return None

    async def _reclaim(self) -> tuple[str, str, int, None] | None:
        """A job whose worker went silent for `job_claim_timeout` (checked every quarter of it)."""
        now = time.monotonic()
        if now - self._reclaimed_at < self.settings.job_claim_timeout / 4:
            return None
        self._reclaimed_at = now
        idle = int(self.settings.job_claim_timeout * 1000)
        answer = await self.redis.xautoclaim(self.keys.queue, GROUP, self.consumer, idle,
                                             start_id="0-0", count=1)
        await self._forget_gone_consumers()
        for entry, fields in answer[1]:
            if not fields:
                continue
            pending = await self.redis.xpending_range(self.keys.queue, GROUP, min=entry,
                                                      max=entry, count=1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 2
            log.warning("worker %s took over job %s (delivery %d)", self.consumer, fields["job"],
                        deliveries)
            self._reclaimed_at = 0.0  # there may be more
            return entry, fields["job"], deliveries, None
        return None

    async def _forget_gone_consumers(self) -> None:
        """Drop consumers (workers that went away) with nothing pending, silent for an hour."""
        if time.monotonic() - self._swept_at < 300:
            return
        self._swept_at = time.monotonic()
        for consumer in await self.redis.xinfo_consumers(self.keys.queue, GROUP):
            if (consumer["name"] != self.consumer and not consumer["pending"]
                    and consumer["idle"] > 3_600_000):
                await self.redis.xgroup_delconsumer(self.keys.queue, GROUP, consumer["name"])

    # -- media: staged in this worker's ComfyUI, removed when the run ends ------------------

    async def _execute(self, job_id: str, sub: Submission, prompt_id: str | None = None) -> None:
        try:
            try:
                if sub.run.models:
                    await self._fetch_models(job_id)
                if sub.run.uploads:
                    await self._stage(job_id, sub)
            except asyncio.CancelledError:  # cancelled, or stopping: nothing staged stays
                self.runner.remove_uploads(sub.run)
                raise
            except Exception as exc:  # noqa: BLE001 - recorded in the job, never lost
                self.runner.remove_uploads(sub.run)
                if not isinstance(exc, ApiError):
                    log.exception("job %s: preparing its files failed", job_id)
                    exc = ApiError(500, "internal_error",
                                   f"internal error: {type(exc).__name__}: {exc}")
                await self._failed(job_id, sub, exc)
                return
            await super()._execute(job_id, sub, prompt_id)  # the run removes its uploads
        finally:
            if self.staged is not None and sub.run.uploads:
                with contextlib.suppress(RedisError):
                    await self.redis.srem(self.staged, *_members(job_id, sub.run.uploads))

    async def _fetch_models(self, job_id: str) -> None:
        """Download the model files the job's graph names by URL (checked by the API replica)
        into this worker's models folder, as models on demand do on one machine."""
        try:
            private = await self.redis.get(self.keys.private(job_id))
        except RedisError as exc:
            raise ApiError(503, "queue_unavailable",
                           f"could not read the job's model URLs from Redis: {exc}") from exc
        if private is None:  # the job named model URLs: their record must be there
            raise ApiError(500, "models_lost",
                           "the job's model URLs are no longer in Redis (the job ended, or "
                           "Redis evicted or lost them): submit the request again")
        wanted = json.loads(private).get("models") or []
        if not wanted:
            return
        on_demand = self.runner.on_demand
        if on_demand is None:
            raise ApiError(422, "models_on_demand_off",
                           f"{wanted[0][0]}: this worker has no models folder to download "
                           "model URLs into (COMFYGEN_MODELS_DIR)", field=wanted[0][0])
        fetch = on_demand.for_graph(None)
        await asyncio.gather(*(fetch(field, folder, url) for field, folder, url, _ in wanted))
        try:
            await self.runner.supervisor.client.node_info.get(refresh=True)  # lists them now
        except ComfyError as exc:
            raise ApiError(503, "comfyui_unavailable", str(exc),
                           headers={"Retry-After": str(self.settings.retry_after)}) from exc

    async def _stage(self, job_id: str, sub: Submission) -> None:
        """Upload the job's media files (kept in Redis with the job) to this worker's ComfyUI
        under the names its graph uses (overwriting what an earlier attempt left)."""
        try:
            files = await self.shared.raw.hgetall(self.keys.media(job_id))
        except RedisError as exc:
            raise ApiError(503, "queue_unavailable",
                           f"could not read the job's media files from Redis: {exc}") from exc
        missing = [name for name in sub.run.uploads if name.encode() not in files]
        if missing:
            raise ApiError(500, "media_lost",
                           f"the job's media files ({', '.join(missing)}) are no longer in "
                           "Redis (evicted, or Redis lost data): submit the request again")
        if self.staged is not None:
            with contextlib.suppress(RedisError):
                await self.redis.sadd(self.staged, *_members(job_id, sub.run.uploads))
        client = self.runner.supervisor.client
        for name in sub.run.uploads:
            subfolder, _, filename = name.rpartition("/")
            kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            try:
                answer = await client.upload(files[name.encode()], filename,
                                             subfolder=subfolder, content_type=kind)
            except ComfyError as exc:
                raise ApiError(503, "comfyui_unavailable",
                               f"could not upload {name} to this worker's ComfyUI: {exc}",
                               headers={"Retry-After": str(self.settings.retry_after)}) from exc
            if answer.get("name") != filename:
                raise ApiError(500, "media_staging_failed",
                               f"ComfyUI stored {name} as {answer.get('name')!r}")

    async def _sweep_staged(self) -> None:
        """Remove media that a worker on this ComfyUI staged for a job that has ended (its
        worker was killed before it removed them), every `job_claim_timeout`."""
        now = time.monotonic()
        if self.staged is None or now - self._staged_at < self.settings.job_claim_timeout:
            return
        self._staged_at = now
        members = await self.redis.smembers(self.staged)
        for member in members:
            job_id, _, name = member.partition("|")
            if job_id in self.tasks:
                continue
            job = await self.store.get(job_id)
            if job is None or job.terminal:
                self.runner.remove_uploads(Run(id="", graph={}, uploads=(name,)))
                await self.redis.srem(self.staged, member)

    # -- running ---------------------------------------------------------------------------

    async def _work(self, entry: str, job_id: str, deliveries: int,
                    start: tuple[str, str] | None) -> None:
        """Run one delivery of a job. A first one starts from what its queue entry carries
        (no read of the record, no write before the prompt is sent: its prompt id is in the
        record since creation; a job cancelled meanwhile is interrupted by the cancel message
        or the next heartbeat, and its finish refused)."""
        beat = asyncio.create_task(self._heartbeat(entry, job_id))
        self.store.claimed[job_id] = ""  # acked here at the end, unless `_ack_at_end`
        finished = False
        try:
            if start is not None:
                sub = codec.load(decode(start[0]))
                self._ack_at_end(job_id, entry, sub)
                await self._execute(job_id, sub, start[1])
            elif (loaded := await self.store.submission(job_id)) is None:
                pass  # expired
            elif loaded[0].terminal:
                if deliveries > 1:  # its worker died after the end: finish what it delivered
                    await self._finish_delivery(loaded[0], codec.load(loaded[1]))
            else:
                sub = codec.load(loaded[1])
                self._ack_at_end(job_id, entry, sub)
                if deliveries > self.settings.job_max_attempts:
                    await self._dead_letter(job_id, sub, deliveries)
                else:
                    if deliveries > 1:
                        with contextlib.suppress(InvalidTransition, JobNotFound):
                            await self.store.requeue(job_id, deliveries)
                        self.store.publish(job_id, "queued", {
                            "id": job_id, "state": "queued", "attempt": deliveries})
                    await self._execute(job_id, sub)
            finished = True
        except asyncio.CancelledError:
            finished = job_id in self.cancelling
            raise
        finally:
            beat.cancel()
            acked = self.store.claimed.pop(job_id, None) is None  # by the final script
            if not acked and (finished or not self.stopping):
                await self.store.flush()
                with contextlib.suppress(RedisError):  # one round trip, both or neither
                    async with self.redis.pipeline(transaction=True) as done:
                        await done.xack(self.keys.queue, GROUP, entry).xdel(
                            self.keys.queue, entry).execute()

    def _ack_at_end(self, job_id: str, entry: str, sub: Submission) -> None:
        """Let the script that ends the job take its entry off the queue (one round trip less
        after the result), unless webhooks follow the end: then the entry stays pending until
        they are sent, so a worker dying mid-delivery leaves them to the one that reclaims it."""
        self.store.claimed[job_id] = "" if sub.webhook or sub.webhook_v2 else entry

    async def _failed(self, job_id: str, sub: Submission, exc: ApiError) -> None:
        if self.stopping and exc.type == "server_stopped":
            return  # left in the queue: another worker runs it again
        await super()._failed(job_id, sub, exc)

    async def _dead_letter(self, job_id: str, sub: Submission, deliveries: int) -> None:
        error = ApiError(500, "dead_letter",
                         f"the job was given to a worker {deliveries - 1} times "
                         f"(COMFYGEN_JOB_MAX_ATTEMPTS={self.settings.job_max_attempts}) and no "
                         "worker finished it (each stopped mid-run); it will not be retried")
        await self.redis.xadd(self.keys.dead, {"job": job_id, "deliveries": deliveries},
                              maxlen=10000, approximate=True)
        log.error("job %s dead-lettered after %d deliveries", job_id, deliveries)
        await super()._failed(job_id, sub, error)

    async def _heartbeat(self, entry: str, job_id: str) -> None:
        """Keep the entry ours (resets its idle time) and notice a cancel, every beat."""
        while True:
            await asyncio.sleep(self.beat)
            try:
                await self.redis.xclaim(self.keys.queue, GROUP, self.consumer, 0, [entry],
                                        justid=True)
                state = await self.redis.hget(self.keys.job(job_id), "state")
            except RedisError:
                continue
            if state in (None, "cancelled") and job_id not in self.cancelling:
                asyncio.create_task(self._interrupt(job_id))

    async def _listen(self) -> None:
        """Cancels published by any replica; interrupt the ones running here."""
        while not self.stopping:
            try:
                async with self.reader.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.cancel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message" and message["data"] in self.tasks:
                            asyncio.create_task(self._interrupt(message["data"]))
            except (RedisError, OSError) as exc:
                log.debug("cancel listener: %s", exc)
                await asyncio.sleep(1)

    async def _interrupt(self, job_id: str) -> None:
        """Stop the job here: dequeue or interrupt its prompt in ComfyUI, or stop the task."""
        task = self.tasks.get(job_id)
        if task is None or job_id in self.cancelling:
            return
        self.cancelling.add(job_id)
        client = self.runner.supervisor.client
        try:
            job = await self.store.get(job_id)
            prompt_id = job.prompt_id if job is not None else None
            outcome = await client.cancel(prompt_id) if prompt_id else "not_found"
            if outcome == "not_found" and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                if prompt_id:
                    with contextlib.suppress(ComfyError):
                        await client.cancel(prompt_id)
            log.info("job %s cancelled on worker %s: %s", job_id, self.consumer, outcome)
            with contextlib.suppress(InvalidTransition, JobNotFound):  # when it reached us
                await self.store.update(job_id, {JobState.CANCELLED}, {
                    "interrupted_at": repr(time.time()), "interrupted_by": self.consumer})
        except (ComfyError, RedisError) as exc:
            log.warning("job %s: cancel on worker failed: %s", job_id, exc)

    # -- webhooks: once per webhook-id, whoever finishes the job ---------------------------

    async def _send_v2(self, job_id: str, url: str, event: str,
                       data: dict[str, Any]) -> DeliveryResult:
        from server.jobs.manager import webhook_id

        message = webhook_id(job_id, event)
        if not await self._claim_delivery(message):
            return DeliveryResult(True, message, url, 0, error="already sent by another worker")
        result = await self.runner.sender.send_v2(url, event, data,  # type: ignore[arg-type]
                                                  message_id=message)
        await self._record_delivery(message, result.delivered)
        return result

    async def _send_legacy(self, job_id: str, url: str, event: str,
                           payload: dict[str, Any]) -> DeliveryResult:
        from server.jobs.manager import webhook_id

        message = webhook_id(job_id, event)
        if not await self._claim_delivery(message):
            return DeliveryResult(True, message, url, 0, error="already sent by another worker")
        result = await self.runner.sender.send_legacy(url, payload)
        await self._record_delivery(message, result.delivered)
        return result

    async def _claim_delivery(self, message: str, *, take_over: bool = False) -> bool:
        """Ours to send: nobody claimed it, or (`take_over`) a dead worker left it `sending`."""
        ttl = max(1, int(self.settings.job_ttl))
        key = self.keys.hook(message)
        if await self.redis.set(key, "sending", nx=True, ex=ttl):
            return True
        return take_over and await self.redis.get(key) == "sending"

    async def _finish_delivery(self, job: Job, sub: Submission) -> None:
        """The webhook events of a job whose worker died while delivering them, each one it
        had not delivered (or given up on) yet: the `webhook_v2` event with the same
        `webhook-id` (receivers drop a repeat by that id), then the legacy `webhook` events in
        order; one the dead worker was sending when it died may arrive twice."""
        if job.state.value not in ("succeeded", "failed"):
            return
        from server.jobs.manager import legacy_failed, legacy_outputs, webhook_id

        error = dict(job.error or {})
        if sub.webhook_v2:
            if job.state.value == "succeeded":
                event, data = "prompt.complete", job.result
            else:
                event = "prompt.failed"
                data = {"id": sub.run.id, "prompt": sub.run.graph, "error": error.get("error"),
                        "error_type": error.get("type"),
                        "details": {k: v for k, v in error.items()
                                    if k not in ("error", "type", "id", "status")}}
                if sub.run.input is not None:
                    data["input"] = sub.run.input
            message = webhook_id(job.id, event)
            if await self._claim_delivery(message, take_over=True):
                log.warning("job %s: delivering %s again after its worker stopped", job.id,
                            event)
                result = await self.runner.sender.send_v2(sub.webhook_v2, event, data,
                                                          message_id=message)
                await self._record_delivery(message, result.delivered)
        if sub.webhook:
            legacy = (legacy_outputs(sub, job.result) if job.state.value == "succeeded"
                      else [legacy_failed(sub, error.get("error"))])
            for event, payload in legacy:
                message = webhook_id(job.id, event)
                if await self._claim_delivery(message, take_over=True):
                    log.warning("job %s: delivering webhook %s again after its worker stopped",
                                job.id, event)
                    result = await self.runner.sender.send_legacy(sub.webhook, payload)
                    await self._record_delivery(message, result.delivered)

    async def _record_delivery(self, message: str, delivered: bool) -> None:
        with contextlib.suppress(RedisError):
            await self.redis.set(self.keys.hook(message), "delivered" if delivered else "failed",
                                 ex=max(1, int(self.settings.job_ttl)))


def _members(job_id: str, names: tuple[str, ...]) -> list[str]:
    return [f"{job_id}|{name}" for name in names]

"""Async jobs: run a request in the background, record it in SQLite, stream its progress, cancel it.

A job is created for `Prefer: respond-async`, for a webhook, and for any request with an
`Idempotency-Key`. Its record (state, progress, result or error) lives in `server.jobs.JobStore`
and survives restarts; its events (from ComfyUI's websocket messages) go to `JobEvents` for SSE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pybase64

from comfygen.comfy.errors import ComfyError
from server.errors import ApiError, from_comfy
from server.execution.admission import Admission, Slot
from server.execution.runner import Run, Runner
from server.jobs import (
    InvalidTransition,
    Job,
    JobEvents,
    JobNotFound,
    JobState,
    JobStore,
    Progress,
)
from server.jobs.recent import Recent
from server.observability import bind
from server.settings import Settings
from server.webhooks import DeliveryResult

log = logging.getLogger("comfygen.server")

PROGRESS_WRITE_INTERVAL = 0.5
"""Seconds between progress writes to SQLite (every event still goes to listeners)."""
PREVIEW_INTERVAL = 0.5
"""Seconds between two previews of one job handed to its listeners (others are skipped)."""


@dataclass
class Submission:
    """What a job runs and where its result goes."""

    run: Run
    workflow: str
    webhook: str | None = None
    webhook_v2: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


def webhook_id(job_id: str, event: str) -> str:
    """The Standard Webhooks `webhook-id` of one event of one job: stable, so a receiver (and
    the shared mode's delivery record) can tell a repeat from a new message."""
    return f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'comfygen:{job_id}:{event}').hex}"


def legacy_outputs(sub: Submission, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The legacy `webhook` events of a finished job: one `output.complete` per image, each
    with its own event name for delivery records (`output.complete.{index}`)."""
    return [(f"output.complete.{index}", {"event": "output.complete", "image": image,
                                          "id": sub.run.id, "filename": name,
                                          "prompt": body["prompt"]})
            for index, (image, name) in enumerate(zip(body["images"], body["filenames"],
                                                      strict=True))]


def legacy_failed(sub: Submission, message: str | None) -> tuple[str, dict[str, Any]]:
    """The legacy `webhook` event of a failed job."""
    return "prompt.failed", {"event": "prompt.failed", "id": sub.run.id,
                             "prompt": sub.run.graph, "error": message}


class JobManager:
    """Creates, runs, follows and cancels jobs."""

    local = True
    """Jobs live in this process (SQLite + in-memory events); the shared mode says False."""

    def __init__(self, runner: Runner, settings: Settings) -> None:
        self.runner = runner
        self.settings = settings
        self.store = JobStore(settings.jobs_db, ttl=settings.job_ttl)
        self.events = JobEvents()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.cancelling: set[str] = set()
        self._purger: asyncio.Task[None] | None = None
        self._pending = Recent(self._comfy_pending)

    async def _comfy_pending(self) -> list[str]:
        return (await self.runner.supervisor.client.queue()).pending

    async def start(self) -> None:
        """Fail the jobs a previous process left unfinished, then expire old ones periodically."""
        restarted = ApiError(503, "server_restarted", "the server restarted before this job "
                             "finished; submit it again")
        recovered = await self.store.recover({**restarted.body(), "status": restarted.status})
        if recovered:
            log.warning("%d job(s) left unfinished by a previous process marked failed",
                        len(recovered))
        await self.store.purge_expired()
        self._purger = asyncio.create_task(self._purge_loop(), name="job-purge")

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        self.store.close()

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.settings.job_ttl))
            try:
                purged = await self.store.purge_expired()
            except Exception:  # noqa: BLE001 - the loop must survive a locked database
                log.exception("purging expired jobs failed")
                continue
            if purged:
                log.info("purged %d expired job(s)", purged)

    @property
    def admission(self) -> Admission:
        return self.runner.admission

    async def find_key(self, key: str, request_hash: str | None) -> Job | None:
        """The job first created with this Idempotency-Key (`IdempotencyConflict` if it was
        for a different request)."""
        return await self.store.find_key(key, request_hash)

    async def depth(self) -> int | None:
        """Jobs waiting or running that this server knows of (None: ask ComfyUI)."""
        return None

    async def queue_positions(self, jobs: Iterable[Job]) -> dict[str, int]:
        """Each of these queued jobs' place among the prompts waiting in ComfyUI (1: it starts
        next, as comfy-api-proxy counts), by job id; a job not waiting in ComfyUI's queue
        (running, ended, or ComfyUI down) has none. One `GET /queue` a second at most (shared by
        every caller; again when a queued job is not in the last one), and only when one of them
        is queued."""
        waiting = {j.prompt_id: j.id for j in jobs if j.state is JobState.QUEUED and j.prompt_id}
        if not waiting:
            return {}
        try:
            pending = await self._pending.get()
            if not waiting.keys() <= set(pending):  # one may have been queued since: look again
                pending = await self._pending.get(fresh=True)
        except ComfyError:
            return {}
        return {waiting[p]: i for i, p in enumerate(pending, 1) if p in waiting}

    async def get(self, job_id: str) -> Job:
        """The job, or 404 when unknown or expired."""
        job = await self.store.get(job_id)
        now = datetime.now(UTC)
        if job is None or (job.expires_at is not None and job.expires_at <= now):
            raise ApiError(404, "job_not_found",
                           f"no job {job_id!r}: it never existed or its result expired")
        return job

    async def submit(self, sub: Submission, slot: Slot) -> tuple[Job, bool]:
        """A new job started in the background (holding `slot` until it ends), or the job
        first created with this key."""
        meta = {"request_id": sub.run.id, "prompt": sub.run.graph}
        if sub.run.input is not None:
            meta["input"] = sub.run.input
        job, created = await self.store.create(
            sub.workflow, job_id=str(uuid.uuid4()), idempotency_key=sub.idempotency_key,
            request_hash=sub.request_hash, meta=meta)
        if created:
            self.events.publish(job.id, "queued", {"id": job.id, "state": "queued"})
            task = self.runner.spawn(self._execute(job.id, sub))
            self.tasks[job.id] = task
            held = slot.hand_over()
            task.add_done_callback(lambda _task: self._finished(job.id, sub, held))
        return job, created

    def _finished(self, job_id: str, sub: Submission, slot: Slot) -> None:
        """However the job's task ended (even cancelled before it ran): free its admission slot
        and delete the media it uploaded."""
        slot.release()
        self.runner.remove_uploads(sub.run)
        self.tasks.pop(job_id, None)
        self.cancelling.discard(job_id)

    async def wait(self, job_id: str) -> Job:
        """Wait until the job is final; return its record."""
        subscription = self.events.subscribe(job_id)
        try:
            job = await self.store.require(job_id)
            if not job.terminal:
                async for _event in subscription:
                    pass
        finally:
            subscription.close()
        return await self.store.require(job_id)

    # -- running ---------------------------------------------------------------------------------

    async def _execute(self, job_id: str, sub: Submission, prompt_id: str | None = None) -> None:
        """Run the job; `prompt_id` when the record already holds it (else a new one, written
        before the prompt is sent so a cancel finds it)."""
        known = prompt_id is not None
        prompt_id = prompt_id or str(uuid.uuid4())
        bind(job_id=job_id, prompt_id=prompt_id, workflow=sub.workflow)  # this task's log lines
        follower: asyncio.Task[None] | None = None
        try:
            if not known:
                await self.store.set_prompt_id(job_id, prompt_id)
            follower = asyncio.create_task(self._follow(job_id, prompt_id, sub.run.graph))
            await asyncio.sleep(0)  # let the follower subscribe before the prompt is submitted
            try:
                body = (await self.runner.run(sub.run, prompt_id)).model_dump(mode="json")
            except ApiError as exc:
                await self._failed(job_id, sub, exc)
                return
            except asyncio.CancelledError:
                if job_id not in self.cancelling:  # server shutting down past its drain time
                    error = ApiError(503, "server_stopped",
                                     "the server stopped before the job finished")
                    await asyncio.shield(self._failed(job_id, sub, error))
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and reported
                log.exception("job %s failed", job_id)
                await self._failed(job_id, sub, ApiError(
                    500, "internal_error", f"internal error: {type(exc).__name__}: {exc}"))
                return
            await self._succeeded(job_id, sub, body)
        finally:
            if follower is not None:
                follower.cancel()

    async def _succeeded(self, job_id: str, sub: Submission, body: dict[str, Any]) -> None:
        try:
            await self.store.succeed(job_id, body)
        except (InvalidTransition, JobNotFound):
            return  # cancelled meanwhile
        self.events.publish(job_id, "succeeded", {"id": job_id, "state": "succeeded"},
                            final=True)
        if sub.webhook_v2:
            result = await self._send_v2(job_id, sub.webhook_v2, "prompt.complete", body)
            if not result.delivered:
                log.warning("job %s: prompt.complete not delivered: %s", job_id, result.error)
                await self._notify_failed(job_id, sub, f"delivery of prompt.complete failed: "
                                          f"{result.error}", "delivery_failed", {}, legacy=False)
        if sub.webhook:
            for event, payload in legacy_outputs(sub, body):
                await self._send_legacy(job_id, sub.webhook, event, payload)

    async def _send_v2(self, job_id: str, url: str, event: str,
                       data: dict[str, Any]) -> DeliveryResult:
        """One signed event; its `webhook-id` is derived from the job and the event."""
        return await self.runner.sender.send_v2(url, event, data,  # type: ignore[arg-type]
                                                message_id=webhook_id(job_id, event))

    async def _send_legacy(self, job_id: str, url: str, event: str,
                           payload: dict[str, Any]) -> DeliveryResult:
        return await self.runner.sender.send_legacy(url, payload)

    async def _failed(self, job_id: str, sub: Submission, exc: ApiError) -> None:
        if job_id in self.cancelling:
            return  # DELETE records the cancellation
        error = {**exc.body(sub.run.id), "status": exc.status}
        try:
            await self.store.fail(job_id, error)
        except (InvalidTransition, JobNotFound):
            return
        self.events.publish(job_id, "failed", {"id": job_id, "state": "failed", "error": error},
                            final=True)
        details = {k: v for k, v in exc.body().items() if k not in ("error", "type", "id")}
        await self._notify_failed(job_id, sub, exc.message, exc.type, details)

    async def _notify_failed(self, job_id: str, sub: Submission, message: str, kind: str,
                             details: dict[str, Any], legacy: bool = True) -> None:
        work = sub.run
        if sub.webhook_v2:
            data: dict[str, Any] = {"id": work.id, "prompt": work.graph, "error": message,
                                    "error_type": kind, "details": details}
            if work.input is not None:
                data["input"] = work.input
            result = await self._send_v2(job_id, sub.webhook_v2, "prompt.failed", data)
            if not result.delivered:
                log.error("request %s: prompt.failed not delivered either: %s", work.id,
                          result.error)
        if sub.webhook and legacy:
            await self._send_legacy(job_id, sub.webhook, *legacy_failed(sub, message))

    async def _follow(self, job_id: str, prompt_id: str, graph: dict[str, Any]) -> None:
        """Turn ComfyUI's websocket messages about the prompt into job events and progress."""
        total = max(1, sum(1 for n in graph.values() if isinstance(n, dict)))
        done: set[str] = set()
        current: str | None = None
        written = previewed = 0.0
        async for event in self.runner.supervisor.client.events(prompt_id):
            data = event.data
            if event.type == "image":  # previews; output nodes' images are outputs
                now = time.monotonic()
                if (not data["output"] and now - previewed >= PREVIEW_INTERVAL
                        and self.events.subscriber_count(job_id)):
                    image = data["image"]
                    previewed = now
                    self.events.flash(job_id, "preview", {
                        "node_id": image.node, "content_type": image.content_type,
                        "data_base64": pybase64.b64encode_as_string(image.data)})
            elif event.type == "execution_start":
                with contextlib.suppress(InvalidTransition, JobNotFound):
                    await self.store.mark_running(job_id, prompt_id=prompt_id)
                self.events.publish(job_id, "running", {"id": job_id, "state": "running"})
            elif event.type == "execution_cached":
                done.update(str(n) for n in data.get("nodes") or [])
            elif event.type == "executing" and data.get("node") is not None:
                if current is not None:
                    done.add(current)
                current = str(data["node"])
                node = graph.get(current) or {}
                self.events.publish(job_id, "executing", {
                    "id": job_id, "node": current, "class_type": node.get("class_type"),
                    **_overall(len(done), total)})
            elif event.type == "progress":
                value, top = float(data.get("value") or 0), float(data.get("max") or 0)
                node = str(data.get("node")) if data.get("node") is not None else current
                step = value / top if top else 0.0
                self.events.publish(job_id, "progress", {
                    "id": job_id, "node": node, "value": value, "max": top,
                    **_overall(len(done) + step, total)})
                if time.monotonic() - written >= PROGRESS_WRITE_INTERVAL or value >= top:
                    written = time.monotonic()
                    with contextlib.suppress(JobNotFound):
                        await self.store.update_progress(
                            job_id, Progress(value=value, max=top, node=node))

    # -- cancelling --------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> tuple[Job, str]:
        """Dequeue if pending, interrupt if running; return the record and what was done."""
        job = await self.get(job_id)
        if job.terminal:
            raise ApiError(409, "job_finished", f"job {job_id} already {job.state.value}; "
                           "nothing to cancel", state=job.state.value)
        self.cancelling.add(job_id)
        task = self.tasks.get(job_id)
        outcome = "not_found"
        client = self.runner.supervisor.client
        try:
            if job.prompt_id:
                outcome = await client.cancel(job.prompt_id)
            if outcome == "not_found" and task is not None and not task.done():
                task.cancel()  # not in ComfyUI's queue yet (or already finished there)
                with contextlib.suppress(BaseException):
                    await task
                if job.prompt_id:
                    with contextlib.suppress(ComfyError):
                        await client.cancel(job.prompt_id)  # in case the submit got through
                outcome = "not_submitted"
        except ComfyError as exc:
            if task is None or task.done():
                self.cancelling.discard(job_id)
            raise from_comfy(exc, self.settings.retry_after) from exc
        what = {"deleted": "removed from ComfyUI's queue before it ran",
                "interrupted": "interrupted while running",
                "not_submitted": "stopped before it reached ComfyUI"}.get(outcome, outcome)
        try:
            job = await self.store.cancel(job_id, {
                "error": f"job cancelled: {what}", "type": "cancelled", "cancelled": outcome,
                "id": job.meta.get("request_id")})
        except InvalidTransition as exc:
            raise ApiError(409, "job_finished", f"job {job_id} already {exc.job.state.value}; "
                           "nothing to cancel", state=exc.job.state.value) from None
        self.events.publish(job_id, "cancelled", {"id": job_id, "state": "cancelled",
                                                  "cancelled": outcome}, final=True)
        return job, outcome


def _overall(done: float, total: int) -> dict[str, Any]:
    return {"nodes_done": int(done), "nodes_total": total,
            "percent": round(min(100.0, 100.0 * done / total), 1)}

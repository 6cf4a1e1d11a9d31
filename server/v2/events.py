"""A job's events (the engine's, local or shared) as Comfy API v2's SSE catalog.

`queued`/`running` → `status` (a queued one with its `queue_position`, repeated when that
changes); `executing`/`progress` → a `progress` snapshot; a preview image → a `preview`
without an id; the final event → one `output` per output file (on success), then the
final `status`. The SSE ids are the
engine's, so `Last-Event-ID` resumes where a client left (comfygen extension)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from server.jobs import Job, JobState
from server.v2 import contract
from server.v2.views import STATUS

Frame = tuple[str | None, str, dict[str, Any]]
FINAL = {"succeeded", "failed", "cancelled"}
log = logging.getLogger("comfygen.server")
POSITION_INTERVAL = 2.0


async def engine_events(jobs: Any, job: Job, last: str | None
                        ) -> AsyncIterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, type, data) of the job's events after `last`, until its final one."""
    if not jobs.local:
        async with contextlib.aclosing(jobs.stream(job.id, last, previews=True)) as stream:
            async for event in stream:  # a preview has no id (as below)
                yield event.id or None, event.type, event.data
        return
    after = int(last) if last and last.isdigit() else 0
    if job.terminal and not jobs.events.is_finished(job.id):
        yield str(after + 1), job.state.value, {}  # from before a restart: only the record
        return
    async with jobs.events.subscribe(job.id, after=after) as subscription:
        async for event in subscription:  # a preview has no id: a resume does not start there
            yield (None if event.transient else str(event.seq)), event.type, event.data


async def translate(jobs: Any, job: Job, last: str | None,
                    view: Callable[[Job], contract.Job],
                    every: float = POSITION_INTERVAL) -> AsyncIterator[Frame]:
    """The contract's frames for the job's events. While the job waits, its `queued` status
    carries its `queue_position`, and a new `status` frame (with the same id) follows each time
    the position changes (looked at every `every` seconds)."""
    events = aiter(engine_events(jobs, job, last))
    following: str | None = None  # the id of the `queued` status whose position is followed
    shown: int | None = None
    upcoming: asyncio.Future[Frame] | None = None
    try:
        if last and job.state is JobState.QUEUED:  # a reconnect while it waits: go on following
            following = last
            shown = await position(jobs, job.id)
            if shown is not None:
                yield last, "status", status("queued", shown)
        while True:
            upcoming = upcoming or asyncio.ensure_future(anext(events))
            if following is not None:
                await asyncio.wait((upcoming,), timeout=every)
                if not upcoming.done():
                    now = await position(jobs, job.id)
                    if now is not None and now != shown:
                        shown = now
                        yield following, "status", status("queued", now)
                    continue
            try:
                event_id, kind, data = await upcoming
            except StopAsyncIteration:
                return
            upcoming = None
            if kind == "preview":  # a transient image (JobManager._follow, or its worker's)
                yield event_id, "preview", data
                continue
            following = None
            if kind in ("queued", "running"):
                shown = await position(jobs, job.id) if kind == "queued" else None
                following = event_id if kind == "queued" else None
                yield event_id, "status", status(kind, shown)
            elif kind in ("executing", "progress"):
                yield event_id, "progress", progress(data)
            elif kind in FINAL:
                final = view(await jobs.get(job.id))
                for output in final.outputs:
                    yield event_id, "output", output.model_dump(mode="json")
                yield event_id, "status", status(STATUS[kind])
                return
    finally:
        if upcoming is not None and not upcoming.done():
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await upcoming
        await events.aclose()


async def position(jobs: Any, job_id: str) -> int | None:
    """The job's place in the queue now (None once a worker or ComfyUI has started it, or
    when it cannot be told now: a look that fails never ends the stream)."""
    try:
        current = await jobs.get(job_id)
        return (await jobs.queue_positions([current])).get(job_id)
    except Exception as exc:  # noqa: BLE001 - expired (404), Redis or ComfyUI away: no number
        log.debug("queue position of job %s not known: %r", job_id, exc)
        return None


def status(value: str, queue_position: int | None = None) -> dict[str, Any]:
    return contract.StatusEvent(status=value,  # type: ignore[arg-type]
                                queue_position=queue_position).model_dump(mode="json")


def progress(data: dict[str, Any]) -> dict[str, Any]:
    """A complete snapshot from an `executing` or `progress` event of the engine."""
    value = min(1.0, max(0.0, float(data.get("percent") or 0) / 100))
    snapshot = contract.Progress(
        value=value, nodes_done=int(data.get("nodes_done") or 0),
        nodes_total=int(data.get("nodes_total") or 0), current_node=data.get("node"),
        current_node_class=data.get("class_type"))
    if "max" in data:
        snapshot.step, snapshot.steps = int(data.get("value") or 0), int(data.get("max") or 0)
        snapshot.message = f"{snapshot.step}/{snapshot.steps}"
    return snapshot.model_dump(mode="json")

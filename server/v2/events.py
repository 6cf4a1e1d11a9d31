"""A job's events (the engine's, local or shared) as Comfy API v2's SSE catalog.

`queued`/`running` → `status`; `executing`/`progress` → a `progress` snapshot; the final
event → one `output` per output file (on success), then the final `status`. The SSE ids are the
engine's, so `Last-Event-ID` resumes where a client left (comfygen extension)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from server.jobs import Job
from server.v2 import contract
from server.v2.views import STATUS

Frame = tuple[str, str, dict[str, Any]]
FINAL = {"succeeded", "failed", "cancelled"}


async def engine_events(jobs: Any, job: Job, last: str | None
                        ) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    """(id, type, data) of the job's events after `last`, until its final one."""
    if not jobs.local:
        async for event in jobs.stream(job.id, last):
            yield event.id, event.type, event.data
        return
    after = int(last) if last and last.isdigit() else 0
    if job.terminal and not jobs.events.is_finished(job.id):
        yield str(after + 1), job.state.value, {}  # from before a restart: only the record
        return
    async with jobs.events.subscribe(job.id, after=after) as subscription:
        async for event in subscription:
            yield str(event.seq), event.type, event.data


async def translate(jobs: Any, job: Job, last: str | None,
                    view: Callable[[Job], contract.Job]) -> AsyncIterator[Frame]:
    """The contract's frames for the job's events."""
    async for event_id, kind, data in engine_events(jobs, job, last):
        if kind in ("queued", "running"):
            yield event_id, "status", status(kind)
        elif kind in ("executing", "progress"):
            yield event_id, "progress", progress(data)
        elif kind in FINAL:
            final = view(await jobs.get(job.id))
            for output in final.outputs:
                yield event_id, "output", output.model_dump(mode="json")
            yield event_id, "status", status(STATUS[kind])
            return


def status(value: str) -> dict[str, Any]:
    return contract.StatusEvent(status=value).model_dump(mode="json")  # type: ignore[arg-type]


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

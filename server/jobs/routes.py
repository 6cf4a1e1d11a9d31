"""`/jobs/{id}`: state, progress and result of an async run; its event stream; cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from server.errors import ErrorBody
from server.jobs import JobEvent
from server.jobs.manager import JobManager
from server.jobs.views import JobView

router = APIRouter(prefix="/jobs", tags=["jobs"])
PING_INTERVAL = 15.0
RECONNECT_MS = 2000
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SEP = "\n"
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such job (or it expired)"}}


def _jobs(request: Request) -> JobManager:
    return request.app.state.jobs


@router.get("/{job_id}", summary="Job status", response_class=JSONResponse, responses=NOT_FOUND,
            description="State, progress and, once final, the result (the 200 body the request "
                        "would have had) or the error.")
async def get_job(job_id: str, request: Request) -> JobView:
    return JobView.from_job(await _jobs(request).get(job_id))


@router.delete(
    "/{job_id}", summary="Cancel a job", response_class=JSONResponse,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The job already ended"}},
    description="Removes the prompt from ComfyUI's queue if it is pending (`cancelled: "
                "\"deleted\"`), interrupts it if it is running (`\"interrupted\"`).")
async def cancel_job(job_id: str, request: Request) -> JobView:
    job, outcome = await _jobs(request).cancel(job_id)
    return JobView.from_job(job, cancelled=outcome)


@router.get(
    "/{job_id}/events", summary="Job events (SSE)", responses={
        **NOT_FOUND, 200: {"content": {"text/event-stream": {}},
                           "description": "Server-sent events until the job ends"}},
    response_class=EventSourceResponse,
    description="`text/event-stream` of `queued`, `running`, `executing` (node), `progress` "
                "(value/max of the node, overall `percent`) and one final `succeeded`, `failed` "
                "or `cancelled`. Reconnect with `Last-Event-ID` to skip events already seen.")
async def job_events(job_id: str, request: Request,
                     last_event_id: Annotated[str | None, Header()] = None
                     ) -> EventSourceResponse:
    jobs = _jobs(request)
    job = await jobs.get(job_id)
    events: AsyncIterator[ServerSentEvent]
    if not jobs.local:  # shared: SSE ids are event stream entry ids
        events = _shared(jobs, job_id, last_event_id)
    else:
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
        if job.terminal and not jobs.events.is_finished(job_id):
            final = JobEvent(after + 1, job.state.value, {"id": job.id, "state": job.state.value},
                             final=True)  # from before a restart: only the record is left
            events = _once(final)
        else:
            events = _follow(jobs, job_id, after)
    return EventSourceResponse(events, headers=SSE_HEADERS, ping=PING_INTERVAL, sep=SEP,
                               ping_message_factory=lambda: ServerSentEvent(comment="ping",
                                                                            sep=SEP))


def sse_event(event_id: str, type_: str, data: dict[str, Any]) -> ServerSentEvent:
    """A job event as a server-sent event: its id, its type as `event`, JSON `data`."""
    return ServerSentEvent(json.dumps(data, separators=(",", ":")), id=event_id, event=type_,
                           sep=SEP)


async def _once(event: JobEvent) -> AsyncIterator[ServerSentEvent]:
    yield sse_event(str(event.seq), event.type, event.data)


async def _follow(jobs: JobManager, job_id: str, after: int) -> AsyncIterator[ServerSentEvent]:
    """The job's events after `after` until its final one; the listener is closed however the
    stream ends (the client going away cancels this generator)."""
    async with jobs.events.subscribe(job_id, after=after) as subscription:
        yield ServerSentEvent(retry=RECONNECT_MS, comment=f"job {json.dumps(job_id)}", sep=SEP)
        async for event in subscription:
            if not event.transient:  # previews are Comfy API v2's (server/v2/events.py)
                yield sse_event(str(event.seq), event.type, event.data)


async def _shared(jobs: Any, job_id: str, last: str | None) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(retry=RECONNECT_MS, comment=f"job {json.dumps(job_id)}", sep=SEP)
    async for event in jobs.stream(job_id, last):
        yield sse_event(event.id, event.type, event.data)

"""`/jobs/{id}`: state, progress and result of an async run; its event stream; cancel."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from server.errors import ErrorBody
from server.jobs import Job, JobEvent
from server.jobs.manager import JobManager
from server.runs.answer import job_links
from server.runs.schemas import JobView

router = APIRouter(prefix="/jobs", tags=["jobs"])
PING_INTERVAL = 15.0
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such job (or it expired)"}}


def _jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def view(job: Job, **extra: Any) -> dict[str, Any]:
    """The public form of a job record."""
    stamp = lambda t: t.isoformat().replace("+00:00", "Z") if t else None  # noqa: E731
    return {
        "id": job.id, "request_id": job.meta.get("request_id"), "workflow": job.workflow,
        "state": job.state.value, "progress": job.progress.model_dump(),
        "prompt_id": job.prompt_id, "created_at": stamp(job.created_at),
        "updated_at": stamp(job.updated_at), "expires_at": stamp(job.expires_at),
        "result": job.result, "error": job.error, **job_links(job.id), **extra,
    }


@router.get("/{job_id}", summary="Job status", response_model=JobView, responses=NOT_FOUND,
            description="State, progress and, once final, the result (the 200 body the request "
                        "would have had) or the error.")
async def get_job(job_id: str, request: Request) -> JSONResponse:
    return JSONResponse(view(await _jobs(request).get(job_id)))


@router.delete(
    "/{job_id}", summary="Cancel a job", response_model=JobView,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The job already ended"}},
    description="Removes the prompt from ComfyUI's queue if it is pending (`cancelled: "
                "\"deleted\"`), interrupts it if it is running (`\"interrupted\"`).")
async def cancel_job(job_id: str, request: Request) -> JSONResponse:
    job, outcome = await _jobs(request).cancel(job_id)
    return JSONResponse(view(job, cancelled=outcome))


@router.get(
    "/{job_id}/events", summary="Job events (SSE)", responses={
        **NOT_FOUND, 200: {"content": {"text/event-stream": {}},
                           "description": "Server-sent events until the job ends"}},
    response_class=StreamingResponse,
    description="`text/event-stream` of `queued`, `running`, `executing` (node), `progress` "
                "(value/max of the node, overall `percent`) and one final `succeeded`, `failed` "
                "or `cancelled`. Reconnect with `Last-Event-ID` to skip events already seen.")
async def job_events(job_id: str, request: Request,
                     last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    jobs = _jobs(request)
    job = await jobs.get(job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if job.terminal and not jobs.events.is_finished(job_id):
        final = JobEvent(after + 1, job.state.value, {"id": job.id, "state": job.state.value},
                         final=True)  # from before a restart: only the record is left
        return StreamingResponse(_once(final), media_type="text/event-stream", headers=headers)
    return StreamingResponse(_stream(jobs, job_id, after), media_type="text/event-stream",
                             headers=headers)


async def _once(event: JobEvent) -> AsyncIterator[str]:
    yield event.to_sse()


async def _stream(jobs: JobManager, job_id: str, after: int) -> AsyncIterator[str]:
    subscription = jobs.events.subscribe(job_id, after=after)
    queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in subscription:
                queue.put_nowait(event)
        finally:
            queue.put_nowait(None)

    pumping = asyncio.create_task(pump())
    try:
        yield f"retry: 2000\n: job {json.dumps(job_id)}\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), PING_INTERVAL)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if event is None:
                return
            yield event.to_sse()
    finally:
        pumping.cancel()
        with contextlib.suppress(BaseException):
            await pumping
        subscription.close()

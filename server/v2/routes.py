"""`/api/v2/jobs` and `/api/v2/health`: Comfy API v2's job routes over comfygen's job engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from server.errors import ApiError
from server.jobs import Job, JobState
from server.v2 import contract
from server.v2.asset_routes import asset_store, operation_id
from server.v2.events import translate
from server.v2.submit import JobRequest, create
from server.v2.views import STATUS, job_view

router = APIRouter(prefix="/api/v2", tags=["comfy-api-v2"], generate_unique_id_function=operation_id)
ENVELOPE = {"model": contract.ErrorEnvelope}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**ENVELOPE, "description": "`unauthorized`: the API key is missing or wrong"},
    404: {**ENVELOPE, "description": "`not_found`: no such job (or it expired)"},
    422: {**ENVELOPE, "description": "`invalid_workflow`, `workflow_format_ui`, "
                                     "`missing_asset`, `idempotency_key_reuse`, "
                                     "`invalid_request`"},
    429: {**ENVELOPE, "description": "`queue_full`; see Retry-After"},
}
PING_INTERVAL = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
LIST_MAX = 100


def origin(request: Request) -> str:
    """Scheme and authority of the request: output URLs are absolute in the contract."""
    return str(request.base_url).rstrip("/")


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A contract model as JSON, unset optional extensions left out."""
    return Response(body.model_dump_json(exclude_none=False), status, headers=headers,
                    media_type="application/json")


def view(request: Request, job: Job, queue_position: int | None = None) -> contract.Job:
    return job_view(job, origin(request), request.app.state.settings.job_ttl, queue_position)


async def positioned(request: Request, jobs: list[Job]) -> list[contract.Job]:
    """The contract's Jobs, each queued one with its `queue_position` (one look at the queue)."""
    positions = await request.app.state.jobs.queue_positions(jobs)
    return [view(request, job, positions.get(job.id)) for job in jobs]


@router.get("/health", summary="Health", response_model=contract.Health,
            description="Open (no API key). `degraded` while ComfyUI is not ready.")
async def health(request: Request) -> Response:
    supervisor = request.app.state.supervisor
    state = getattr(supervisor.state, "value", str(supervisor.state))
    ready = not request.app.state.jobs.local or supervisor.ready
    return answer(contract.Health(status="ok" if ready else "degraded", comfyui=state))


@router.post("/jobs", summary="Submit a job", status_code=201, response_model=contract.Job,
             responses=ERRORS, description=(
                 "An API-format graph (`core/ASSET` references allowed), or a typed workflow "
                 "`{\"workflow\": \"<model>/<name>\", \"inputs\": {...}}` (comfygen extension). "
                 "`Idempotency-Key` is single use: a reuse answers 422 "
                 "`idempotency_key_reuse`."))
async def submit_job(request: Request, body: JobRequest) -> Response:
    job = await create(request, body, asset_store(request))
    (created,) = await positioned(request, [job])
    return answer(created, 201, {"Location": f"/api/v2/jobs/{job.id}"})


@router.get("/jobs", summary="List jobs", response_model=contract.JobList, responses=ERRORS,
            description="Newest first; `status` filters (comma-separated contract states).")
async def list_jobs(request: Request,
                    status: Annotated[str | None, Query(max_length=200)] = None,
                    limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 50) -> Response:
    jobs = request.app.state.jobs  # local (SQLite) or shared (Redis): the same list()
    states = None
    if status:
        wanted = {s.strip() for s in status.split(",") if s.strip()}
        unknown = wanted - set(contract.JobStatus.__args__)  # type: ignore[attr-defined]
        if unknown:
            raise ApiError(422, "invalid_request", f"unknown status {sorted(unknown)}: use "
                           f"{', '.join(contract.JobStatus.__args__)}",  # type: ignore[attr-defined]
                           field="status")
        states = [JobState(s) for s, v in STATUS.items() if v in wanted] or None
        if states is None:  # only states comfygen never reports (canceling, expired)
            return answer(contract.JobList(jobs=[]))
    found = await jobs.store.list(states, limit)
    return answer(contract.JobList(jobs=await positioned(request, found)))


@router.get("/jobs/{job_id}", summary="Get a job", response_model=contract.Job, responses=ERRORS)
async def get_job(job_id: str, request: Request) -> Response:
    (job,) = await positioned(request, [await request.app.state.jobs.get(job_id)])
    return answer(job)


@router.get("/jobs/{job_id}/workflow", summary="The graph a job ran", responses=ERRORS)
async def get_workflow(job_id: str, request: Request) -> Response:
    job = await request.app.state.jobs.get(job_id)
    body = {"workflow": job.meta.get("prompt") or {}, "format": "api"}
    return Response(json.dumps(body), media_type="application/json")


@router.post("/jobs/{job_id}/cancel", summary="Cancel a job", response_model=contract.Job,
             responses=ERRORS, description="Idempotent: a finished job is answered as it is.")
async def cancel_job(job_id: str, request: Request) -> Response:
    jobs = request.app.state.jobs
    try:
        job, _ = await jobs.cancel(job_id)
    except ApiError as exc:
        if exc.type != "job_finished":
            raise
        job = await jobs.get(job_id)
    return answer(view(request, job))


@router.get("/jobs/{job_id}/events", summary="Job events (SSE)", responses={
    **ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Until the job ends"}},
    response_class=EventSourceResponse, description=(
        "`status`, `progress`, `output` (each output when the job succeeds) events. "
        "Resumable with `Last-Event-ID` (comfygen extension)."))
async def job_events(job_id: str, request: Request,
                     last_event_id: Annotated[str | None, Header()] = None
                     ) -> EventSourceResponse:
    jobs = request.app.state.jobs
    job = await jobs.get(job_id)

    async def frames() -> AsyncIterator[ServerSentEvent]:
        async for event_id, kind, data in translate(jobs, job, last_event_id,
                                                    lambda j: view(request, j)):
            yield ServerSentEvent(json.dumps(data, separators=(",", ":")), id=event_id,
                                  event=kind, sep="\n")

    return EventSourceResponse(frames(), headers=SSE_HEADERS, ping=PING_INTERVAL, sep="\n")

"""The public form of a job, as `/jobs/{id}` answers it (and `/openapi.json` declares it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from server.execution.results import NodeTime
from server.jobs.models import Job


class JobProgress(BaseModel):
    value: float = Field(description="Steps done in the node reporting progress")
    max: float
    node: str | None = None


class JobTimings(BaseModel):
    """Where a finished job's time went, in milliseconds (the same numbers as `result.stats`)."""

    queue_ms: int | None = None
    execution_ms: int | None = None
    outputs_ms: int | None = None
    nodes: list[NodeTime] = Field(default=[], description=(
        "Each node ComfyUI ran or served from cache, in execution order"))

    @classmethod
    def of(cls, result: Any) -> JobTimings | None:
        stats = result.get("stats") if isinstance(result, dict) else None
        if not isinstance(stats, dict) or "queue_ms" not in stats:
            return None
        return cls.model_validate(stats, extra="ignore")


class JobView(BaseModel):
    """A job: its state, progress and, once final, its result or error."""

    id: str
    request_id: str | None = None
    workflow: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: JobProgress
    prompt_id: str | None = Field(default=None, description="ComfyUI's prompt id")
    created_at: str
    updated_at: str
    expires_at: str | None = None
    result: dict[str, Any] | None = Field(default=None, description=(
        "The 200 body the request would have had (images, filenames, outputs, stats...)"))
    error: dict[str, Any] | None = Field(default=None, description=(
        "The error body (`error`, `type`, details; `status` is its HTTP status)"))
    timings: JobTimings | None = Field(default=None, description=(
        "Once succeeded: queue, execution and output times and per-node durations"))
    status_url: str
    events_url: str
    cancelled: str | None = Field(default=None, exclude_if=lambda value: value is None,
                                  description=(
        "Only in DELETE answers: `deleted` (removed from the queue), `interrupted` (was "
        "running) or `not_submitted` (stopped before reaching ComfyUI)"))

    @classmethod
    def from_job(cls, job: Job, *, cancelled: str | None = None) -> JobView:
        """The view of a stored job; `cancelled` is what a DELETE did."""
        return cls(
            id=job.id, request_id=job.meta.get("request_id"), workflow=job.workflow,
            state=job.state.value, progress=JobProgress(**job.progress.model_dump()),
            prompt_id=job.prompt_id, created_at=_stamp(job.created_at),
            updated_at=_stamp(job.updated_at),
            expires_at=_stamp(job.expires_at) if job.expires_at else None,
            result=job.result, error=job.error, timings=JobTimings.of(job.result),
            **job_links(job.id), cancelled=cancelled,
        )


def _stamp(moment: datetime) -> str:
    """ISO 8601 with `Z` for UTC, e.g. `2026-01-31T12:00:00.123456Z`."""
    return moment.isoformat().replace("+00:00", "Z")


def job_links(job_id: str) -> dict[str, str]:
    """Where a job is followed: its status and its event stream."""
    return {"status_url": f"/jobs/{job_id}", "events_url": f"/jobs/{job_id}/events"}

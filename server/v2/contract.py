"""The response bodies of Comfy API v2, as comfy-sdk 0.5.0's `comfy_low.models` validates them.

Written from that contract (docs/comfy-api-v2.md pins the version); the suite checks every
`/api/v2` answer against the SDK's own models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "succeeded", "canceling", "canceled", "failed",
                    "expired"]
OutputType = Literal["image", "video", "audio", "text", "file", "latent"]
CONTRACT_VERSION = "comfy-sdk 0.5.0 (comfy_low/models, Comfy API v2 core v1)"


class Progress(BaseModel):
    """A complete progress snapshot: overall fraction, node counts, the current sampler step."""

    value: float = Field(ge=0.0, le=1.0)
    nodes_done: int
    nodes_total: int
    current_node: str | None = None
    current_node_class: str | None = None
    step: int | None = None
    steps: int | None = None
    message: str | None = None


class Output(BaseModel):
    """One output file of a job; also an asset (`id`), its bytes at `url`."""

    node_id: str
    name: str
    type: OutputType
    content_type: str
    size_bytes: int
    id: str
    hash: str | None = None
    url: str
    url_expires_at: datetime
    job_id: str | None = None


class JobError(BaseModel):
    """Why a job failed (inside the job, not an HTTP error)."""

    code: str
    message: str
    node_id: str | None = None
    class_type: str | None = None
    traceback: str | None = None


class JobUrls(BaseModel):
    self: str
    events: str
    cancel: str


class Job(BaseModel):
    """One execution of a workflow: the authoritative, pollable state."""

    id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime
    queue_position: int | None
    progress: Progress | None
    outputs: list[Output]
    error: JobError | None
    metrics: dict[str, int | None] | None = None
    urls: JobUrls
    workflow: str | None = Field(default=None, description=(
        "comfygen extension: the typed workflow (`<model>/<name>`) the job ran, or `prompt`"))


class JobList(BaseModel):
    """One page of jobs, newest first (a single page: no `next_cursor`)."""

    jobs: list[Job]
    truncated: bool = False


class Asset(BaseModel):
    """An uploaded file, identified by a UUID, deduplicated by its blake3 hash."""

    id: str
    hash: str | None
    size_bytes: int
    content_type: str
    file_path: str | None = None
    created_new: bool | None = None
    created_at: datetime
    url: str
    url_expires_at: datetime
    expires_at: datetime | None = None
    job_id: str | None = None


class StatusEvent(BaseModel):
    status: JobStatus
    queue_position: int | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    comfyui: str = Field(description="comfygen extension: the supervisor's view of ComfyUI")
    contract: str = CONTRACT_VERSION


class Error(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    """Every `/api/v2` error: a machine `code`, a readable `message`, details by code."""

    error: Error

"""Job records: state, progress, result or error, and their timestamps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class JobState(StrEnum):
    """Where a job is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for succeeded, failed and cancelled."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})


class Progress(BaseModel):
    """Progress as ComfyUI reports it: `value` of `max` steps in `node`."""

    value: float = 0
    max: float = 0
    node: str | None = None


class Job(BaseModel):
    """One submitted workflow run as the store keeps it."""

    id: str
    workflow: str
    state: JobState
    progress: Progress = Field(default_factory=Progress)
    result: Any = None
    result_path: str | None = None
    error: dict[str, Any] | None = None
    idempotency_key: str | None = None
    prompt_id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        """True once the job can no longer change."""
        return self.state.terminal


class JobNotFound(KeyError):
    """No job with this id (it never existed or has expired)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(job_id)


class InvalidTransition(Exception):
    """The job is already in a state that cannot move to the requested one."""

    def __init__(self, job: Job, target: JobState) -> None:
        self.job = job
        self.target = target
        super().__init__(f"job {job.id} is {job.state.value}; it cannot become {target.value}")


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different request."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(
            f"idempotency key already used by job {job.id} for a different request; use a new key"
        )

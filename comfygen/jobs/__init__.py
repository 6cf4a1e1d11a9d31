"""Async jobs: a SQLite store that survives restarts and a per-job event broadcaster for SSE."""

from comfygen.jobs.events import JobEvent, JobEvents, Subscription
from comfygen.jobs.models import (
    IdempotencyConflict,
    InvalidTransition,
    Job,
    JobNotFound,
    JobState,
    Progress,
)
from comfygen.jobs.store import JobStore

__all__ = [
    "IdempotencyConflict",
    "InvalidTransition",
    "Job",
    "JobEvent",
    "JobEvents",
    "JobNotFound",
    "JobState",
    "JobStore",
    "Progress",
    "Subscription",
]

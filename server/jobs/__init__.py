"""Async jobs: a SQLite store that survives restarts and a per-job event broadcaster for SSE."""

from server.jobs.events import JobEvent, JobEvents, Subscription
from server.jobs.models import (
    IdempotencyConflict,
    InvalidTransition,
    Job,
    JobNotFound,
    JobState,
    Progress,
)
from server.jobs.store import JobStore

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

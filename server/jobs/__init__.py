"""Async jobs and their HTTP face: the SQLite record that survives restarts, per-job events for
SSE, the manager that runs, follows and cancels them, and the `/jobs` routes."""

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

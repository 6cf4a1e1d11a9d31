"""Shared jobs: many API replicas and workers around one Redis/Valkey (docs/architecture.md)."""

from server.jobs.shared.front import SharedJobs
from server.jobs.shared.store import SharedStore, StreamEvent
from server.jobs.shared.worker import SharedWorker

__all__ = ["SharedJobs", "SharedStore", "SharedWorker", "StreamEvent"]

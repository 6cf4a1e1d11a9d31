"""A comfygen job as Comfy API v2 shows it: status names, outputs as assets, progress, error."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.jobs import Job
from server.v2.contract import Job as V2Job
from server.v2.contract import JobError, JobUrls, Output, Progress

STATUS = {"queued": "queued", "running": "running", "succeeded": "succeeded",
          "failed": "failed", "cancelled": "canceled"}
"""comfygen's job states by their contract names (comfygen cancels at once: no `canceling`)."""
ERROR_CODES = {"execution_error": "node_execution_error", "comfyui_validation": "invalid_workflow",
               "cancelled": "canceled"}
OUTPUT_PREFIX = "out_"
"""Output asset ids are `out_<job id>_<index>`: the job that owns the bytes is in the id."""


def output_id(job_id: str, index: int) -> str:
    return f"{OUTPUT_PREFIX}{job_id}_{index}"


def parse_output_id(asset_id: str) -> tuple[str, int] | None:
    """(job id, file index) of an output asset id; None for any other id."""
    if not asset_id.startswith(OUTPUT_PREFIX):
        return None
    job_id, _, index = asset_id[len(OUTPUT_PREFIX):].rpartition("_")
    return (job_id, int(index)) if job_id and index.isdigit() else None


def job_view(job: Job, base: str, ttl: float, queue_position: int | None = None) -> V2Job:
    """The contract's Job for a stored job; `base` is the request's origin (for output URLs),
    `queue_position` its place in the queue while it waits (1: next;
    `JobManager.queue_positions`)."""
    result = job.result if isinstance(job.result, dict) else {}
    stats = result.get("stats") or {}
    expires = job.expires_at or job.created_at + timedelta(seconds=ttl)
    started = None
    if isinstance(stats.get("queue_ms"), int):
        started = job.created_at + timedelta(milliseconds=stats["queue_ms"])
    path = f"/api/v2/jobs/{job.id}"
    return V2Job(
        id=job.id, status=STATUS[job.state.value], created_at=job.created_at,  # type: ignore[arg-type]
        started_at=started, completed_at=job.updated_at if job.terminal else None,
        expires_at=expires, queue_position=queue_position, progress=progress(job),
        outputs=outputs(job, base, expires), error=error(job),
        metrics={"queue_ms": stats.get("queue_ms"), "execution_ms": stats.get("execution_ms")},
        urls=JobUrls(self=path, events=f"{path}/events", cancel=f"{path}/cancel"),
        workflow=job.workflow,
    )


def progress(job: Job) -> Progress | None:
    """The stored snapshot: whole once succeeded, the sampler's steps while running."""
    graph = job.meta.get("prompt") or {}
    total = sum(1 for node in graph.values() if isinstance(node, dict))
    if job.state.value == "succeeded":
        return Progress(value=1.0, nodes_done=total, nodes_total=total)
    if job.state.value == "queued":
        return None
    p = job.progress
    value = min(1.0, max(0.0, p.value / p.max)) if p.max else 0.0
    node = graph.get(p.node or "") or {}
    return Progress(value=value, nodes_done=0, nodes_total=total, current_node=p.node,
                    current_node_class=node.get("class_type"),
                    step=int(p.value) if p.max else None, steps=int(p.max) if p.max else None)


def outputs(job: Job, base: str, expires: datetime) -> list[Output]:
    """Every output file of a succeeded job, in `images` order, each one an asset."""
    result = job.result if isinstance(job.result, dict) else {}
    images = result.get("images") or []
    found: list[Output] = []
    for node_id, node in (result.get("outputs") or {}).items():
        for file in node.get("files") or []:
            index = file["index"]
            data = images[index] if index < len(images) else ""
            asset = output_id(job.id, index)
            found.append(Output(
                node_id=str(node_id), name=file["filename"], type=file["media"],
                content_type=file["content_type"], size_bytes=decoded_size(data), id=asset,
                url=f"{base}/api/v2/assets/{asset}/content", url_expires_at=expires,
                job_id=job.id))
    return sorted(found, key=lambda o: int(o.id.rpartition("_")[2]))


def decoded_size(data: str) -> int:
    """Bytes of a base64 text without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=") if data else 0


def error(job: Job) -> JobError | None:
    """A failed (or cancelled) job's error: code, message, node."""
    if job.error is None or job.state.value not in ("failed", "cancelled"):
        return None
    body: dict[str, Any] = job.error
    kind = str(body.get("type") or job.state.value)
    node = body.get("node_id")
    return JobError(code=ERROR_CODES.get(kind, kind), message=str(body.get("error") or kind),
                    node_id=str(node) if node is not None else None,
                    class_type=body.get("node_type"))

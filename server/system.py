"""Probes and the live model list."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from comfygen.comfy.errors import ComfyError
from comfygen.comfy.supervisor import Supervisor
from server.deps import ClientDep, SettingsDep, SupervisorDep
from server.settings import Settings
from server.version import VERSION

router = APIRouter(tags=["system"])


@router.get("/health", summary="Health probe",
            description="200 once ComfyUI has come up (and any warmup ran); 503 before.")
async def health(request: Request, supervisor: SupervisorDep,
                 settings: SettingsDep) -> JSONResponse:
    response = _health(supervisor, settings)
    reload = getattr(request.app.state, "reload", None)  # `comfygen serve --reload` only
    if reload is not None:  # which workflows still run their last good version, and why
        body = orjson.loads(response.body)
        response = JSONResponse({**body, "reload": reload.state}, response.status_code)
    return response


def _health(supervisor: Supervisor, settings: Settings) -> JSONResponse:
    if settings.role == "api":  # no ComfyUI of its own: alive is healthy (Redis: see /ready)
        return JSONResponse({"version": VERSION, "status": "healthy", "role": "api"})
    proc = supervisor.process.proc if supervisor.process is not None else None
    comfyui = {"state": supervisor.state.value, "restarts": supervisor.restarts,
               "pid": proc.pid if proc is not None else None}
    if supervisor.warm:
        return JSONResponse({"version": VERSION, "status": "healthy", "comfyui": comfyui})
    return JSONResponse({"version": VERSION, "status": "not healthy", "comfyui": comfyui,
                         "reason": supervisor.last_error or supervisor.state.value}, 503)


@router.get("/ready", summary="Readiness probe",
            description="200 while ComfyUI is up, the websocket to it is connected, its "
                        "queue is below `max_queue_size` and (`models_pull=before_start`) the "
                        "model files are in place; 503 otherwise, with the reason.")
async def ready(request: Request, supervisor: SupervisorDep,
                settings: SettingsDep) -> JSONResponse:
    if settings.redis_url:
        return await shared_ready(request, supervisor, settings)
    reason = None
    queue = None
    if not supervisor.ready:
        reason = supervisor.last_error or f"ComfyUI is {supervisor.state.value}"
        if supervisor.state.value == "ready" and not supervisor.client.connected:
            reason = "the websocket to ComfyUI is not connected"
    else:
        try:
            queue = (await supervisor.client.queue()).size
        except ComfyError as exc:
            reason = str(exc)
        else:
            if queue >= settings.max_queue_size:
                reason = f"ComfyUI's queue holds {queue} prompts (limit {settings.max_queue_size})"
    if reason is None and request.app.state.models is not None:
        reason = request.app.state.models.waiting()
    if reason is None:
        return JSONResponse({"version": VERSION, "status": "ready", "queue": queue})
    return JSONResponse({"version": VERSION, "status": "not ready", "reason": reason}, 503,
                        headers={"Retry-After": str(settings.retry_after)})


async def shared_ready(request: Request, supervisor: Supervisor,
                       settings: Settings) -> JSONResponse:
    """Shared jobs: Redis answers (every role) and, for a worker, its ComfyUI is up. `queue`
    is the shared depth (jobs waiting or running on any worker), for autoscaling."""
    jobs = request.app.state.jobs
    reason = await jobs.ping()
    queue = None
    if reason is None:
        try:
            queue = await jobs.depth()
        except Exception as exc:  # noqa: BLE001 - any Redis failure makes the replica unready
            reason = f"Redis is unavailable: {type(exc).__name__}"
    if reason is None and settings.role != "api" and not supervisor.ready:
        reason = supervisor.last_error or f"ComfyUI is {supervisor.state.value}"
    if reason is None and request.app.state.models is not None:
        reason = request.app.state.models.waiting()
    body = {"version": VERSION, "role": settings.role, "queue": queue}
    if reason is None:
        return JSONResponse({**body, "status": "ready"})
    return JSONResponse({**body, "status": "not ready", "reason": reason}, 503,
                        headers={"Retry-After": str(settings.retry_after)})


@router.get("/models", summary="List models",
            description="Model files by folder, live from ComfyUI.",
            response_model=dict[str, list[str]])
async def models(client: ClientDep) -> dict[str, list[str]]:
    return await client.models()

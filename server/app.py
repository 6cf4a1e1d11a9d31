"""`create_app(settings, registry)`: the FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home
from comfygen.comfy.supervisor import Supervisor
from comfygen.runtime import Workflow
from server import compat_env, observability, openapi, system
from server.errors import install_handlers
from server.execution.runner import Runner
from server.jobs import routes as job_routes
from server.jobs.manager import JobManager
from server.models import routes as model_routes
from server.models.puller import ModelPuller
from server.runs import prompt, workflows
from server.security import access
from server.settings import Settings
from server.v2 import asset_routes as v2_asset_routes
from server.v2 import routes as v2_routes
from server.version import VERSION
from server.webhooks.sender import WebhookSender

log = logging.getLogger("comfygen.server")


def make_supervisor(settings: Settings) -> Supervisor:
    """Attach to `comfyui_url`, or launch ComfyUI from `comfyui_home` / `comfyui_command`."""
    options = {
        "heartbeat": settings.heartbeat, "poll_interval": settings.poll_interval,
        "fast_poll_interval": settings.fast_poll_interval,
        "unavailable_grace": settings.unavailable_grace,
        "object_info_ttl": settings.object_info_ttl,
    }
    warmup = None
    if settings.warmup_workflow is not None:
        warmup = json.loads(settings.warmup_workflow.read_text(encoding="utf-8"))
    common = {"warmup": warmup, "restart": settings.restart_comfyui,
              "startup_timeout": settings.startup_timeout, "client_options": options}
    if settings.comfyui_url:
        return Supervisor(url=settings.comfyui_url, **common)
    home = settings.comfyui_home or default_comfyui_home()
    extra = {"port": settings.comfyui_port} if settings.comfyui_port else {}
    process = ComfyUIProcess.from_home(
        home, settings.comfyui_base_dir.resolve(), extra_args=tuple(settings.comfyui_args),
        custom_command=tuple(settings.comfyui_command) if settings.comfyui_command else None,
        **extra,
    )
    return Supervisor(process=process, **common)


def create_app(settings: Settings, registry: Mapping[str, Workflow]) -> FastAPI:
    """The app: probes, /models, /prompt, one route per workflow, live /openapi.json, /docs."""

    if settings.role != "all" and not settings.redis_url:
        raise ValueError(f"role {settings.role!r} needs COMFYGEN_REDIS_URL (shared jobs)")
    if settings.redis_url:
        return _shared_app(settings, registry)
    ModelPuller.from_settings(settings, registry)  # a bad models_pull setup fails here, at once

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        compat_env.warn_unsupported(log)
        supervisor = make_supervisor(settings)
        app.state.supervisor = supervisor
        runner = Runner(supervisor, settings, WebhookSender.from_settings(settings))
        app.state.runner = runner
        runner.models = app.state.models = ModelPuller.from_settings(settings, registry)
        if runner.models is not None:
            await runner.models.start()
        app.state.jobs = JobManager(runner, settings)
        await app.state.jobs.start()
        await supervisor.start_in_background()
        try:
            yield
        finally:
            log.info("shutting down: draining background work, then stopping ComfyUI")
            if runner.models is not None:
                await runner.models.close()
            if runner.on_demand is not None:
                await runner.on_demand.close()
            await runner.drain(settings.drain_timeout)
            await app.state.jobs.close()
            await supervisor.stop()

    return _build(lifespan, settings, registry)


def _build(lifespan: Any, settings: Settings, registry: Mapping[str, Workflow],
           *, http: bool = True) -> FastAPI:
    app = FastAPI(title="comfygen", version=VERSION, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None,
                  generate_unique_id_function=openapi.operation_id)
    app.state.settings = settings
    app.state.registry = registry
    app.state.models = None  # the ModelPuller, set by the lifespan when models_pull is on

    install_handlers(app)
    if http:
        # First: FastAPI matches routes in order, and these carry most of the traffic.
        app.include_router(workflows.build_router(registry))
    app.include_router(system.router)
    if http:
        app.include_router(prompt.router)
        app.include_router(job_routes.router)
        app.include_router(v2_routes.router)  # Comfy API v2 (docs/comfy-api-v2.md)
        app.include_router(v2_asset_routes.router)
        app.include_router(model_routes.router)  # POST /download (models on demand)
    openapi.install(app, registry, settings)
    access.install(app, settings)
    observability.install(app, settings)  # outermost: request ids, HTTP metrics
    return app


def _shared_app(settings: Settings, registry: Mapping[str, Workflow]) -> FastAPI:
    """Jobs in Redis: `api` serves HTTP without a ComfyUI, `worker` runs jobs from the queue on
    its own ComfyUI (HTTP: probes only), `all` does both."""
    from server.jobs.shared import SharedJobs, SharedWorker

    runs = settings.role in ("all", "worker")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        compat_env.warn_unsupported(log)
        # An API replica has no ComfyUI: a supervisor that is never started stands in for it
        # (its client is never used on the request path, see server/runs).
        supervisor = make_supervisor(settings) if runs else Supervisor(url=UNUSED_COMFYUI)
        app.state.supervisor = supervisor
        runner = Runner(supervisor, settings, WebhookSender.from_settings(settings))
        app.state.runner = runner
        shared = SharedJobs(settings)
        app.state.jobs = shared
        await shared.start()
        watching: asyncio.Task[None] | None = None
        if not runs:  # node definitions come from the workers, through Redis
            supervisor.client.node_info = shared.published_nodedefs()
            watching = asyncio.create_task(
                shared.watch_published(supervisor.client.node_info), name="published-nodedefs")
        worker = SharedWorker(runner, settings, shared) if runs else None
        app.state.worker = worker
        if runs:
            runner.models = app.state.models = ModelPuller.from_settings(settings, registry)
            if runner.models is not None:
                await runner.models.start()
        if worker is not None:
            await worker.start()
            await supervisor.start_in_background()
        try:
            yield
        finally:
            log.info("shutting down: draining running jobs, then stopping")
            if watching is not None:
                watching.cancel()
            if runner.models is not None:
                await runner.models.close()
            if worker is not None:
                worker.stopping = True  # take no new job; finish (or leave) the current one
                await runner.drain(settings.drain_timeout)
                await worker.close()
                await supervisor.stop()
            await shared.close()

    app = _build(lifespan, settings, registry, http=settings.role != "worker")

    async def redis_down(request: Any, exc: Exception) -> Any:
        from server.jobs.shared.front import unavailable

        return unavailable(settings, exc).response(getattr(request.state, "request_id", None))

    from redis.exceptions import RedisError

    app.add_exception_handler(RedisError, redis_down)
    return app


UNUSED_COMFYUI = "http://127.0.0.1:9"
"""Where an `api` replica's stand-in supervisor points (discard port; never contacted)."""

"""`comfygen serve --reload`: on a change below the templates folder, regenerate and remount the
workflow routes in the running app. A request already running keeps the endpoint (and input
model) it started with; the next one gets the new routes, `/openapi.json` and `/docs`. A change
that fails to generate keeps the last good routes, prints its problems (file, node, input) and
`/health` names the stale workflows until a later change generates again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from comfygen.config import GeneratorConfig
from comfygen.errors import Problem
from comfygen.reload import Reloaded, changes, regenerate
from comfygen.runtime import Workflow
from server.runs import workflows

log = logging.getLogger("comfygen.server")


class Reloader:
    """Watches the project's sources for one app; `state` is what `/health` shows."""

    def __init__(self, app: FastAPI, config: GeneratorConfig,
                 problems: list[Problem] | None = None, stale: tuple[str, ...] = ()) -> None:
        self.app, self.config = app, config
        self.generation = 0
        self.stale: dict[str, list[str]] = {}
        self.reloaded = asyncio.Condition()
        if stale:
            self._mark_stale(Reloaded(None, problems or [], stale))

    @property
    def state(self) -> dict[str, Any]:
        return {"generation": self.generation, "stale": self.stale}

    async def run(self) -> None:
        """Regenerate on every batch of changes, until cancelled."""
        async for names in changes(self.config):
            log.info("reload: %d file(s) changed, regenerating", len(names))
            await self.apply(await asyncio.to_thread(regenerate, self.config))

    async def apply(self, result: Reloaded) -> None:
        """Remount after a good generation; after a failed one keep the routes and report."""
        if result.workflows is None:
            self._mark_stale(result)
        else:
            remount(self.app, result.workflows)
            self.stale = {}
            print(f"comfygen: reloaded {len(result.workflows)} workflow(s)", file=sys.stderr,
                  flush=True)
        self.generation += 1
        async with self.reloaded:
            self.reloaded.notify_all()

    def _mark_stale(self, result: Reloaded) -> None:
        lines = [str(p) for p in result.problems]
        names = result.stale if "*" not in result.stale else tuple(self.app.state.registry)
        self.stale = {name: [line for line in lines if _about(line, name)] or lines
                      for name in names}
        print("comfygen: the change does not generate; still serving the last good "
              f"version of: {', '.join(sorted(self.stale))}", file=sys.stderr, flush=True)
        for line in lines:
            print(f"  {line}", file=sys.stderr, flush=True)


def _about(line: str, name: str) -> bool:
    return f"/{name}." in line


def remount(app: FastAPI, registry: Mapping[str, Workflow]) -> None:
    """Swap the app's workflow routes for `registry`'s in one step (no await in between: a
    request is matched against the old routes or the new ones, never half of each)."""
    routes = app.router.routes
    index = next((i for i, r in enumerate(routes) if _is_workflows(r)), len(routes))
    count = len(routes)
    app.include_router(workflows.build_router(registry))  # appended, as create_app added them
    added = routes[count:]
    del routes[count:]
    routes[index:index + 1] = added
    app.state.registry = registry
    app.state.openapi_cache.clear()


def _is_workflows(entry: Any) -> bool:
    """The app's entry for `workflows.build_router`'s router (FastAPI keeps an included router
    as one entry; older releases copied its routes)."""
    router = getattr(entry, "original_router", None)
    if router is not None:
        return getattr(router, "prefix", None) == workflows.PREFIX
    return isinstance(entry, APIRoute) and entry.path.startswith(workflows.PREFIX + "/")


def install(app: FastAPI, config: GeneratorConfig, problems: list[Problem] | None = None,
            stale: tuple[str, ...] = ()) -> Reloader:
    """Watch while the app runs (its lifespan starts and stops the watcher)."""
    reloader = Reloader(app, config, problems, stale)
    app.state.reload = reloader
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            task = asyncio.create_task(reloader.run(), name="comfygen-reload")
            try:
                yield state
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
    return reloader

"""Serve a project's workflows under uvicorn (what `comfygen serve` calls); `python -m
server.main` serves the project the working directory belongs to."""

from __future__ import annotations

from collections.abc import Mapping

import uvicorn

from comfygen.config import load_config
from comfygen.models.pull import manifest_path
from comfygen.registry import load_workflows
from comfygen.runtime import Workflow
from server.app import create_app
from server.observability.logs import log_config
from server.settings import Settings, project_settings


def serve(settings: Settings, workflows: Mapping[str, Workflow]) -> None:
    """Serve until SIGTERM/SIGINT; then drain in-flight work and stop the ComfyUI child."""
    app = create_app(settings, workflows)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_timeout or None, lifespan="on",
        log_config=log_config(settings.log_format, settings.log_level),
    )
    uvicorn.Server(config).run()


def main() -> None:
    project = load_config()
    table = {"models_manifest": manifest_path(project), **project.server}
    serve(project_settings(table), load_workflows(project))


if __name__ == "__main__":
    main()

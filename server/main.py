"""`serve(settings)`: run the app under uvicorn (what `comfygen serve` calls)."""

from __future__ import annotations

from collections.abc import Mapping

import uvicorn

from comfygen.runtime import Workflow
from server.app import create_app
from server.settings import Settings, get_settings


def serve(settings: Settings | None = None,
          registry: Mapping[str, Workflow] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; then drain in-flight work and stop the ComfyUI child."""
    settings = settings or get_settings()
    app = create_app(settings, registry)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_timeout or None, lifespan="on",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    serve()

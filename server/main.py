"""Serve a project's workflows under uvicorn (what `comfygen serve` calls); `python -m
server.main` serves the project the working directory belongs to."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from comfygen.config import GeneratorConfig, load_config
from comfygen.models.pull import manifest_path
from comfygen.registry import load_workflows
from comfygen.reload import Reloaded
from comfygen.runtime import Workflow
from server.app import create_app
from server.observability.logs import log_config
from server.reload import install as install_reload
from server.settings import Settings, project_settings


def serve(settings: Settings, workflows: Mapping[str, Workflow], *,
          reload: Reloaded | None = None, project: GeneratorConfig | None = None) -> None:
    """Serve until SIGTERM/SIGINT; then drain in-flight work and stop the ComfyUI child.

    With `project` (`comfygen serve --reload`), watch its sources and remount the workflows
    when they change; `reload` is the generation made at start (its problems, if it failed)."""
    app = create_app(settings, workflows)
    if project is not None:
        failed = reload if reload is not None and reload.workflows is None else None
        install_reload(app, project, failed.problems if failed else None,
                       failed.stale if failed else ())
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_timeout or None, lifespan="on",
        timeout_keep_alive=settings.keep_alive_timeout,
        log_config=log_config(settings.log_format, settings.log_level), http=CoalescingProtocol,
    )
    uvicorn.Server(config).run()


class CoalescingTransport:
    """A connection's transport whose writes of one event-loop turn go out in one system call.

    uvicorn writes a response's head and its body separately (one ASGI message each); on a
    loopback or LAN connection each `send` costs more than the bytes do. Writes are collected
    and handed to the real transport at the end of the turn, before it is closed, or as soon as
    they reach `LIMIT` bytes (so a large or fast stream meets the transport's flow control as
    before, instead of piling up here)."""

    LIMIT = 64 * 1024

    __slots__ = ("_transport", "_pending", "_size", "_loop")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] | None = None
        self._size = 0
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._size = len(data)
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)
            self._size += len(data)
        if self._size >= self.LIMIT:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.writelines(pending)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]


def main() -> None:
    project = load_config()
    table = {"models_manifest": manifest_path(project), **project.server}
    serve(project_settings(table), load_workflows(project))


if __name__ == "__main__":
    main()

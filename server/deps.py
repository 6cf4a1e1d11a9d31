"""FastAPI dependencies and their named aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.supervisor import Supervisor
from server.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    """The settings this app was created with (no dependency_overrides on the request path:
    FastAPI re-analyses overridden dependencies on every request)."""
    return request.app.state.settings


async def get_supervisor(request: Request) -> Supervisor:
    return request.app.state.supervisor


async def get_client(request: Request) -> ComfyClient:
    """The shared ComfyUI client (the same object across ComfyUI restarts)."""
    return request.app.state.supervisor.client


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SupervisorDep = Annotated[Supervisor, Depends(get_supervisor)]
ClientDep = Annotated[ComfyClient, Depends(get_client)]

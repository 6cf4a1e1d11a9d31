"""Checks before a graph goes to ComfyUI: every model file it names must be installed.

ComfyUI's own validation misses some (newer nodes with an empty combo accept any value and fail
only when run), so every loader input is checked against the live node definitions and all
missing files are named at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.model_files import missing_models
from server.errors import missing_model_error


async def check_models(graph: Mapping[str, Any], client: ComfyClient,
                       fields: Mapping[tuple[str, str], str] | None = None) -> None:
    """Raise 424 naming every missing model file (after one refresh of the definitions)."""
    missing = await client.node_info.lookup(lambda nodedefs: missing_models(graph, nodedefs))
    if missing:
        raise missing_model_error(missing, fields or {})

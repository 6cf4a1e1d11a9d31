"""Checks before a graph goes to ComfyUI: every model file it names must be installed, and (for a
dry run, which never reaches ComfyUI's own validation) the graph must pass ComfyUI's checks.

ComfyUI's own validation misses some model files (newer nodes with an empty combo accept any
value and fail only when run), so every loader input is checked against the live node
definitions and all missing files are named at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.model_files import missing_models
from comfygen.graph_check import check_graph
from server.errors import from_comfy, missing_model_error


async def check_models(graph: Mapping[str, Any], client: ComfyClient,
                       fields: Mapping[tuple[str, str], str] | None = None) -> None:
    """Raise 424 naming every missing model file (after one refresh of the definitions)."""
    missing = await client.node_info.lookup(lambda nodedefs: missing_models(graph, nodedefs))
    if missing:
        raise missing_model_error(missing, fields or {})


async def validate_graph(graph: Mapping[str, Any], client: ComfyClient,
                         fields: Mapping[tuple[str, str], str] | None = None,
                         retry_after: int = 5) -> None:
    """Raise the answer ComfyUI's `/prompt` validation would give (400 naming node and input),
    judged against the live node definitions (refreshed once when they find a problem)."""
    failed = await client.node_info.lookup(
        lambda nodedefs: [] if (found := check_graph(graph, nodedefs)).ok else [found])
    if failed:
        raise from_comfy(failed[0].as_error(), retry_after, fields)

"""Checks before a graph goes to ComfyUI: every model file it names must be installed, and (for a
dry run, which never reaches ComfyUI's own validation) the graph must pass ComfyUI's checks.

ComfyUI's own validation misses some model files (newer nodes with an empty combo accept any
value and fail only when run), so every loader input is checked against the live node
definitions and all missing files are named at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.model_files import missing_models
from comfygen.graph_check import check_graph
from comfygen.models.manifest import FOLDER_ALIASES
from server.errors import ApiError, from_comfy, missing_model_error
from server.models.puller import ModelPuller


async def check_models(graph: Mapping[str, Any], client: ComfyClient,
                       fields: Mapping[tuple[str, str], str] | None = None,
                       puller: ModelPuller | None = None, retry_after: int = 5) -> None:
    """Raise 503 when a missing file is still being pulled, else 424 naming every missing
    model file (after one refresh of the definitions)."""
    missing = await client.node_info.lookup(lambda nodedefs: missing_models(graph, nodedefs))
    if missing and puller is not None:
        check_pulling(((FOLDER_ALIASES.get(m["folder"], m["folder"]), m["file"]) for m in missing),
                      puller, retry_after)
    if missing:
        raise missing_model_error(missing, fields or {})


def check_pulling(files: Iterable[tuple[str, str]], puller: ModelPuller | None,
                  retry_after: int) -> None:
    """Raise 503 `models_downloading` (with Retry-After) when one of `files` ((folder, file))
    is still being checked or downloaded by the server's pull."""
    busy = puller.in_flight(files) if puller is not None else []
    if busy:
        names = ", ".join(f"{b['file']} (models/{b['folder']})" for b in busy)
        raise ApiError(503, "models_downloading",
                       f"model file(s) this workflow needs are still downloading: {names}; "
                       "retry later", headers={"Retry-After": str(retry_after)},
                       downloading=busy)


async def validate_graph(graph: Mapping[str, Any], client: ComfyClient,
                         fields: Mapping[tuple[str, str], str] | None = None,
                         retry_after: int = 5) -> None:
    """Raise the answer ComfyUI's `/prompt` validation would give (400 naming node and input),
    judged against the live node definitions (refreshed once when they find a problem)."""
    failed = await client.node_info.lookup(
        lambda nodedefs: [] if (found := check_graph(graph, nodedefs)).ok else [found])
    if failed:
        raise from_comfy(failed[0].as_error(), retry_after, fields)

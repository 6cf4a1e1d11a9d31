"""Checks before a graph goes to ComfyUI: every model file it names must be installed.

ComfyUI's own validation misses some (newer nodes with an empty combo accept any value and fail
only when run), so every loader input is checked against the live node definitions and all
missing files are named at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.model_files import missing_models
from comfygen.models.manifest import FOLDER_ALIASES
from server.errors import ApiError, missing_model_error
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

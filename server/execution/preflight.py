"""Checks before a graph goes to ComfyUI: every model file it names must be installed.

ComfyUI's own validation misses some (newer nodes with an empty combo accept any value and fail
only when run), so the server checks every loader input against the live /object_info and names
all missing files at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comfygen.comfy.client import ComfyClient
from server.errors import ApiError, model_folder


def combo_options(object_info: Mapping[str, Any], class_type: str, name: str) -> list[str] | None:
    """The combo values of an input in /object_info, or None if it is not a combo."""
    node = object_info.get(class_type)
    if not isinstance(node, Mapping):
        return None
    for section in ("required", "optional"):
        spec = (node.get("input") or {}).get(section, {}).get(name)
        if not isinstance(spec, list | tuple) or not spec:
            continue
        if isinstance(spec[0], list | tuple):
            return [str(v) for v in spec[0]]
        if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
            return [str(v) for v in spec[1].get("options") or []]
        return None
    return None


def missing_models(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every model file the graph names that ComfyUI does not list, with folder, node, input."""
    missing = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping):
            continue
        class_type = str(node.get("class_type"))
        for name, value in (node.get("inputs") or {}).items():
            if not isinstance(value, str):
                continue
            folder = model_folder(class_type, name, value)
            if folder is None:
                continue
            options = combo_options(object_info, class_type, name)
            if options is not None and value not in options:
                missing.append({"file": value, "folder": folder, "node": str(node_id),
                                "input": name, "class_type": class_type})
    return missing


async def check_models(graph: Mapping[str, Any], client: ComfyClient,
                       fields: Mapping[tuple[str, str], str] | None = None) -> None:
    """Raise 424 naming every missing model file (refreshing /object_info once first)."""
    missing = missing_models(graph, await client.object_info())
    if missing:
        missing = missing_models(graph, await client.object_info(refresh=True))
    if not missing:
        return
    for m in missing:
        field = (fields or {}).get((m["node"], m["input"]))
        if field:
            m["field"] = f"input.{field}"
    names = ", ".join(f"{m['file']} (models/{m['folder']})" for m in missing)
    raise ApiError(
        424, "missing_model",
        f"ComfyUI lacks the model file(s) this workflow needs: {names}. Put them in those "
        "folders of ComfyUI's models directory (or pick installed ones; GET /models lists them).",
        missing_models=missing,
    )

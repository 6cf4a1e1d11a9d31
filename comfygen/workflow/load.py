"""Read a workflow file in either format and return an API-format graph.

The file is a JSON export (UI or API format, or a saved `/prompt` body) or a file that ComfyUI
saved with the workflow embedded (`comfygen.workflow.embedded`): its UI-format `workflow` is
preferred, its API-format `prompt` the fallback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfygen.errors import Problem, Severity, has_errors
from comfygen.nodedefs import NodeDefs
from comfygen.workflow.api_format import validate_api_graph
from comfygen.workflow.embedded import container_of, read_embedded
from comfygen.workflow.old_exports import fill_new_inputs
from comfygen.workflow.ui_format import is_ui_format
from comfygen.workflow.ui_to_api import convert_ui_workflow

EMBEDDED_KEYS = ("workflow", "prompt")
"""The metadata keys ComfyUI's savers write, in order of preference (UI format first)."""


@dataclass(frozen=True)
class WorkflowSource:
    """The workflow JSON a file holds; `embedded_in` says where when it came from a saved file."""

    data: Any
    embedded_in: str | None = None


def read_source(path: Path) -> tuple[WorkflowSource | None, list[Problem]]:
    """The workflow in `path`: a JSON export, or the one embedded in a file ComfyUI saved."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, [Problem(file, f"cannot read the workflow: {exc.strerror or exc}")]
    if container_of(raw[:16]) is not None:
        return _embedded_source(raw, file)
    try:
        return WorkflowSource(json.loads(raw.decode("utf-8-sig"))), []
    except ValueError as exc:
        return None, [Problem(file, f"not valid JSON ({exc}), nor an image, audio or video file "
                                    "saved by ComfyUI (PNG, WebP, FLAC, MP3, Opus, MP4, WebM)")]


def _embedded_source(raw: bytes, file: str) -> tuple[WorkflowSource | None, list[Problem]]:
    try:
        found = read_embedded(raw)
    except ValueError as exc:
        return None, [Problem(file, str(exc))]
    problems: list[Problem] = []
    for key in EMBEDDED_KEYS:
        if key not in found.texts:
            continue
        try:
            data = json.loads(found.texts[key])
        except ValueError as exc:
            problems.append(Problem(file, f"the {found.container} file's {key!r} metadata is not "
                                          f"valid JSON ({exc})", severity=Severity.WARNING))
            continue
        usable = is_ui_format(data) if key == "workflow" else isinstance(data, Mapping) and data
        if usable:
            kind = "UI-format" if key == "workflow" else "API-format"
            return WorkflowSource(data, f"the {kind} {key!r} of this {found.container} file"), []
    keys = ", ".join(sorted(found.texts)) or "none"
    return None, [*problems, Problem(
        file, f"this {found.container} file carries no ComfyUI workflow (no usable 'workflow' or "
              f"'prompt' metadata; its metadata keys: {keys}); export the workflow from ComfyUI "
              "(Workflow > Export) or use a file saved by ComfyUI with metadata enabled")]


def to_api_graph(
    data: Any, nodedefs: NodeDefs, file: str, titles: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """A workflow's JSON (UI or API format) -> (API-format graph, problems)."""
    if is_ui_format(data):
        graph, problems = convert_ui_workflow(data, nodedefs, file=file, titles=titles)
        if not problems or all(p.severity != "error" for p in problems):
            _, more = validate_api_graph(graph, nodedefs, file)
            problems = problems + more
        return graph, problems
    if isinstance(data, Mapping) and "prompt" in data and isinstance(data["prompt"], Mapping) \
            and "class_type" not in data["prompt"]:
        data = data["prompt"]  # a saved /prompt request body
    graph, problems = validate_api_graph(data, nodedefs, file)
    if has_errors(problems):
        return graph, problems
    return graph, problems + fill_new_inputs(graph, nodedefs, file)


def load_workflow(
    path: Path, nodedefs: NodeDefs, titles: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Read `path` (UI or API format, or a saved file) -> (API-format graph, problems)."""
    source, problems = read_source(path)
    if source is None:
        return {}, problems
    graph, more = to_api_graph(source.data, nodedefs, str(path), titles)
    return graph, problems + more

"""Read a workflow file in either format and return an API-format graph."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from comfygen.errors import Problem
from comfygen.nodedefs import NodeDefs
from comfygen.workflow.api_format import validate_api_graph
from comfygen.workflow.ui_format import is_ui_format
from comfygen.workflow.ui_to_api import convert_ui_workflow


def load_workflow(
    path: Path, nodedefs: NodeDefs, titles: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Read `path` (UI or API format) -> (API-format graph, problems)."""
    file = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return {}, [Problem(file, f"cannot read the workflow: {exc.strerror or exc}")]
    except ValueError as exc:
        return {}, [Problem(file, f"not valid JSON: {exc}")]
    if is_ui_format(data):
        graph, problems = convert_ui_workflow(data, nodedefs, file=file, titles=titles)
        if not problems or all(p.severity != "error" for p in problems):
            _, more = validate_api_graph(graph, nodedefs, file)
            problems = problems + more
        return graph, problems
    if isinstance(data, Mapping) and "prompt" in data and isinstance(data["prompt"], Mapping) \
            and "class_type" not in data["prompt"]:
        data = data["prompt"]  # a saved /prompt request body
    return validate_api_graph(data, nodedefs, file)

"""API-format graphs saved before their nodes gained inputs: fill those inputs with defaults.

ComfyUI's validation refuses a graph that lacks a required input, even one that was added to the
node after the graph was saved (`VAEEncodeForInpaint.grow_mask_by`, `CLIPVisionEncode.crop`...).
ComfyUI's own UI fills such widgets with their defaults when it loads an old workflow; so do we,
with a warning naming each one.
"""

from __future__ import annotations

from typing import Any

from comfygen.errors import Problem, Severity
from comfygen.nodedefs import NodeDefs


def fill_new_inputs(graph: dict[str, Any], nodedefs: NodeDefs, file: str) -> list[Problem]:
    """Add each missing required widget input that has a default; a warning for each one."""
    warnings: list[Problem] = []
    for node_id, node in graph.items():
        definition = nodedefs.get(node["class_type"])
        if definition is None:
            continue
        for name in definition.input_order:
            idef = definition.inputs[name]
            if idef.section != "required" or not idef.is_widget or name in node["inputs"]:
                continue
            if idef.default is None:
                continue  # nothing to fill with: ComfyUI's validation names it
            node["inputs"][name] = idef.default
            warnings.append(Problem(
                file, f"{node['class_type']} requires {name!r}, which this older export lacks; "
                      f"filled with its default {idef.default!r}",
                node=node_id, input=name, severity=Severity.WARNING))
    return warnings

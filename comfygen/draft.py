"""Draft a mapping spec for a workflow: propose the public fields a person would pick."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from comfygen.nodedefs import InputDef, MediaKind, NodeDefs
from comfygen.parser import output_nodes
from comfygen.workflow.api_format import is_link

# input name -> public field name, for widget inputs proposed wherever they appear
COMMON = {
    "seed": "seed",
    "noise_seed": "seed",
    "steps": "steps",
    "cfg": "cfg",
    "sampler_name": "sampler_name",
    "scheduler": "scheduler",
    "denoise": "denoise",
    "ckpt_name": "checkpoint",
    "unet_name": "unet",
    "lora_name": "lora",
}
LATENT_SIZE = {"width": "width", "height": "height", "batch_size": "batch_size", "length": "length"}
TEXT_INPUTS = ("text", "prompt", "text_g", "text_l", "t5xxl", "clip_l", "tags", "lyrics")


def _consumers(graph: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """node id -> [(consumer node id, consumer input name)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for node_id, node in graph.items():
        for name, value in (node.get("inputs") or {}).items():
            if is_link(value):
                out.setdefault(str(value[0]), []).append((node_id, name))
    return out


def _is_negative(node_id: str, consumers: Mapping[str, list[tuple[str, str]]]) -> bool:
    """True when the node's output reaches a sampler's `negative` input before a `positive` one."""
    queue, seen = deque([node_id]), {node_id}
    while queue:
        current = queue.popleft()
        for consumer, name in consumers.get(current, []):
            if name == "negative":
                return True
            if name == "positive":
                return False
            if consumer not in seen:
                seen.add(consumer)
                queue.append(consumer)
    return False


def _reachable(graph: Mapping[str, Any], nodedefs: NodeDefs) -> set[str]:
    """Nodes that an output node depends on (only their inputs matter to a request)."""
    todo = list(output_nodes(graph, nodedefs))
    seen = set(todo)
    while todo:
        node = graph.get(todo.pop())
        for value in (node or {}).get("inputs", {}).values():
            if is_link(value) and str(value[0]) not in seen and str(value[0]) in graph:
                seen.add(str(value[0]))
                todo.append(str(value[0]))
    return seen


def _propose(
    node: Mapping[str, Any],
    idef: InputDef,
    node_id: str,
    consumers: Mapping[str, list[tuple[str, str]]],
    nodedefs: NodeDefs,
) -> str | None:
    """The field name to propose for one widget input, or None."""
    name = idef.name
    if idef.media_kind is MediaKind.IMAGE:
        return "mask" if "mask" in node["class_type"].lower() else "image"
    if idef.kind == "STRING" and name in TEXT_INPUTS:
        return "negative_prompt" if _is_negative(node_id, consumers) else "prompt"
    if name in COMMON and idef.kind in ("INT", "FLOAT", "COMBO"):
        return COMMON[name]
    nodedef = nodedefs[node["class_type"]]
    if name in LATENT_SIZE and idef.kind == "INT" and "LATENT" in nodedef.outputs:
        return LATENT_SIZE[name]
    return None


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def draft_spec(graph: Mapping[str, Any], nodedefs: NodeDefs, summary: str) -> dict[str, Any]:
    """A spec (as plain data, ready for YAML) proposing the usual public fields of `graph`."""
    consumers = _consumers(graph)
    reachable = _reachable(graph, nodedefs)
    inputs: dict[str, dict[str, Any]] = {}
    for node_id in sorted(graph, key=_node_sort_key):
        node = graph[node_id]
        nodedef = nodedefs.get(node.get("class_type"))
        if nodedef is None or node_id not in reachable:
            continue
        for idef in nodedef.widget_inputs:
            value = (node.get("inputs") or {}).get(idef.name)
            if value is None or is_link(value):
                continue
            proposed = _propose(node, idef, node_id, consumers, nodedefs)
            if proposed is None:
                continue
            field: dict[str, Any] = {"target": f"{node_id}.{idef.name}"}
            # A field published as a seed is drawn per request, whatever the UI shows for it.
            if idef.control_after_generate or (proposed == "seed" and idef.kind == "INT"):
                field["default"] = "random"
            inputs[_unique(proposed, set(inputs))] = field
    return {
        "summary": summary,
        "description": f"{summary} (drafted by comfygen; edit this spec to document it).",
        "inputs": inputs,
    }


def _node_sort_key(node_id: str) -> tuple[int, ...]:
    """Numeric order for ids like '6', '12' and subgraph ids like '12:5'."""
    parts = []
    for part in str(node_id).split(":"):
        parts.append(int(part) if part.isdigit() else 1 << 62)
    return tuple(parts)

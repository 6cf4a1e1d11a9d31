"""API-format graphs (what ComfyUI's `POST /prompt` takes): node id -> {class_type, inputs, _meta}.
Malformed graphs are rejected with Problems, all reported together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comfygen.errors import Problem
from comfygen.nodedefs import NodeDefs


class Meta(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: str | None = None


class ApiNode(BaseModel):
    model_config = ConfigDict(extra="allow")
    class_type: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    meta: Meta = Field(default_factory=Meta, alias="_meta")


def is_link(value: Any) -> bool:
    """`[node_id, output_index]`: an input fed by another node's output."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def validate_api_graph(
    data: Any, nodedefs: NodeDefs | None = None, file: str = "<workflow>",
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Check an API-format graph; return it normalised (every node has `_meta.title`)."""
    if not isinstance(data, Mapping) or not data:
        return {}, [Problem(file, "an API-format workflow is a non-empty JSON object of node ids "
                                  "to {class_type, inputs}; export it with 'Export (API)'")]
    problems: list[Problem] = []
    graph: dict[str, dict[str, Any]] = {}
    for node_id, raw in data.items():
        try:
            node = ApiNode.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(Problem(file, f"malformed node: {err['msg']}", node=str(node_id),
                                        field=".".join(str(p) for p in err["loc"])))
            continue
        if nodedefs is not None and node.class_type not in nodedefs:
            problems.append(Problem(file, f"unknown node class {node.class_type!r}: install its "
                                          "custom node in ComfyUI and run `comfygen nodes "
                                          "refresh`", node=str(node_id)))
        meta = {**(node.meta.model_extra or {}), "title": node.meta.title or node.class_type}
        graph[str(node_id)] = {"inputs": dict(node.inputs), "class_type": node.class_type,
                               "_meta": meta}
    for node_id, node in graph.items():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and not is_link(value):
                problems.append(Problem(file, "a link must be [node_id (string), output index]",
                                        node=node_id, input=name))
            elif is_link(value) and value[0] not in graph:
                problems.append(Problem(file, f"input is linked to node {value[0]}, which is not "
                                              "in the graph", node=node_id, input=name))
            elif is_link(value) and nodedefs is not None:
                source = graph[value[0]]["class_type"]
                if source in nodedefs and value[1] >= len(nodedefs[source].outputs):
                    problems.append(Problem(file, f"node {value[0]} ({source}) has no output "
                                                  f"{value[1]}", node=node_id, input=name))
    return graph, problems

"""Pydantic models of ComfyUI's UI-format workflow export (what "Save" writes). Tolerant: unknown
fields are kept, since every frontend release adds some."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Node types that only exist in the frontend: never sent to ComfyUI.
VIRTUAL_NODE_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})

# Renames the frontend applies to node types while loading a workflow.
TYPE_ALIASES = {
    "T2IAdapterLoader": "ControlNetLoader",
    "ConditioningAverage ": "ConditioningAverage",
    "SDV_img2vid_Conditioning": "SVD_img2vid_Conditioning",
    "Load3DAnimation": "Load3D",
    "Preview3DAnimation": "Preview3D",
}

MODE_ALWAYS = 0
MODE_NEVER = 2  # "muted": not executed, not sent
MODE_BYPASS = 4  # not sent; consumers are wired to a matching input instead

NodeId = int | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WidgetRef(_Model):
    name: str


class NodeInput(_Model):
    name: str
    type: Any = "*"
    link: int | None = None
    widget: WidgetRef | None = None


class NodeOutput(_Model):
    name: str = ""
    type: Any = "*"
    links: list[int] | None = None


class Link(_Model):
    """A link, read from either the array form `[id, from, from_slot, to, to_slot, type]` or the
    object form used inside subgraph definitions."""

    id: int
    origin_id: NodeId
    origin_slot: int
    target_id: NodeId
    target_slot: int
    type: Any = "*"

    @classmethod
    def parse(cls, raw: Any) -> Link:
        if isinstance(raw, list | tuple):
            keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
            return cls.model_validate(dict(zip(keys, raw, strict=False)))
        return cls.model_validate(raw)


class Node(_Model):
    id: NodeId
    type: str
    mode: int = MODE_ALWAYS
    title: str | None = None
    inputs: list[NodeInput] = Field(default_factory=list)
    outputs: list[NodeOutput] = Field(default_factory=list)
    widgets_values: list[Any] | dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}


class SubgraphSlot(_Model):
    name: str
    type: Any = "*"
    linkIds: list[int] = Field(default_factory=list)  # noqa: N815 - the file's own spelling


class Subgraph(_Model):
    """A subgraph definition: its nodes and links, and the slots of its input/output pseudo-nodes
    (links from the input node have origin_id -10; links to the output node have target_id -20)."""

    id: str
    name: str = ""
    nodes: list[Node] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    inputs: list[SubgraphSlot] = Field(default_factory=list)
    outputs: list[SubgraphSlot] = Field(default_factory=list)

    @field_validator("links", mode="before")
    @classmethod
    def _links(cls, value: Any) -> Any:
        return [Link.parse(v) for v in value or [] if v is not None]


class Definitions(_Model):
    subgraphs: list[Subgraph] = Field(default_factory=list)


class UIWorkflow(_Model):
    nodes: list[Node]
    links: list[Link] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
    definitions: Definitions = Field(default_factory=Definitions)

    @field_validator("links", mode="before")
    @classmethod
    def _links(cls, value: Any) -> Any:
        return [Link.parse(v) for v in value or [] if v is not None]

    @field_validator("extra", mode="before")
    @classmethod
    def _extra(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}

    @field_validator("definitions", mode="before")
    @classmethod
    def _definitions(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}


def is_ui_format(data: Any) -> bool:
    """True for a UI-format export (`{"nodes": [...], "links": [...]}`), False for API format
    (API-format graphs have no `nodes` list)."""
    return isinstance(data, Mapping) and isinstance(data.get("nodes"), list)


def _raw_nodes(data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for node in data.get("nodes") or []:
        if isinstance(node, Mapping):
            yield node
    for sub in (data.get("definitions") or {}).get("subgraphs") or []:
        for node in sub.get("nodes") or []:
            if isinstance(node, Mapping):
                yield node


def node_classes(data: Mapping[str, Any]) -> set[str]:
    """The ComfyUI node classes a raw UI workflow uses, inside subgraphs and group nodes too;
    frontend-only nodes and subgraph instances are not classes."""
    subgraph_ids = {s.get("id") for s in (data.get("definitions") or {}).get("subgraphs") or []}
    groups = (data.get("extra") or {}).get("groupNodes") or {}
    classes: set[str] = set()
    for node in _raw_nodes(data):
        t = str(node.get("type", ""))
        if t in subgraph_ids or t in VIRTUAL_NODE_TYPES:
            continue
        group = group_name(t)
        if group is not None and group in groups:
            for inner in groups[group].get("nodes") or []:
                it = str(inner.get("type", ""))
                if it not in VIRTUAL_NODE_TYPES:
                    classes.add(TYPE_ALIASES.get(it, it))
            continue
        classes.add(TYPE_ALIASES.get(t, t))
    return classes


def group_name(node_type: str) -> str | None:
    """The group name of a legacy group node type (`workflow>NAME`, older `workflow/NAME`)."""
    for prefix in ("workflow>", "workflow/"):
        if node_type.startswith(prefix):
            return node_type[len(prefix):]
    return None

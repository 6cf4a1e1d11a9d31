"""The frontend's live graph after loading a UI-format workflow: nodes with their widgets filled
and inputs in definition order, one Level for the root and for each subgraph definition, and
LiteGraph's rules for link types and bypassed nodes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfygen.workflow.ui_format import Link, Node, Subgraph
from comfygen.workflow.widgets import Widget


@dataclass
class Slot:
    name: str
    type: Any
    link: int | None
    widget: str | None = None


@dataclass
class LiveNode:
    """A node as the frontend holds it after loading: widgets filled, inputs in definition order."""

    node: Node
    class_type: str | None  # None for frontend-only nodes and subgraph instances
    title: str
    widgets: list[Widget]
    inputs: list[Slot]
    output_types: list[Any]
    subgraph: Subgraph | None = None

    @property
    def mode(self) -> int:
        return self.node.mode

    @property
    def virtual(self) -> bool:
        return self.class_type is None

    def widget(self, name: str) -> Widget | None:
        return next((w for w in self.widgets if w.name == name), None)


@dataclass
class Level:
    """One level of the UI workflow: the root or one subgraph definition, with live nodes."""

    nodes: dict[str, LiveNode]
    links: dict[int, Link]
    subgraph: Subgraph | None = None

    def fed_widget(self, link_id: int) -> Widget | None:
        """The widget (converted to an input) that link `link_id` feeds on this level, if any."""
        link = self.links.get(link_id)
        target = self.nodes.get(str(link.target_id)) if link else None
        if target is None:
            return None
        slot = next((s for s in target.inputs if s.link == link_id), None)
        return target.widget(slot.widget) if slot and slot.widget else None


def valid_connection(a: Any, b: Any) -> bool:
    """LiteGraph's type check: wildcards match anything; "A,B" lists match any member."""
    a = 0 if a in ("", "*") else a
    b = 0 if b in ("", "*") else b
    if not a or not b or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(valid_connection(x, y) for x in a.split(",") for y in b.split(","))


def bypass_input(live: LiveNode, index: int, want: Any) -> int:
    """Which input a bypassed node forwards to its output `index` for a consumer of type `want`."""
    inputs = live.inputs
    if want in ("*", ""):
        return index if len(inputs) > index else 0
    out_type = live.output_types[index] if index < len(live.output_types) else "*"
    if index < len(inputs) and valid_connection(inputs[index].type, out_type) \
            and valid_connection(inputs[index].type, want):
        return index
    for i, slot in enumerate(inputs):
        if slot.type == want:
            return i
    for i, slot in enumerate(inputs):
        if valid_connection(slot.type, out_type) and valid_connection(slot.type, want):
            return i
    return -1

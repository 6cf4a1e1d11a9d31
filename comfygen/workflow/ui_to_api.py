"""Convert a UI-format workflow to the API format, the way ComfyUI's frontend (1.32.x) does it.

The frontend builds live nodes from node definitions, pours `widgets_values` into their widgets,
lets PrimitiveNodes write their value into the widgets they feed, then walks every input back
through Reroutes, bypassed nodes and subgraph boundaries to a real node (or a widget value).
This module models just enough of that: see docs/workflow-formats.md for each rule.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from comfygen.errors import Problem, Severity
from comfygen.nodedefs import InputDef, NodeDefs
from comfygen.workflow.dynamic_prompts import resolve_dynamic_prompt
from comfygen.workflow.group_nodes import expand_group_nodes
from comfygen.workflow.live_graph import Level, LiveNode, Slot, bypass_input
from comfygen.workflow.ui_format import (
    MODE_BYPASS,
    MODE_NEVER,
    TYPE_ALIASES,
    VIRTUAL_NODE_TYPES,
    Link,
    Node,
    Subgraph,
    UIWorkflow,
    group_name,
)
from comfygen.workflow.widgets import (
    Widget,
    has_widget,
    migrate_widget_values,
    ui_inputs,
    widget_layout,
)

SUBGRAPH_INPUT_NODE = -10
PRIMITIVE_REPLACE_PROPERTY = "Run widget replace on values"


@dataclass
class Dto:
    """A node at one place in the flattened graph (the frontend's ExecutableNodeDTO)."""

    id: str
    live: LiveNode
    level: Level
    path: tuple[str, ...]
    instance: Dto | None = None  # the subgraph node this node sits in


@dataclass
class Converter:
    workflow: UIWorkflow
    nodedefs: NodeDefs
    file: str
    seed: int = 0
    titles: Mapping[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    levels: dict[str | None, Level] = field(default_factory=dict)
    dtos: dict[str, Dto] = field(default_factory=dict)

    def problem(self, message: str, node: Any = None, input: str | None = None,
                severity: Severity = Severity.ERROR) -> None:
        self.problems.append(Problem(self.file, message, None if node is None else str(node),
                                     input, severity=severity))

    # -- building live nodes -------------------------------------------------------------
    def build_level(self, nodes: list[Node], links: list[Link], sub: Subgraph | None) -> Level:
        level = Level({}, {link.id: link for link in links}, sub)
        for node in nodes:
            level.nodes[str(node.id)] = self.live_node(node, level, sub)
        return level

    def live_node(self, node: Node, level: Level, where: Subgraph | None) -> LiveNode:
        node_type = TYPE_ALIASES.get(node.type, node.type)
        subgraphs = {s.id: s for s in self.workflow.definitions.subgraphs}
        serial = [Slot(i.name, i.type, i.link, i.widget.name if i.widget else None)
                  for i in node.inputs]
        outputs = [o.type for o in node.outputs]
        if node_type in subgraphs:
            sub = subgraphs[node_type]
            by_name = {s.name: s for s in serial}
            inputs = [Slot(s.name, s.type, by_name[s.name].link if s.name in by_name else None)
                      for s in sub.inputs]
            return LiveNode(node, None, node.title or sub.name, [], inputs,
                            [o.type for o in sub.outputs], sub)
        if node_type in VIRTUAL_NODE_TYPES or group_name(node_type) is not None:
            group = group_name(node_type)
            if group is not None and group not in (self.workflow.extra.get("groupNodes") or {}):
                self.problem(f"legacy group node {node_type!r} has no definition in the "
                             "workflow's extra.groupNodes: open the workflow in ComfyUI and "
                             "convert the group node to a subgraph", node.id)
            elif group is not None and where is not None:
                self.problem(f"legacy group node {node_type!r} inside a subgraph: ComfyUI's "
                             "frontend does not run these either; convert it to a subgraph",
                             node.id)
            return LiveNode(node, None, node.title or node_type, [], serial, outputs)
        if node_type not in self.nodedefs:
            where_text = f" (in subgraph {where.name or where.id!r})" if where else ""
            self.problem(f"unknown node class {node_type!r}{where_text}: this ComfyUI does not "
                         "have it; install the custom node or remove it", node.id)
            return LiveNode(node, None, node.title or node_type, [], serial, outputs)
        nodedef = self.nodedefs[node_type]
        idefs = ui_inputs(self.nodedefs, node_type)
        widgets = widget_layout(self.nodedefs, node_type)
        self.fill_widgets(node, idefs, widgets)
        by_name = {s.name: s for s in serial}
        inputs: list[Slot] = []
        ordered = [i for i in idefs if not has_widget(i)] + [i for i in idefs if has_widget(i)]
        for idef in ordered:
            saved = by_name.get(idef.name)
            inputs.append(Slot(idef.name, idef.type_name, saved.link if saved else None,
                               idef.name if has_widget(idef) else None))
        known = {i.name for i in idefs}
        inputs += [s for s in serial if s.name not in known]
        outputs = list(nodedef.outputs) + outputs[len(nodedef.outputs):]
        title = node.title or self.titles.get(node_type) or nodedef.display_name
        return LiveNode(node, node_type, title, widgets, inputs, outputs)

    def fill_widgets(self, node: Node, idefs: list[InputDef], widgets: list[Widget]) -> None:
        values = node.widgets_values
        if values is None:
            return
        if isinstance(values, dict):  # some custom nodes save widgets by name
            for w in widgets:
                if w.name in values:
                    w.value = values[w.name]
            return
        values = migrate_widget_values(idefs, widgets, list(values))
        stored = [w for w in widgets if w.stored]
        for i, value in enumerate(values):
            if i < len(stored):
                stored[i].value = value
        if len(values) < len([w for w in stored if w.sent]):
            self.problem(f"widgets_values has {len(values)} values for {len(stored)} widgets; "
                         "the rest keep their defaults", node.id, severity=Severity.WARNING)

    def promote_widgets(self, level: Level) -> None:
        """Subgraph instances show a copy of the inner widget each of their inputs feeds."""
        for live in level.nodes.values():
            sub = live.subgraph
            if sub is None:
                continue
            inner = self.levels[sub.id]
            widgets: list[Widget] = []
            for slot, sub_input in zip(live.inputs, sub.inputs, strict=False):
                for link_id in sub_input.linkIds:
                    w = inner.fed_widget(link_id)
                    if w is not None:
                        widgets.append(Widget(sub_input.name, w.value))
                        slot.widget = sub_input.name
                        break
            live.widgets = widgets
            values = live.node.widgets_values
            if isinstance(values, list):
                for i, value in enumerate(values[: len(widgets)]):
                    widgets[i].value = value
                proxies = live.node.properties.get("proxyWidgets")
                if isinstance(proxies, str):
                    proxies = json.loads(proxies)
                if isinstance(proxies, list):
                    for i, value in enumerate(values):
                        entry = proxies[i] if i < len(proxies) else None
                        if value is None or not isinstance(entry, list) or str(entry[0]) != "-1":
                            continue
                        target_widget = live.widget(str(entry[1]))
                        if target_widget is not None:
                            target_widget.value = value

    def apply_primitives(self, level: Level) -> None:
        """A PrimitiveNode writes its value into every widget its output feeds."""
        for live in level.nodes.values():
            node = live.node
            if node.type != "PrimitiveNode" or not node.outputs or not node.outputs[0].links:
                continue
            values = node.widgets_values
            if not isinstance(values, list) or not values:
                continue
            value = values[0]
            if value and node.properties.get(PRIMITIVE_REPLACE_PROPERTY):
                self.problem("PrimitiveNode text replacement (%date% etc.) is not applied",
                             node.id, severity=Severity.WARNING)
            for link_id in node.outputs[0].links:
                w = level.fed_widget(link_id)
                if w is not None:
                    w.value = value

    # -- flattening and link resolution --------------------------------------------------
    def flatten(self, level: Level, path: tuple[str, ...], instance: Dto | None,
                seen: frozenset[str]) -> None:
        for node_id, live in level.nodes.items():
            dto = Dto(":".join((*path, node_id)), live, level, path, instance)
            self.dtos[dto.id] = dto
            if live.subgraph is not None:
                if live.subgraph.id in seen:
                    self.problem("subgraph contains itself", dto.id)
                    continue
                self.flatten(self.levels[live.subgraph.id], (*path, node_id), dto,
                             seen | {live.subgraph.id})

    def resolve_input(self, dto: Dto, index: int, visited: set, want: Any = None) -> Any:
        """What feeds input `index`: `(node id, slot)`, `("widget", value)` or None."""
        key = (dto.id, "I", index)
        if key in visited:
            self.problem("circular link", dto.id, dto.live.inputs[index].name)
            return None
        visited.add(key)
        slot = dto.live.inputs[index]
        if slot.link is None:
            return None
        link = dto.level.links.get(slot.link)
        if link is None:
            self.problem(f"link {slot.link} does not exist", dto.id, slot.name,
                         severity=Severity.WARNING)
            return None
        if dto.instance is not None and link.origin_id == SUBGRAPH_INPUT_NODE:
            return self.resolve_instance_input(dto.instance, link.origin_slot, visited)
        origin = self.dtos.get(":".join((*dto.path, str(link.origin_id))))
        if origin is None:
            self.problem(f"link {link.id} comes from node {link.origin_id}, which does not exist",
                         dto.id, slot.name)
            return None
        return self.resolve_output(origin, link.origin_slot, want or slot.type, visited)

    def resolve_instance_input(self, instance: Dto, index: int, visited: set) -> Any:
        if index >= len(instance.live.inputs):
            return None
        outer = instance.live.inputs[index]
        if outer.link is None:
            w = instance.live.widget(outer.widget) if outer.widget else None
            return ("widget", w.value) if w is not None else None
        return self.resolve_input(instance, index, visited)

    def resolve_output(self, dto: Dto, index: int, want: Any, visited: set) -> Any:
        key = (dto.id, "O", index)
        if key in visited:
            self.problem("circular link", dto.id)
            return None
        visited.add(key)
        live = dto.live
        if live.mode == MODE_BYPASS:
            through = bypass_input(live, index, want)
            return None if through < 0 else self.resolve_input(dto, through, visited)
        if live.subgraph is not None:
            sub = live.subgraph
            if index >= len(sub.outputs) or not sub.outputs[index].linkIds:
                return None
            inner = self.levels[sub.id]
            link = inner.links.get(sub.outputs[index].linkIds[0])
            if link is None:
                return None
            if link.origin_id == SUBGRAPH_INPUT_NODE:
                return self.resolve_instance_input(dto, link.origin_slot, visited)
            origin = self.dtos.get(":".join((*dto.path, str(live.node.id), str(link.origin_id))))
            return None if origin is None else self.resolve_output(
                origin, link.origin_slot, want, visited)
        if live.virtual:
            if live.node.type == "Reroute" and index < len(live.inputs):
                return self.resolve_input(dto, index, visited, want)
            return None
        return (dto.id, index)

    def dynamic_prompt_resolved(self, node: str, input: str, value: str) -> None:
        shown = value if len(value) <= 200 else value[:200] + "..."
        self.problem(f"the dynamic prompt's {{a|b}} choices were resolved once, at generation "
                     f"time (to {shown!r}): every request sends this text; to vary it, make this "
                     "input a public field", node, input, severity=Severity.WARNING)

    def emit(self) -> dict[str, Any]:
        rng = random.Random(self.seed)
        out: dict[str, Any] = {}
        for dto in self.dtos.values():
            live = dto.live
            if live.virtual or live.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            inputs: dict[str, Any] = {}
            for w in live.widgets:
                if not w.name or not w.sent:
                    continue
                value = w.value
                if w.dynamic_prompts and isinstance(value, str):
                    value, picks = resolve_dynamic_prompt(value, rng)
                    if picks:
                        self.dynamic_prompt_resolved(dto.id, w.name, value)
                inputs[w.name] = {"__value__": value} if isinstance(value, list) else value
            for index, slot in enumerate(live.inputs):
                source = self.resolve_input(dto, index, set())
                if source is None:
                    continue
                if source[0] == "widget":
                    value = source[1]
                    inputs[slot.name] = {"__value__": value} if isinstance(value, list) else value
                else:
                    inputs[slot.name] = [source[0], int(source[1])]
            out[dto.id] = {"inputs": inputs, "class_type": live.class_type,
                           "_meta": {"title": live.title}}
        for entry in out.values():  # links to nodes that are not sent (muted) are dropped
            for name, value in list(entry["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in out:
                    del entry["inputs"][name]
        return out

    def run(self) -> dict[str, Any]:
        for sub in self.workflow.definitions.subgraphs:
            self.levels[sub.id] = self.build_level(sub.nodes, sub.links, sub)
        root = self.build_level(self.workflow.nodes, self.workflow.links, None)
        self.levels[None] = root
        # Inner levels first: an instance copies widgets of nested instances.
        for level in [*self.levels.values()][::-1]:
            self.promote_widgets(level)
        for level in self.levels.values():
            self.apply_primitives(level)
        self.flatten(root, (), None, frozenset())
        return self.emit()


def convert_ui_workflow(
    data: Mapping[str, Any], nodedefs: NodeDefs, file: str = "<workflow>", *,
    seed: int = 0, titles: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """UI-format workflow -> (API-format graph, problems).

    `seed` picks the `{a|b}` dynamic-prompt choices (the same ones on every run; each resolved
    prompt is reported as a warning); `titles` maps class_type to the
    default title of untitled nodes (the frontend takes it from its bundled locale, which can
    differ from `/object_info`'s display_name; without it display_name is used)."""
    data, expanded = expand_group_nodes(data, nodedefs, file)
    try:
        workflow = UIWorkflow.model_validate(dict(data))
    except ValidationError as exc:
        return {}, [Problem(file, f"not a valid UI-format workflow: {err['msg']}",
                            field=".".join(str(p) for p in err["loc"])) for err in exc.errors()]
    converter = Converter(workflow, nodedefs, file, seed, dict(titles or {}))
    graph = converter.run()
    return graph, expanded + converter.problems

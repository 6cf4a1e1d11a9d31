"""Legacy group nodes (`extra.groupNodes`, node types `workflow>NAME` or `workflow/NAME`),
expanded into their inner nodes the way ComfyUI's frontend 1.32.x runs them.

The frontend (src/extensions/core/groupNode.ts) registers each group as a node type whose inputs,
widgets and outputs are those of its inner nodes that are not wired inside the group; when it
builds the prompt, an instance is replaced by its inner nodes, numbered `<instance id>:<index>`,
each inner widget taking the value of the instance's widget made from it. This module rewrites a
UI-format workflow the same way before the ordinary conversion, so that conversion sees plain
nodes and links.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from comfygen.errors import Problem
from comfygen.nodedefs import SEED_NAMES, NodeDefs
from comfygen.workflow.ui_format import TYPE_ALIASES, group_name
from comfygen.workflow.widgets import ui_inputs, widget_layout

# A link in the array form: [id, origin id, origin slot, target id, target slot, type].
LINK_ID, ORIGIN, ORIGIN_SLOT, TARGET, TARGET_SLOT = range(5)


@dataclass
class GroupSlot:
    """One widget of a group node instance, in the order its `widgets_values` fill them:
    the inner node and widget it sets (None for a `control_after_generate` companion)."""

    inner: int
    widget: str | None


@dataclass
class GroupConfig:
    """What the frontend's GroupNodeConfig derives from a group definition."""

    nodes: list[dict[str, Any]]
    links_to: dict[int, dict[int, list]] = field(default_factory=dict)
    links_from: dict[int, dict[int, list[list]]] = field(default_factory=dict)
    external: dict[int, set[int]] = field(default_factory=dict)
    input_map: dict[int, dict[int, int]] = field(default_factory=dict)
    """inner node index -> {its input slot: the instance's input slot}"""
    widgets: list[GroupSlot] = field(default_factory=list)
    outputs: list[tuple[int, int]] = field(default_factory=list)
    """the instance's output slot -> (inner node index, its output slot)"""


def _config_of(definition: Mapping[str, Any], nodedefs: NodeDefs,
               problem: Any) -> GroupConfig | None:
    nodes = [dict(n) for n in definition.get("nodes") or [] if isinstance(n, Mapping)]
    config = GroupConfig(nodes)
    for link in definition.get("links") or []:
        if not isinstance(link, list) or len(link) < 4 or link[0] is None:
            continue
        src, src_slot, dst, dst_slot = (int(v) for v in link[:4])
        config.links_from.setdefault(src, {}).setdefault(src_slot, []).append(link)
        config.links_to.setdefault(dst, {})[dst_slot] = link
    for ext in definition.get("external") or []:
        if isinstance(ext, list) and len(ext) >= 2:
            config.external.setdefault(int(ext[0]), set()).add(int(ext[1]))
    custom = definition.get("config") or {}
    converted_later: list[tuple[int, int, list[str]]] = []
    count = 0
    for index, node in enumerate(nodes):
        node_type = TYPE_ALIASES.get(str(node.get("type")), str(node.get("type")))
        saved_inputs = [i for i in node.get("inputs") or [] if isinstance(i, Mapping)]
        links_to = config.links_to.get(index, {})
        node_config = _entry(custom, index)
        if node_type == "Reroute":
            if links_to and config.links_from.get(index) and 0 not in config.external.get(index, ()):
                continue  # used inside the group only: not part of the instance
            if 0 not in links_to:
                config.input_map[index] = {0: count}
                count += 1
            config.outputs += _outputs(config, index, 1, node_config)
            continue
        if node_type == "PrimitiveNode" or group_name(node_type) is not None:
            problem(f"a {node_type} inside the group node is not supported; ungroup it in "
                    "ComfyUI (or convert the group node to a subgraph)")
            return None
        if node_type not in nodedefs:
            problem(f"the group node contains unknown node class {node_type!r}: install its "
                    "custom node or remove it")
            return None
        inputs = ui_inputs(nodedefs, node_type)
        converted = {str(i.get("name")) for i in saved_inputs
                     if isinstance(i.get("widget"), Mapping)
                     and i["widget"].get("name") == i.get("name")}
        # Widgets of the instance: this node's unconverted widgets, in its own layout.
        skip_next = False
        for w in widget_layout(nodedefs, node_type):
            if skip_next and w.name == "control_after_generate":
                skip_next = False
                continue
            skip_next = False
            if w.name in converted:
                skip_next = True
                continue
            if w.stored:
                config.widgets.append(GroupSlot(index, w.name if w.sent else None))
        # Input slots of the instance: this node's unlinked link inputs.
        slots = [i.name for i in inputs if not i.is_widget]
        mapping = config.input_map.setdefault(index, {})
        custom_inputs = node_config.get("input")
        hidden = {name for name, c in custom_inputs.items()
                  if isinstance(c, Mapping) and c.get("visible") is False} \
            if isinstance(custom_inputs, Mapping) else set()
        for position, name in enumerate(slots):
            if position in links_to or name in hidden:
                continue
            mapping[position] = count
            count += 1
        order = [str(i.get("name")) for i in saved_inputs]
        converted_names = sorted(converted, key=lambda n: order.index(n) if n in order else 0)
        converted_later.append((index, len(slots), converted_names))
        config.outputs += _outputs(config, index, len(nodedefs[node_type].outputs), node_config)
    # Converted widgets come last, node by node (the frontend processes them after all nodes).
    for index, offset, names in converted_later:
        links_to = config.links_to.get(index, {})
        for position, name in enumerate(names, start=offset):
            if position in links_to:
                continue
            config.widgets.append(GroupSlot(index, name))
            if name in SEED_NAMES:
                config.widgets.append(GroupSlot(index, None))
            config.input_map[index][position] = count
            count += 1
    return config


def _entry(table: Any, key: int) -> Mapping[str, Any]:
    """`table[key]` of a group's `config` (its keys are strings in saved JSON), or {}."""
    if not isinstance(table, Mapping):
        return {}
    entry = table.get(str(key), table.get(key))
    return entry if isinstance(entry, Mapping) else {}


def _outputs(config: GroupConfig, index: int, count: int,
             node_config: Mapping[str, Any]) -> list[tuple[int, int]]:
    shown: list[tuple[int, int]] = []
    custom = node_config.get("output")
    for slot in range(count):
        linked = slot in config.links_from.get(index, {}) \
            and slot not in config.external.get(index, set())
        entry = _entry(custom, slot)
        if entry.get("visible", not linked):
            shown.append((index, slot))
    return shown


def expand_group_nodes(
    data: Mapping[str, Any], nodedefs: NodeDefs, file: str,
) -> tuple[dict[str, Any], list[Problem]]:
    """Replace each top-level legacy group node instance by its inner nodes and links."""
    groups = (data.get("extra") or {}).get("groupNodes") if isinstance(data.get("extra"),
                                                                       Mapping) else None
    nodes = data.get("nodes")
    if not isinstance(groups, Mapping) or not groups or not isinstance(nodes, list):
        return dict(data), []
    problems: list[Problem] = []
    links = [list(link) for link in data.get("links") or [] if isinstance(link, list) and link]
    next_id = max((link[LINK_ID] for link in links if isinstance(link[LINK_ID], int)),
                  default=0) + 1
    out_nodes: list[Any] = []
    for node in nodes:
        name = group_name(str(node.get("type", ""))) if isinstance(node, Mapping) else None
        if name is None or not isinstance(groups.get(name), Mapping):
            out_nodes.append(node)
            continue
        node_id = str(node.get("id"))

        def problem(message: str, at: str = node_id) -> None:
            problems.append(Problem(file, message, node=at))

        try:
            config = _config_of(groups[name], nodedefs, problem)
            if config is not None:
                inner, next_id = _expand(node, config, nodedefs, links, next_id)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            problem(f"malformed definition of group node {name!r} in extra.groupNodes ({exc})")
            config = None
        if config is None:
            out_nodes.append(node)
            continue
        out_nodes.extend(inner)
    expanded = {**data, "nodes": out_nodes, "links": links}
    return expanded, problems


def _expand(instance: Mapping[str, Any], config: GroupConfig, nodedefs: NodeDefs,
            links: list[list], next_id: int) -> tuple[list[dict[str, Any]], int]:
    """The inner nodes of one instance; `links` is rewired in place."""
    iid = instance.get("id")
    ids = [f"{iid}:{i}" for i in range(len(config.nodes))]
    inner = [copy.deepcopy(n) for n in config.nodes]
    for i, node in enumerate(inner):
        node["id"] = ids[i]
        node["mode"] = node.get("mode", 0) if instance.get("mode", 0) == 0 else instance["mode"]
        node["inputs"] = [dict(x) for x in node.get("inputs") or [] if isinstance(x, Mapping)]
        node["outputs"] = [dict(x) for x in node.get("outputs") or [] if isinstance(x, Mapping)]
        for slot in node["inputs"]:
            slot["link"] = None
        for slot in node["outputs"]:
            slot["links"] = []
    # Widget values of the instance go to the inner widgets they were made from.
    values = instance.get("widgets_values")
    if isinstance(values, list):
        for slot, value in zip(config.widgets, values, strict=False):
            if slot.widget is not None:
                _set_widget(inner[slot.inner], nodedefs, slot.widget, value)
    instance_inputs = [x for x in instance.get("inputs") or [] if isinstance(x, Mapping)]
    by_id = {link[LINK_ID]: link for link in links}
    for i, node in enumerate(inner):
        for position, slot in enumerate(node["inputs"]):
            outer_slot = config.input_map.get(i, {}).get(position)
            if outer_slot is not None:
                link_id = instance_inputs[outer_slot].get("link") \
                    if outer_slot < len(instance_inputs) else None
                link = by_id.get(link_id)
                if link is not None:
                    link[TARGET], link[TARGET_SLOT] = ids[i], position
                    slot["link"] = link[LINK_ID]
                continue
            internal = config.links_to.get(i, {}).get(position)
            if internal is not None:
                src, src_slot = int(internal[0]), int(internal[1])
                kind = internal[5] if len(internal) > 5 else "*"
                links.append([next_id, ids[src], src_slot, ids[i], position, kind])
                slot["link"] = next_id
                outputs = inner[src]["outputs"]
                if src_slot < len(outputs):
                    outputs[src_slot]["links"].append(next_id)
                next_id += 1
    for link in links:  # the instance's outputs come from inner nodes
        if link[ORIGIN] == iid and int(link[ORIGIN_SLOT]) < len(config.outputs):
            src, src_slot = config.outputs[int(link[ORIGIN_SLOT])]
            link[ORIGIN], link[ORIGIN_SLOT] = ids[src], src_slot
            outputs = inner[src]["outputs"]
            if src_slot < len(outputs):
                outputs[src_slot]["links"].append(link[LINK_ID])
    return inner, next_id


def _set_widget(node: dict[str, Any], nodedefs: NodeDefs, widget: str, value: Any) -> None:
    """Write `value` into the stored value of inner widget `widget` (at its place in the
    node's own widget layout)."""
    values = node.get("widgets_values")
    if isinstance(values, dict):
        values[widget] = value
        return
    node_type = TYPE_ALIASES.get(str(node.get("type")), str(node.get("type")))
    stored = [w for w in widget_layout(nodedefs, node_type) if w.stored]
    names = [w.name for w in stored]
    if widget not in names:
        return
    values = list(values or [])
    position = names.index(widget)
    values += [w.value for w in stored[len(values):position + 1]]
    values[position] = value
    node["widgets_values"] = values

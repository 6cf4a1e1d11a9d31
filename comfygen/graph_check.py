"""Graph-level checks of an API-format graph against live node definitions, as ComfyUI's
`POST /prompt` validation makes them, without queueing anything.

The problems come back in ComfyUI's own shape (`node_errors` entries with `type`, `message`,
`details`, `extra_info`), so the server answers a dry run exactly as it answers ComfyUI's 400.
What `/object_info` cannot show is left to ComfyUI: a node's own `VALIDATE_INPUTS` (it may accept
other link types or values; upload inputs such as LoadImage's `image` are such inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from comfygen.comfy.errors import ComfyValidationError
from comfygen.nodedefs import InputDef, NodeDefs

Graph = Mapping[str, Any]


@dataclass
class GraphCheck:
    """The outcome: a top-level error (unknown class, no outputs...) or per-node errors."""

    error: dict[str, Any] | None = None
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_error(self) -> ComfyValidationError:
        """What the ComfyUI client raises when `POST /prompt` answers 400 with these errors."""
        return ComfyValidationError(self.error or {}, self.node_errors)


def check_graph(graph: Graph, nodedefs: NodeDefs) -> GraphCheck:
    """Validate `graph` as ComfyUI 0.3.75 does: every node's class exists, at least one output
    node, and from each output node upwards: required inputs present, links well formed and of
    a matching type, values convertible, within min/max and in their combo list. The graph is
    refused only when no output node validates (ComfyUI runs the good ones)."""
    outputs = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            return GraphCheck(_top("invalid_prompt", "Cannot execute because a node is missing "
                                   "the class_type property.", f"Node ID '#{node_id}'"))
        nodedef = nodedefs.get(str(node["class_type"]))
        if nodedef is None:
            return GraphCheck(_top("invalid_prompt", f"Cannot execute because node "
                                   f"{node['class_type']} does not exist.", f"Node ID '#{node_id}'"))
        if nodedef.output_node:
            outputs.append(str(node_id))
    if not outputs:
        return GraphCheck(_top("prompt_no_outputs", "Prompt has no outputs", ""))
    checker = _Checker(graph, nodedefs)
    failed: list[list[dict[str, Any]]] = []
    node_errors: dict[str, dict[str, Any]] = {}
    for out in outputs:
        try:
            valid, reasons = checker.node(out)
        except (KeyError, IndexError, TypeError) as exc:  # a link to a node or slot not there
            valid, reasons = False, [{
                "type": "exception_during_validation", "message": "Exception when validating node",
                "details": str(exc), "extra_info": {"exception_type": type(exc).__name__}}]
            checker.validated[out] = (False, reasons)
        if valid:
            return GraphCheck()  # ComfyUI queues the prompt and runs the outputs that validate
        failed.append(reasons)
        for node_id, (ok, errors) in checker.validated.items():
            if not ok and errors:
                entry = node_errors.setdefault(node_id, {
                    "errors": errors, "dependent_outputs": [],
                    "class_type": graph[node_id]["class_type"]})
                entry["dependent_outputs"].append(out)
    details = "\n".join(f"{e['message']}: {e['details']}" for reasons in failed for e in reasons)
    return GraphCheck(_top("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                           details), node_errors)


def _top(type_: str, message: str, details: str) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": {}}


def _types_match(received: str, expected: str) -> bool:
    """ComfyUI's rule: equal, `*` on either side, or comma-separated unions that overlap."""
    if received == expected or "*" in (received, expected):
        return True
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in expected.split(",")})


class _Checker:
    """One validation pass; `validated` holds each visited node's (valid, errors)."""

    def __init__(self, graph: Graph, nodedefs: NodeDefs) -> None:
        self.graph, self.nodedefs = graph, nodedefs
        self.validated: dict[str, tuple[bool, list[dict[str, Any]]]] = {}

    def node(self, node_id: str) -> tuple[bool, list[dict[str, Any]]]:
        if node_id in self.validated:
            return self.validated[node_id]
        node = self.graph[node_id]
        nodedef = self.nodedefs[str(node["class_type"])]
        inputs = node.get("inputs") or {}
        errors: list[dict[str, Any]] = []
        valid = True
        for name in nodedef.input_order:
            idef = nodedef.inputs[name]
            if name not in inputs:
                if idef.section == "required":
                    errors.append({"type": "required_input_missing",
                                   "message": "Required input is missing", "details": name,
                                   "extra_info": {"input_name": name}})
                continue
            value = inputs[name]
            if isinstance(value, list):
                error, upstream_ok = self._link(name, value, idef)
                if error is not None:
                    errors.append(error)
                valid = valid and upstream_ok
            else:
                error = _value(name, value, idef, self._raw_combo(nodedef.class_type, name))
                if error is not None:
                    errors.append(error)
        result = (valid and not errors, errors)
        self.validated[node_id] = result
        return result

    def _link(self, name: str, value: list[Any], idef: InputDef) -> tuple[dict[str, Any] | None,
                                                                       bool]:
        if len(value) != 2:
            return {"type": "bad_linked_input", "message": "Bad linked input, must be a length-2 "
                    "list of [node_id, slot_index]", "details": name,
                    "extra_info": {"input_name": name, "received_value": value}}, True
        source_id = str(value[0])
        source = self.nodedefs[str(self.graph[source_id]["class_type"])]
        received = source.outputs[value[1]]
        if not _types_match(received, idef.type_name):
            return {"type": "return_type_mismatch",
                    "message": "Return type mismatch between linked nodes",
                    "details": f"{name}, received_type({received}) mismatch "
                               f"input_type({idef.type_name})",
                    "extra_info": {"input_name": name, "received_type": received,
                                   "linked_node": value}}, True
        upstream_ok, _ = self.node(source_id)
        return None, upstream_ok

    def _raw_combo(self, class_type: str, name: str) -> bool:
        """ComfyUI checks membership only for inputs declared as a list (not `"COMBO"`)."""
        declared = (self.nodedefs.raw.get(class_type) or {}).get("input") or {}
        for section in ("required", "optional"):
            spec = (declared.get(section) or {}).get(name)
            if spec is not None:
                return isinstance(spec, list) and bool(spec) and isinstance(spec[0], list)
        return False


CONVERT = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def _value(name: str, value: Any, idef: InputDef, listed: bool) -> dict[str, Any] | None:
    if isinstance(value, Mapping) and "__value__" in value:
        value = value["__value__"]
    convert = CONVERT.get(idef.kind)
    if convert is not None:
        try:
            value = convert(value)
        except (TypeError, ValueError, OverflowError) as exc:
            return {"type": "invalid_input_type",
                    "message": f"Failed to convert an input value to a {idef.kind} value",
                    "details": f"{name}, {value}, {exc}",
                    "extra_info": {"input_name": name, "received_value": value,
                                   "exception_message": str(exc)}}
    if idef.uploads:
        return None  # upload inputs have their own VALIDATE_INPUTS (the file must exist)
    minimum, maximum = idef.minimum, idef.maximum
    extra = {"input_name": name, "received_value": value}
    if not isinstance(value, int | float):
        minimum = maximum = None
    if minimum is not None and value < minimum:
        return {"type": "value_smaller_than_min",
                "message": f"Value {value} smaller than min of {minimum}", "details": name,
                "extra_info": extra}
    if maximum is not None and value > maximum:
        return {"type": "value_bigger_than_max",
                "message": f"Value {value} bigger than max of {maximum}", "details": name,
                "extra_info": extra}
    if listed and value not in (idef.choices or ()):
        choices = list(idef.choices or ())
        shown = f"(list of length {len(choices)})" if len(choices) > 20 else str(choices)
        return {"type": "value_not_in_list", "message": "Value not in list",
                "details": f"{name}: '{value}' not in {shown}", "extra_info": extra}
    return None

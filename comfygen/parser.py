"""Resolve a workflow graph + mapping spec against node definitions into the IR."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from comfygen.errors import Problem, Severity
from comfygen.ir import MISSING, FieldIR, JsonType, OutputIR, WorkflowIR
from comfygen.names import field_name_problem, module_name
from comfygen.nodedefs import InputDef, NodeDefs
from comfygen.runtime.workflow import ChoiceSource, Target
from comfygen.sources import WorkflowSource
from comfygen.spec.models import FieldSpec, WorkflowSpec
from comfygen.workflow.api_format import is_link

JSON_TYPES: dict[str, JsonType] = {
    "INT": "integer",
    "FLOAT": "number",
    "STRING": "string",
    "BOOLEAN": "boolean",
    "COMBO": "string",
}
STRING_ONLY = ("min_length", "max_length", "pattern")


def output_nodes(graph: Mapping[str, Any], nodedefs: NodeDefs) -> list[str]:
    """Ids of the graph's output nodes (SaveImage, PreviewImage, ...), in graph order."""
    return [
        node_id
        for node_id, node in graph.items()
        if node.get("class_type") in nodedefs and nodedefs[node["class_type"]].output_node
    ]


class _FieldResolver:
    """Resolves one FieldSpec; collects problems instead of raising."""

    def __init__(
        self, name: str, spec: FieldSpec, graph: Mapping[str, Any], nodedefs: NodeDefs, file: str
    ) -> None:
        self.name, self.spec, self.graph, self.nodedefs, self.file = (
            name,
            spec,
            graph,
            nodedefs,
            file,
        )
        self.problems: list[Problem] = []

    def error(
        self, message: str, target: Target | None = None, severity: Severity = Severity.ERROR
    ) -> None:
        self.problems.append(
            Problem(
                self.file,
                message,
                node=target.node if target else None,
                input=target.input if target else None,
                field=self.name,
                severity=severity,
            )
        )

    def resolve_target(self, ref: Any) -> tuple[Target, InputDef | None, Any]:
        target = Target(ref.node, ref.input)
        node = self.graph.get(target.node)
        if node is None:
            self.error("the workflow has no node with this id", target)
            return target, None, MISSING
        class_type = node.get("class_type")
        nodedef = self.nodedefs.get(class_type)
        if nodedef is None:
            return target, None, MISSING  # reported once, when the workflow was read
        inputs = node.get("inputs") or {}
        value = inputs.get(target.input, MISSING)
        idef = nodedef.input(target.input)
        if idef is None:
            if value is MISSING:
                known = ", ".join(i.name for i in nodedef.widget_inputs) or "none"
                self.error(
                    f"{class_type} has no input {target.input!r} (widget inputs: {known})", target
                )
                return target, None, MISSING
            # An input the definitions don't list but the graph sets (dynamic inputs): trust it.
            idef = InputDef(target.input, _kind_of_literal(value), "ANY", "optional")
        if is_link(value):
            self.error(
                f"this input is connected to node {value[0]}; a public field can only "
                "set a literal value (disconnect it, or target the source node)",
                target,
            )
        elif not idef.is_widget and not idef.media_kind:
            self.error(
                f"this input takes a {idef.type_name} from another node; a public field "
                "can only set a literal value",
                target,
            )
        return target, idef, value

    def resolve(self) -> FieldIR | None:
        if msg := field_name_problem(self.name):
            self.error(msg)
            return None
        resolved = [self.resolve_target(ref) for ref in self.spec.all_targets]
        if self.problems:
            return None
        targets = tuple(t for t, _, _ in resolved)
        idefs = [i for _, i, _ in resolved if i is not None]
        if not idefs:
            return None
        kinds = {i.kind for i in idefs}
        if len(kinds) > 1:
            self.error(
                f"targets have different types ({', '.join(sorted(kinds))}); "
                "a field can only write one type"
            )
            return None
        first = idefs[0]
        json_type = JSON_TYPES.get(first.kind, "string")
        kind = self.spec.media or first.media_kind
        media = kind.value if kind else None
        if len(set(self.spec.all_targets)) != len(self.spec.all_targets):
            self.error("the same target is listed twice")

        ge, le = self._range(targets, idefs, json_type)
        choices = self._choices(targets[0], first, json_type)
        choice_source = None
        if first.kind == "COMBO" and not media:
            class_type = self.graph[targets[0].node]["class_type"]
            choice_source = ChoiceSource(class_type, first.name)
        for key in STRING_ONLY:
            if getattr(self.spec, key) is not None and json_type != "string":
                self.error(f"{key} only applies to string fields; this field is {json_type}")
        if self.spec.multiple_of is not None and json_type not in ("integer", "number"):
            self.error("multiple_of only applies to numeric fields")
        multiple_of = _as_type(self.spec.multiple_of, json_type)

        random = self.spec.is_random
        if random and json_type != "integer":
            self.error("'default: random' only applies to integer fields such as seeds")
        default = MISSING
        if not self.spec.required and not random:
            default = self._default(resolved, json_type, media)
        field = FieldIR(
            name=self.name,
            json_type=json_type,
            targets=targets,
            description=self._description(targets[0], first),
            title=self.spec.title,
            required=self.spec.required,
            default=default,
            random=random,
            ge=ge,
            le=le,
            multiple_of=multiple_of,
            min_length=self.spec.min_length,
            max_length=self.spec.max_length,
            pattern=self.spec.pattern,
            choices=choices,
            choice_source=choice_source,
            media=media,
            examples=tuple(self.spec.examples or ()),
        )
        if field.default is not MISSING:
            for msg in _violations(field, field.default):
                self.error(f"default {field.default!r} {msg}")
        return None if self.problems else field

    def _range(
        self, targets: tuple[Target, ...], idefs: list[InputDef], json_type: JsonType
    ) -> tuple[Any, Any]:
        if json_type not in ("integer", "number"):
            for key in ("ge", "le"):
                if getattr(self.spec, key) is not None:
                    self.error(f"{key} only applies to numeric fields; this field is {json_type}")
            return None, None
        node_min = max((i.minimum for i in idefs if i.minimum is not None), default=None)
        node_max = min((i.maximum for i in idefs if i.maximum is not None), default=None)
        ge = _as_type(self.spec.ge, json_type)
        le = _as_type(self.spec.le, json_type)
        if ge is not None and node_min is not None and ge < node_min:
            self.error(
                f"ge {ge} widens the node's range: the node accepts no less than {node_min}",
                targets[0],
            )
        if le is not None and node_max is not None and le > node_max:
            self.error(
                f"le {le} widens the node's range: the node accepts no more than {node_max}",
                targets[0],
            )
        for key, value in (("ge", self.spec.ge), ("le", self.spec.le)):
            if json_type == "integer" and value is not None and value != int(value):
                self.error(f"{key} {value} is not a whole number; this field is an integer")
        return (
            ge if ge is not None else _as_type(node_min, json_type),
            le if le is not None else _as_type(node_max, json_type),
        )

    def _choices(self, target: Target, idef: InputDef, json_type: JsonType) -> tuple | None:
        if self.spec.choices is None:
            return None
        if idef.kind == "COMBO" and idef.choices:
            unknown = [c for c in self.spec.choices if c not in idef.choices]
            if unknown:
                self.error(
                    f"choices {unknown} are not values the node offers "
                    f"({', '.join(map(repr, idef.choices[:12]))}...)",
                    target,
                )
        for c in self.spec.choices:
            if _json_type_of(c) != json_type and not (
                json_type == "number" and _json_type_of(c) == "integer"
            ):
                self.error(f"choice {c!r} is not of the field's type {json_type}")
        return tuple(self.spec.choices)

    def _default(
        self,
        resolved: list[tuple[Target, InputDef | None, Any]],
        json_type: JsonType,
        media: str | None,
    ) -> Any:
        if self.spec.has_default:
            value = self.spec.default
            if value is None:
                return MISSING  # explicit null: optional, keeps the workflow's value
            if _json_type_of(value) != json_type and not (
                json_type == "number" and _json_type_of(value) == "integer"
            ):
                self.error(f"default {value!r} is not of the field's type {json_type}")
            return value
        if media:
            return MISSING  # left out: the workflow's own file is used
        target, idef, literal = resolved[0]
        if literal is MISSING and idef is not None:
            literal = idef.default
        if literal is MISSING or literal is None:
            return MISSING
        if json_type == "number" and isinstance(literal, int) and not isinstance(literal, bool):
            return literal
        if _json_type_of(literal) != json_type:
            self.error(
                f"the workflow's value {literal!r} is not of the field's type {json_type}", target
            )
            return MISSING
        return literal

    def _description(self, target: Target, idef: InputDef) -> str:
        if self.spec.description:
            return self.spec.description
        if idef.tooltip:
            return idef.tooltip
        node = self.graph[target.node]
        title = (node.get("_meta") or {}).get("title") or node.get("class_type")
        return f"{idef.name} of {title} (node {target.node})"


def _kind_of_literal(value: Any) -> Any:
    return {bool: "BOOLEAN", int: "INT", float: "FLOAT", str: "STRING"}.get(type(value), "LINK")


def _json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _as_type(value: float | int | None, json_type: JsonType) -> Any:
    if value is None:
        return None
    if json_type == "integer" and float(value).is_integer():
        return int(value)
    if json_type == "number" and isinstance(value, float) and value.is_integer():
        return int(value) if abs(value) < 2**53 else value
    return value


def _violations(field: FieldIR, value: Any) -> list[str]:
    """Why `value` breaks the field's constraints (used to check defaults at generation time)."""
    out = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            out.append("is not a finite number")
        if field.ge is not None and value < field.ge:
            out.append(f"is below the minimum {field.ge}")
        if field.le is not None and value > field.le:
            out.append(f"is above the maximum {field.le}")
        if field.multiple_of and (value / field.multiple_of) % 1:
            out.append(f"is not a multiple of {field.multiple_of}")
    if isinstance(value, str):
        if field.min_length is not None and len(value) < field.min_length:
            out.append(f"is shorter than min_length {field.min_length}")
        if field.max_length is not None and len(value) > field.max_length:
            out.append(f"is longer than max_length {field.max_length}")
        if field.pattern is not None and not re.search(field.pattern, value):
            out.append(f"does not match pattern {field.pattern!r}")
    if field.choices is not None and value not in field.choices:
        out.append("is not one of the choices")
    return out


def parse(
    source: WorkflowSource, graph: dict[str, Any], spec: WorkflowSpec, nodedefs: NodeDefs
) -> tuple[WorkflowIR | None, list[Problem]]:
    """Build the IR of one workflow, or return None with every problem found."""
    wf_file = source.rel(source.workflow_path)
    spec_file = source.rel(source.spec_path)
    problems: list[Problem] = []
    fields = []
    claimed: dict[Target, str] = {}
    for name, field_spec in spec.inputs.items():
        resolver = _FieldResolver(name, field_spec, graph, nodedefs, spec_file)
        field = resolver.resolve()
        problems.extend(resolver.problems)
        if field is None:
            continue
        for t in field.targets:
            if t in claimed:
                problems.append(
                    Problem(
                        spec_file,
                        f"target also written by field {claimed[t]!r}",
                        node=t.node,
                        input=t.input,
                        field=name,
                    )
                )
            claimed[t] = name
        fields.append(field)
    outputs = _outputs(spec, graph, nodedefs, spec_file, problems)
    if any(p.severity == Severity.ERROR for p in problems):
        return None, problems
    summary = spec.summary or source.name
    ir = WorkflowIR(
        model=source.model,
        name=source.name,
        package=module_name(source.model),
        module=module_name(source.name),
        workflow_file=wf_file,
        spec_file=spec_file,
        summary=summary,
        description=spec.description or summary,
        graph=graph,
        fields=tuple(fields),
        outputs=outputs,
    )
    return ir, problems


def _outputs(
    spec: WorkflowSpec,
    graph: Mapping[str, Any],
    nodedefs: NodeDefs,
    file: str,
    problems: list[Problem],
) -> tuple[OutputIR, ...]:
    if spec.outputs is None:
        ids = output_nodes(graph, nodedefs)
        if not ids and not any(p.node for p in problems):
            problems.append(
                Problem(
                    file,
                    "the workflow has no output node (SaveImage, ...); nothing would be returned",
                )
            )
    else:
        ids = list(spec.outputs)
        for node_id in ids:
            node = graph.get(node_id)
            if node is None:
                problems.append(
                    Problem(file, "outputs: the workflow has no node with this id", node=node_id)
                )
            elif (
                node.get("class_type") in nodedefs and not nodedefs[node["class_type"]].output_node
            ):
                problems.append(
                    Problem(
                        file,
                        f"outputs: {node['class_type']} is not an output node (it saves nothing)",
                        node=node_id,
                    )
                )
    return tuple(OutputIR(i, graph[i]["class_type"]) for i in ids if i in graph)

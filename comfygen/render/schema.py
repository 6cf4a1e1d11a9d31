"""IR -> JSON Schema of a workflow's `input` object."""

from __future__ import annotations

from typing import Any

from comfygen.ir import MISSING, FieldIR, WorkflowIR
from comfygen.nodedefs import MediaKind
from comfygen.runtime.input import RANDOM_KEY


def field_schema(field: FieldIR) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": field.json_type}
    if field.title:
        schema["title"] = field.title
    for key, value in (
        ("minimum", field.ge),
        ("maximum", field.le),
        ("multipleOf", field.multiple_of),
        ("minLength", field.min_length),
        ("maxLength", field.max_length),
        ("pattern", field.pattern),
    ):
        if value is not None:
            schema[key] = value
    if field.choices is not None:
        schema["enum"] = list(field.choices)
    if field.default is not MISSING:
        schema["default"] = field.default
    schema["description"] = field.description
    if field.examples:
        schema["examples"] = list(field.examples)
    if field.random:
        schema[RANDOM_KEY] = True
    if field.media:
        schema["contentMediaType"] = MediaKind(field.media).content_type
    return schema


def input_schema(ir: WorkflowIR) -> dict[str, Any]:
    """The JSON Schema of the workflow's input object (no extra fields allowed)."""
    return {
        "title": "Input",
        "type": "object",
        "description": f"Inputs of the {ir.path} workflow.",
        "properties": {f.name: field_schema(f) for f in ir.fields},
        "required": [f.name for f in ir.fields if f.required],
        "additionalProperties": False,
    }

"""Pydantic models of the mapping spec (`workflow_templates/<model>/<name>.yaml`)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comfygen.nodedefs import MediaKind

"""A public field name's shape: the one regex is `comfygen.names.IDENTIFIER` (this alias stays
until `comfygen.sources` imports that directly)."""
RANDOM = "random"


class TargetRef(BaseModel):
    """A node input: `{node: "294", input: "seed"}`, or the short form `"294.seed"`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str
    input: str

    @model_validator(mode="before")
    @classmethod
    def _parse_short_form(cls, value: Any) -> Any:
        if isinstance(value, str):
            node, sep, name = value.partition(".")
            if not sep or not node or not name:
                raise ValueError(f"target {value!r} must look like 'NODE_ID.input_name'")
            return {"node": node, "input": name}
        if isinstance(value, dict) and isinstance(value.get("node"), int):
            return {**value, "node": str(value["node"])}
        return value

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"


class FieldSpec(BaseModel):
    """One public input field. Anything left out is inferred from the node definition."""

    model_config = ConfigDict(extra="forbid")

    target: TargetRef | None = None
    targets: list[TargetRef] | None = None
    description: str | None = None
    title: str | None = None
    required: bool = False
    default: Any = None
    has_default: bool = Field(default=False, exclude=True)
    ge: float | None = None
    le: float | None = None
    multiple_of: Annotated[float, Field(gt=0)] | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=0)] | None = None
    pattern: str | None = None
    choices: list[str | int | float] | None = None
    examples: list[Any] | None = None
    media: MediaKind | None = None

    @model_validator(mode="before")
    @classmethod
    def _note_default(cls, value: Any) -> Any:
        if isinstance(value, dict) and "default" in value:
            return {**value, "has_default": True}
        return value

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if (self.target is None) == (self.targets is None):
            raise ValueError("give exactly one of 'target' or 'targets'")
        if self.targets is not None and not self.targets:
            raise ValueError("'targets' must name at least one node input")
        if self.required and self.has_default:
            raise ValueError("a required field cannot have a default")
        if self.ge is not None and self.le is not None and self.ge > self.le:
            raise ValueError(f"ge ({self.ge}) is greater than le ({self.le})")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return self

    @property
    def all_targets(self) -> list[TargetRef]:
        return [self.target] if self.target is not None else list(self.targets or [])

    @property
    def is_random(self) -> bool:
        return self.has_default and self.default == RANDOM


class WorkflowSpec(BaseModel):
    """The whole spec file: endpoint docs, public fields, returned outputs."""

    model_config = ConfigDict(extra="forbid")

    summary: str | None = None
    description: str | None = None
    inputs: dict[str, FieldSpec] = Field(default_factory=dict)
    outputs: list[str] | None = Field(
        default=None, description="Output node ids to return; default: every output node."
    )

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value

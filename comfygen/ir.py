"""The intermediate representation: a workflow resolved against node definitions, ready to print."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from comfygen.runtime.workflow import ChoiceSource, Target

JsonType = Literal["integer", "number", "string", "boolean"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""No default: the field is required, random, or optional without a value."""


@dataclass(frozen=True)
class FieldIR:
    """One public input field and the node inputs it writes to."""

    name: str
    json_type: JsonType
    targets: tuple[Target, ...]
    description: str
    title: str | None = None
    required: bool = False
    default: Any = MISSING
    random: bool = False
    ge: int | float | None = None
    le: int | float | None = None
    multiple_of: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    choice_source: ChoiceSource | None = None
    media: str | None = None
    examples: tuple[Any, ...] = ()

    @property
    def optional_without_default(self) -> bool:
        """Not required, no default and not random: left out means 'keep the workflow's value'."""
        return not self.required and not self.random and self.default is MISSING


@dataclass(frozen=True)
class OutputIR:
    node: str
    class_type: str


@dataclass(frozen=True)
class WorkflowIR:
    """Everything the templates print for one workflow."""

    model: str
    name: str
    package: str
    module: str
    workflow_file: str
    spec_file: str
    summary: str
    description: str
    graph: dict[str, Any]
    fields: tuple[FieldIR, ...]
    outputs: tuple[OutputIR, ...]

    @property
    def path(self) -> str:
        return f"{self.model}/{self.name}"

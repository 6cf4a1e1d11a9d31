"""The descriptor every generated workflow module exports as `WORKFLOW`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from comfygen.nodedefs import MediaKind
from comfygen.runtime.input import WorkflowInput

Graph = dict[str, dict[str, Any]]
"""An API-format ComfyUI graph: node id -> {"class_type", "inputs", "_meta"?}."""


@dataclass(frozen=True)
class Target:
    """One node input that a public field writes to."""

    node: str
    input: str


@dataclass(frozen=True)
class ChoiceSource:
    """Where the allowed values of a field live: a combo input of a node class in `/object_info`."""

    node_class: str
    input: str


@dataclass(frozen=True)
class Workflow:
    """A generated workflow: its input model, its base graph and how inputs patch that graph."""

    model: str
    name: str
    summary: str
    description: str
    input_model: type[WorkflowInput]
    builder: Callable[[Any], Graph]
    graph: Mapping[str, Any]
    targets: Mapping[str, tuple[Target, ...]]
    outputs: tuple[str, ...]
    source: str
    choices: Mapping[str, ChoiceSource] = field(default_factory=dict)
    media: Mapping[str, MediaKind] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The endpoint path below /workflow/, e.g. `sd3.5-medium/txt2img`."""
        return f"{self.model}/{self.name}"

    def build(self, data: WorkflowInput | Mapping[str, Any]) -> Graph:
        """Validate `data` if needed and return the API graph with the inputs applied."""
        value = (
            data if isinstance(data, self.input_model) else self.input_model.model_validate(data)
        )
        return self.builder(value)

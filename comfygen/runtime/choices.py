"""Check fields whose allowed values depend on what the live ComfyUI has installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfygen.nodedefs import NodeDefs
from comfygen.runtime.workflow import ChoiceSource, Workflow


@dataclass(frozen=True)
class ChoiceError:
    field: str
    value: Any
    allowed: tuple[str, ...]

    @property
    def message(self) -> str:
        if not self.allowed:
            return f"{self.value!r} is not available: the connected ComfyUI offers no values here"
        shown = ", ".join(repr(a) for a in self.allowed[:20])
        more = f" (and {len(self.allowed) - 20} more)" if len(self.allowed) > 20 else ""
        return f"{self.value!r} is not one of the values ComfyUI offers: {shown}{more}"


def live_choices(nodedefs: NodeDefs, source: ChoiceSource) -> tuple[str, ...] | None:
    """The combo values the live ComfyUI lists for `source`; None when the node or input is gone."""
    return nodedefs.choices(source.node_class, source.input)


def check_choices(workflow: Workflow, data: Any, nodedefs: NodeDefs) -> list[ChoiceError]:
    """Every field of `data` whose value the live ComfyUI (its `/object_info`) does not offer."""
    errors = []
    for name, source in sorted(workflow.choices.items()):
        value = getattr(data, name)
        allowed = live_choices(nodedefs, source)
        if allowed is None:
            continue  # the node changed shape; ComfyUI's own validation will speak
        if str(value) not in allowed:
            errors.append(ChoiceError(name, value, allowed))
    return errors

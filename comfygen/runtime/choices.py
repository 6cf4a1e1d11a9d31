"""Check fields whose allowed values depend on what the live ComfyUI has installed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def live_choices(object_info: Mapping[str, Any], source: ChoiceSource) -> tuple[str, ...] | None:
    """The combo values `/object_info` lists for `source`, or None when the node or input is gone."""
    node = object_info.get(source.node_class)
    if not isinstance(node, Mapping):
        return None
    for section in ("required", "optional"):
        spec = node.get("input", {}).get(section, {}).get(source.input)
        if spec is None:
            continue
        kind = spec[0] if isinstance(spec, list | tuple) and spec else None
        if isinstance(kind, list):
            return tuple(str(v) for v in kind)
        if kind == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
            return tuple(str(v) for v in spec[1].get("options", []))
        return None
    return None


def check_choices(
    workflow: Workflow, data: Any, object_info: Mapping[str, Any]
) -> list[ChoiceError]:
    """Every field of `data` whose value the live ComfyUI does not offer."""
    errors = []
    for name, source in sorted(workflow.choices.items()):
        value = getattr(data, name)
        allowed = live_choices(object_info, source)
        if allowed is None:
            continue  # the node changed shape; ComfyUI's own validation will speak
        if str(value) not in allowed:
            errors.append(ChoiceError(name, value, allowed))
    return errors

"""Node definitions, parsed from ComfyUI's `/object_info`: what inputs each node class takes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

InputKind = Literal["INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "LINK"]
Section = Literal["required", "optional", "hidden"]
SEED_NAMES = ("seed", "noise_seed")
"""INT inputs with these names are seed-like unless their options say otherwise."""


class MediaKind(StrEnum):
    """Kinds of file a media field carries to ComfyUI's input folder."""

    IMAGE = "image"
    MASK = "mask"
    VIDEO = "video"
    AUDIO = "audio"

    @property
    def content_type(self) -> str:
        """The JSON Schema `contentMediaType` of a field of this kind."""
        return CONTENT_TYPES[self]


CONTENT_TYPES = {
    MediaKind.IMAGE: "image/*",
    MediaKind.MASK: "image/*",
    MediaKind.VIDEO: "video/*",
    MediaKind.AUDIO: "audio/*",
}

UPLOAD_OPTIONS: Mapping[str, MediaKind | None] = {
    "image_upload": MediaKind.IMAGE,
    "video_upload": MediaKind.VIDEO,
    "audio_upload": MediaKind.AUDIO,
    # The frontend gives these an upload widget too, but comfygen does not take them as media.
    "animated_image_upload": None,
}
"""`/object_info` options that mark an upload combo (a file in ComfyUI's input folder), and the
kind of file a public field of that input carries."""


@dataclass(frozen=True)
class InputDef:
    """One input of a node class. `kind` is LINK for inputs fed by another node's output."""

    name: str
    kind: InputKind
    type_name: str
    section: Section
    options: Mapping[str, Any] = field(default_factory=dict)
    choices: tuple[Any, ...] | None = None

    @property
    def is_widget(self) -> bool:
        """True when the UI shows this input as a widget (a literal value in the graph)."""
        return self.kind != "LINK"

    @property
    def default(self) -> Any:
        if "default" in self.options:
            return self.options["default"]
        if self.choices:
            return self.choices[0]
        return None

    @property
    def minimum(self) -> int | float | None:
        return self.options.get("min")

    @property
    def maximum(self) -> int | float | None:
        return self.options.get("max")

    @property
    def tooltip(self) -> str | None:
        tip = self.options.get("tooltip")
        return tip if isinstance(tip, str) else None

    @property
    def control_after_generate(self) -> bool:
        """Seed-like inputs: the UI adds a `control_after_generate` widget after this one (its
        value is stored in `widgets_values`, never sent). As in the frontend: an INT input takes
        the option when given, else is seed-like when named in SEED_NAMES; a COMBO input takes
        the option; other inputs never are."""
        if self.kind == "INT":
            return bool(self.options.get("control_after_generate", self.name in SEED_NAMES))
        return self.kind == "COMBO" and bool(self.options.get("control_after_generate"))

    @property
    def uploads(self) -> bool:
        """An upload combo: the frontend adds an `upload` widget for it (any UPLOAD_OPTIONS)."""
        return any(self.options.get(option) for option in UPLOAD_OPTIONS)

    @property
    def media_kind(self) -> MediaKind | None:
        """The kind of file this upload input takes (a public field of it is a media field)."""
        for option, kind in UPLOAD_OPTIONS.items():
            if kind is not None and self.options.get(option):
                return kind
        return None


@dataclass(frozen=True)
class NodeDef:
    """A node class: its inputs in declaration order, outputs and whether it is an output node."""

    class_type: str
    inputs: Mapping[str, InputDef]
    input_order: tuple[str, ...]
    outputs: tuple[str, ...]
    output_node: bool
    display_name: str

    def input(self, name: str) -> InputDef | None:
        return self.inputs.get(name)

    @property
    def widget_inputs(self) -> tuple[InputDef, ...]:
        """Widget inputs (required then optional) in the order the UI stores their values."""
        return tuple(self.inputs[n] for n in self.input_order if self.inputs[n].is_widget)


def parse_input(name: str, raw: Any, section: Section) -> InputDef:
    """Parse one `[TYPE, OPTIONS]` entry of `/object_info`."""
    if not isinstance(raw, list | tuple) or not raw:
        return InputDef(name, "LINK", str(raw), section)
    head = raw[0]
    options = raw[1] if len(raw) > 1 and isinstance(raw[1], Mapping) else {}
    if isinstance(head, list | tuple):
        return InputDef(name, "COMBO", "COMBO", section, options, tuple(head))
    if head == "COMBO":
        return InputDef(name, "COMBO", "COMBO", section, options, tuple(options.get("options", ())))
    if head in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        return InputDef(name, head, head, section, options)
    return InputDef(name, "LINK", str(head), section, options)


def parse_node(class_type: str, raw: Mapping[str, Any]) -> NodeDef:
    inputs: dict[str, InputDef] = {}
    declared = raw.get("input", {}) or {}
    for section in ("required", "optional", "hidden"):
        for name, spec in (declared.get(section) or {}).items():
            if section == "hidden":
                if name not in inputs:  # a hidden input never shadows a visible one
                    inputs[name] = InputDef(name, "LINK", str(spec), "hidden")
            else:
                inputs[name] = parse_input(name, spec, section)
    order_raw = raw.get("input_order") or {}
    order: list[str] = []
    for section in ("required", "optional"):
        names = order_raw.get(section) or list((declared.get(section) or {}).keys())
        order.extend(n for n in names if n in inputs and n not in order)
    return NodeDef(
        class_type=class_type,
        inputs=inputs,
        input_order=tuple(order),
        outputs=tuple(
            str(o) if not isinstance(o, list) else "COMBO" for o in raw.get("output", [])
        ),
        output_node=bool(raw.get("output_node")),
        display_name=str(raw.get("display_name") or class_type),
    )


class NodeDefs(Mapping[str, NodeDef]):
    """Every node class a ComfyUI offers, keyed by class_type."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self._nodes = {k: parse_node(k, v) for k, v in raw.items() if isinstance(v, Mapping)}

    def __getitem__(self, key: str) -> NodeDef:
        return self._nodes[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def choices(self, class_type: str, input_name: str) -> tuple[str, ...] | None:
        """The values combo input `input_name` of `class_type` offers, or None when the node or
        the input is gone or is not a combo."""
        node = self._nodes.get(class_type)
        idef = node.input(input_name) if node is not None else None
        if idef is None or idef.kind != "COMBO":
            return None
        return tuple(str(v) for v in idef.choices or ())

    @classmethod
    def from_json(cls, text: str | bytes) -> NodeDefs:
        """Parse an `/object_info` body."""
        try:
            return cls(orjson.loads(text))
        except orjson.JSONDecodeError:  # `NaN` or `Infinity` (Python's json writes them)
            return cls(json.loads(text))

    @classmethod
    def load(cls, path: Path) -> NodeDefs:
        """Read a saved `/object_info` snapshot."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def fetch(cls, url: str, timeout: float = 30.0) -> NodeDefs:
        """Read `/object_info` from a running ComfyUI."""
        response = httpx.get(url.rstrip("/") + "/object_info", timeout=timeout)
        response.raise_for_status()
        return cls(response.json())


def dump_object_info(raw: Mapping[str, Any]) -> str:
    """Deterministic text of an `/object_info` snapshot: classes sorted, each kept as ComfyUI
    declares it (input order matters for UI-format widget values)."""
    ordered = {name: raw[name] for name in sorted(raw)}
    return json.dumps(ordered, indent=1, ensure_ascii=False) + "\n"

"""The widgets ComfyUI's frontend (1.32.x) gives a node, in order: what `widgets_values` fills.

Each widget input of `/object_info` becomes a widget; seed-like inputs add a `control_after_generate`
widget, upload inputs an `upload` widget, and a few frontend extensions add their own
(`EXTENSION_WIDGETS`). Only some widgets are stored in `widgets_values`, and only some are sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from comfygen.nodedefs import NodeDefs, parse_input

UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")


@dataclass
class Widget:
    """One widget of a node. `stored`: has a slot in `widgets_values`; `sent`: goes to the API."""

    name: str
    value: Any
    stored: bool = True
    sent: bool = True
    dynamic_prompts: bool = False


# Widgets that frontend extensions add to some core nodes (frontend 1.32.x), as
# (anchor, name, value, stored, sent); anchor is "start", "end" or the widget they follow.
EXTENSION_WIDGETS: dict[str, tuple[tuple[str, str, Any, bool, bool], ...]] = {
    "Load3D": (
        ("model_file", "upload 3d model", "upload3dmodel", True, True),
        ("upload 3d model", "upload extra resources", "uploadExtraResources", True, True),
        ("upload extra resources", "clear", "clear", True, True),
        ("clear", "image", "", True, True),
    ),
    "Preview3D": (("end", "image", "", True, True),),
    "SaveGLB": (("end", "image", "", True, True),),
    "PreviewAny": (("end", "preview", "", False, True),),
    "WebcamCapture": (
        ("start", "image", "", True, True),
        ("end", "waiting for camera...", "capture", True, True),
    ),
    "LoadImageOutput": (
        ("image", "Auto-refresh after generation", False, True, False),
        ("Auto-refresh after generation", "refresh", "refresh", True, True),
    ),
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # the frontend's slot type: "INT", "COMBO", "MODEL", ...
    kind: str
    options: Mapping[str, Any]
    choices: tuple[Any, ...] | None

    @property
    def has_widget(self) -> bool:
        return self.kind != "LINK" and not self.options.get("forceInput")

    @property
    def has_control(self) -> bool:
        """Seed-like: the UI keeps one extra `control_after_generate` value after this one."""
        if self.kind == "INT":
            return bool(self.options.get("control_after_generate",
                                         self.name in ("seed", "noise_seed")))
        return self.kind == "COMBO" and bool(self.options.get("control_after_generate"))

    def default(self) -> Any:
        if "default" in self.options:
            return self.options["default"]
        if self.kind == "COMBO":
            return self.choices[0] if self.choices else None
        return {"INT": 0, "FLOAT": 0, "STRING": "", "BOOLEAN": False}.get(self.kind)


def input_specs(nodedefs: NodeDefs, class_type: str) -> list[InputSpec]:
    """Required then optional inputs in `input_order` (hidden inputs are not UI inputs)."""
    raw = nodedefs.raw.get(class_type) or {}
    declared = raw.get("input") or {}
    order = raw.get("input_order") or {}
    specs: list[InputSpec] = []
    for section in ("required", "optional"):
        entries = declared.get(section) or {}
        names = [n for n in order.get(section) or [] if n in entries]
        names += [n for n in entries if n not in names]
        for name in names:
            d = parse_input(name, entries[name], section)
            slot_type = d.type_name if d.kind == "LINK" else d.kind
            specs.append(InputSpec(name, slot_type, d.kind, d.options, d.choices))
    return specs


def widget_layout(nodedefs: NodeDefs, class_type: str) -> list[Widget]:
    """The widgets a new node of `class_type` has in the frontend, in order, with defaults."""
    widgets: list[Widget] = []
    upload = False
    for spec in input_specs(nodedefs, class_type):
        if not spec.has_widget:
            continue
        widgets.append(Widget(spec.name, spec.default(),
                              dynamic_prompts=bool(spec.options.get("dynamicPrompts"))))
        if spec.has_control:
            widgets.append(Widget("control_after_generate", "randomize", sent=False))
        upload = upload or any(spec.options.get(f) for f in UPLOAD_FLAGS)
    for anchor, name, value, stored, sent in EXTENSION_WIDGETS.get(class_type, ()):
        extra = Widget(name, value, stored, sent)
        if anchor == "start":
            widgets.insert(0, extra)
        elif anchor == "end":
            widgets.append(extra)
        else:
            at = next((i for i, w in enumerate(widgets) if w.name == anchor), len(widgets) - 1)
            widgets.insert(at + 1, extra)
    if upload:
        widgets.append(Widget("upload", "image", sent=False))
    return widgets


def migrate_widget_values(specs: list[InputSpec], widgets: list[Widget], values: list) -> list:
    """Old saves also stored values for `forceInput` inputs: drop those when the count says so."""
    names = {w.name for w in widgets}
    relevant = [s for s in specs if s.name in names or s.options.get("forceInput")]
    if not any(s.options.get("forceInput") for s in relevant):
        return values
    if sum(2 if s.has_control or s.name in ("seed", "noise_seed") else 1
           for s in relevant) != len(values):
        return values
    return [v for i, v in enumerate(values)
            if i >= len(relevant) or not relevant[i].options.get("forceInput")]

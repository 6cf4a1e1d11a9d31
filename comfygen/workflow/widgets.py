"""The widgets ComfyUI's frontend (1.32.x) gives a node, in order: what `widgets_values` fills.

Each widget input of `/object_info` becomes a widget; seed-like inputs add a
`control_after_generate` widget, upload inputs an `upload` widget, and a few frontend extensions add
their own (`EXTENSION_WIDGETS`). Only some widgets are stored in `widgets_values`, and only some
are sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfygen.nodedefs import SEED_NAMES, InputDef, NodeDefs, parse_input


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


def ui_inputs(nodedefs: NodeDefs, class_type: str) -> list[InputDef]:
    """The inputs a node of `class_type` has in the frontend: required then optional, each in
    `input_order` then declaration order (hidden inputs are not UI inputs)."""
    raw = nodedefs.raw.get(class_type) or {}
    declared = raw.get("input") or {}
    order = raw.get("input_order") or {}
    inputs: list[InputDef] = []
    for section in ("required", "optional"):
        entries = declared.get(section) or {}
        names = [n for n in order.get(section) or [] if n in entries]
        names += [n for n in entries if n not in names]
        inputs.extend(parse_input(name, entries[name], section) for name in names)
    return inputs


def has_widget(idef: InputDef) -> bool:
    """The frontend draws a widget for literal inputs, unless they are marked `forceInput`."""
    return idef.is_widget and not idef.options.get("forceInput")


def widget_default(idef: InputDef) -> Any:
    """A new widget's value: the declared default, else a combo's first choice, else zero/empty."""
    if "default" in idef.options or idef.kind == "COMBO":
        return idef.default
    return {"INT": 0, "FLOAT": 0, "STRING": "", "BOOLEAN": False}.get(idef.kind)


def widget_layout(nodedefs: NodeDefs, class_type: str) -> list[Widget]:
    """The widgets a new node of `class_type` has in the frontend, in order, with defaults."""
    widgets: list[Widget] = []
    upload = False
    for idef in ui_inputs(nodedefs, class_type):
        if not has_widget(idef):
            continue
        widgets.append(Widget(idef.name, widget_default(idef),
                              dynamic_prompts=bool(idef.options.get("dynamicPrompts"))))
        if idef.control_after_generate:
            widgets.append(Widget("control_after_generate", "randomize", sent=False))
        upload = upload or idef.uploads
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


def migrate_widget_values(inputs: list[InputDef], widgets: list[Widget], values: list) -> list:
    """Old saves also stored values for `forceInput` inputs: drop those when the count says so.
    The frontend's count takes two values for a seed-like input and, here, for any input named
    like a seed (its `migrateWidgetsValues` tests the name whatever the option says)."""
    names = {w.name for w in widgets}
    relevant = [s for s in inputs if s.name in names or s.options.get("forceInput")]
    if not any(s.options.get("forceInput") for s in relevant):
        return values
    if sum(2 if s.control_after_generate or s.name in SEED_NAMES else 1
           for s in relevant) != len(values):
        return values
    return [v for i, v in enumerate(values)
            if i >= len(relevant) or not relevant[i].options.get("forceInput")]

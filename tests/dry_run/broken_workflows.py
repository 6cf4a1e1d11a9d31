"""Model-free workflows whose graphs ComfyUI 0.3.75 refuses, one per graph-level problem, to
compare a dry run's answer with the real call's (ComfyUI's own 400)."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from comfygen.runtime import Target, Workflow, WorkflowInput


class WideInput(WorkflowInput):
    """A spec that allows more than ComfyUI does: EmptyImage's width stops at 16384."""

    model_config = ConfigDict(extra="forbid")
    size: Annotated[int, Field(ge=1, le=100_000)] = 16


GOOD = {
    "1": {"class_type": "EmptyImage",
          "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
}


def _workflow(name: str, graph: dict[str, Any]) -> Workflow:
    def build(data: WideInput) -> dict[str, Any]:
        g = copy.deepcopy(graph)
        g["1"]["inputs"]["width"] = data.size
        return g

    return Workflow(model="broken", name=name, summary=name, description=name,
                    input_model=WideInput, builder=build, graph=graph,
                    targets={"size": (Target("1", "width"),)}, outputs=("3",), source="tests")


def _edit(change: dict[str, Any]) -> dict[str, Any]:
    graph = copy.deepcopy(GOOD)
    for node, inputs in change.items():
        graph[node]["inputs"] = inputs
    return graph


BROKEN = {
    # in range by the spec, beyond EmptyImage's max (send size=20000)
    "range": _workflow("range", GOOD),
    # ImageInvert lost its required `image` link
    "missing": _workflow("missing", _edit({"2": {}})),
    # SaveImage fed a LATENT where it takes IMAGE
    "mismatch": _workflow("mismatch", {
        **_edit({}), "4": {"class_type": "EmptyLatentImage",
                           "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}}}),
    # a combo value ComfyUI does not list (not a model file, not a public field)
    "combo": _workflow("combo", {
        **_edit({}), "2": {"class_type": "ImageScale", "inputs": {
            "image": ["1", 0], "upscale_method": "sideways", "width": 8, "height": 8,
            "crop": "disabled"}}}),
}


def registry() -> dict[str, Workflow]:
    return {wf.path: wf for wf in BROKEN.values()}

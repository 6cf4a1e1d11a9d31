"""Hand-built model-free workflows, shaped like generated ones, for the server tests."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from comfygen.runtime import ChoiceSource, MediaKind, Target, Workflow, WorkflowInput
from comfygen.runtime.input import RANDOM_KEY


class InvertInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    color: Annotated[int, Field(ge=0, le=0xFFFFFF, description="Fill colour, 0xRRGGBB",
                                examples=[0x102030])] = 0
    size: Annotated[int, Field(ge=1, le=512, description="Side in pixels")] = 16
    seed: Annotated[int | None, Field(ge=0, json_schema_extra={RANDOM_KEY: True})] = None


INVERT = {
    "1": {"class_type": "EmptyImage",
          "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
}


def _build_invert(graph: dict[str, Any]):
    def build(data: InvertInput) -> dict[str, Any]:
        g = copy.deepcopy(graph)
        g["1"]["inputs"].update(color=data.color, width=data.size, height=data.size)
        return g
    return build


def invert(name: str = "invert", prefix: str = "x", extra: dict[str, Any] | None = None,
           outputs: tuple[str, ...] = ("3",)) -> Workflow:
    graph = copy.deepcopy(INVERT)
    graph["3"]["inputs"]["filename_prefix"] = prefix
    graph.update(copy.deepcopy(extra or {}))
    return Workflow(
        model="test", name=name, summary=f"Invert ({name})",
        description="EmptyImage → ImageInvert → SaveImage", input_model=InvertInput,
        builder=_build_invert(graph), graph=graph,
        targets={"color": (Target("1", "color"),), "size": (Target("1", "width"),)},
        outputs=outputs, source="tests/server/workflows.py",
    )


class ScaleInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    image: Annotated[str, Field(description="Image: base64, data URI or URL")]
    width: Annotated[int, Field(ge=1, le=1024)] = 32
    height: Annotated[int, Field(ge=1, le=1024)] = 24
    upscale_method: Annotated[str, Field(description="Resampling")] = "nearest-exact"


def _build_scale(data: ScaleInput) -> dict[str, Any]:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": data.image}},
        "2": {"class_type": "ImageScale", "inputs": {
            "image": ["1", 0], "upscale_method": data.upscale_method, "width": data.width,
            "height": data.height, "crop": "disabled"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                    "filename_prefix": "scaled"}},
    }


SCALE = Workflow(
    model="test", name="scale", summary="Scale an image", description="LoadImage → ImageScale",
    input_model=ScaleInput, builder=_build_scale, graph=_build_scale(ScaleInput(image="x.png")),
    targets={"image": (Target("1", "image"),), "upscale_method": (Target("2", "upscale_method"),)},
    outputs=("3",), source="tests", choices={"upscale_method": ChoiceSource("ImageScale",
                                                                           "upscale_method")},
    media={"image": MediaKind.IMAGE},
)


class CkptInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    checkpoint: str = "model.safetensors"


def _build_ckpt(data: CkptInput) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": data.checkpoint}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
    }


CKPT = Workflow(
    model="test", name="ckpt", summary="Load a checkpoint", description="needs a model file",
    input_model=CkptInput, builder=_build_ckpt, graph=_build_ckpt(CkptInput()),
    targets={"checkpoint": (Target("4", "ckpt_name"),)}, outputs=("5",), source="tests",
    choices={"checkpoint": ChoiceSource("CheckpointLoaderSimple", "ckpt_name")},
)


def registry() -> dict[str, Workflow]:
    """The test registry, plus the generated SD3.5 workflow."""
    from tests.repo_project import WORKFLOWS

    flows = [
        invert(),
        invert("subfolder", prefix="sub/dir/x"),
        invert("mixed", extra={
            "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
            "5": {"class_type": "PreviewAny", "inputs": {"source": "hello text"}},
        }, outputs=("3", "4", "5")),
        SCALE, CKPT,
    ]
    return {**{wf.path: wf for wf in flows}, **WORKFLOWS}

"""The body of a finished run: every output file (base64) and value, by node, with timings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class OutputFileInfo(BaseModel):
    kind: str = Field(description="The key ComfyUI listed it under: images, gifs, videos, audio...")
    media: Literal["image", "video", "audio", "file"]
    filename: str = Field(description="The delivered file name (after any conversion)")
    comfyui_filename: str
    subfolder: str
    type: Literal["output", "temp", "input"] | str
    content_type: str
    index: int = Field(description="Position of this file in `images` and `filenames`")


class NodeOutput(BaseModel):
    class_type: str | None = None
    files: list[OutputFileInfo] = []
    values: dict[str, Any] = Field(default={}, description="Non-file outputs, e.g. text")


class RunResponse(BaseModel):
    """A finished run. `images` holds every output file (base64), in `filenames` order."""

    id: str
    prompt: dict[str, Any]
    images: list[str]
    filenames: list[str]
    stats: dict[str, int | None]
    outputs: dict[str, NodeOutput]


class WorkflowResponse(RunResponse):
    input: dict[str, Any] = Field(description="The resolved input, random seeds included")

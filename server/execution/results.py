"""The body of a finished run: every output file (base64) and value, by node, with timings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OutputFileInfo(BaseModel):
    kind: str = Field(description="The key ComfyUI listed it under: images, gifs, videos, audio...")
    media: Literal["image", "video", "audio", "file"]
    filename: str = Field(description="The delivered file name (after any conversion)")
    comfyui_filename: str
    subfolder: str
    type: Literal["output", "temp", "input"] | str
    content_type: str
    index: int = Field(description="Position of this file in `images` and `filenames`")
    url: str | None = Field(default=None, description=(
        "Where it was uploaded (with an `s3`, `azure_blob_upload`, `hf_upload` or "
        "`http_upload` block); `images` then holds the same URL instead of base64"))


class NodeOutput(BaseModel):
    class_type: str | None = None
    files: list[OutputFileInfo] = []
    values: dict[str, Any] = Field(default={}, description="Non-file outputs, e.g. text")


class NodeTime(BaseModel):
    node: str = Field(description="Node id in the graph")
    class_type: str | None = None
    ms: int = Field(description="Milliseconds the node ran (0 when cached)")
    cached: bool = Field(description="ComfyUI served the node from its cache")


class RunStats(BaseModel):
    """Where the run's time went, in milliseconds. The first five keys are comfyui-api's."""

    model_config = ConfigDict(extra="allow")

    preprocess_time: int | None = None
    comfy_round_trip: int | None = None
    comfy_execution: int | None = Field(default=None, description=(
        "Execution time from ComfyUI's own history timestamps"))
    postprocess_time: int | None = None
    total_time: int | None = None
    queue_ms: int | None = Field(default=None, description=(
        "From receiving the request to ComfyUI starting it (input handling and queue wait)"))
    execution_ms: int | None = Field(default=None, description="ComfyUI executing the graph")
    outputs_ms: int | None = Field(default=None, description="Fetching and converting outputs")
    nodes: list[NodeTime] = Field(default=[], description=(
        "Each node ComfyUI ran or served from cache, in execution order"))


class RunResponse(BaseModel):
    """A finished run. `images` holds every output file (base64, or its URL when an upload
    block was given), in `filenames` order."""

    id: str
    prompt: dict[str, Any]
    images: list[str]
    filenames: list[str]
    stats: RunStats
    outputs: dict[str, NodeOutput]


class WorkflowResponse(RunResponse):
    input: dict[str, Any] = Field(description="The resolved input, random seeds included")

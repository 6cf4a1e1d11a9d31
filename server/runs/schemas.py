"""The request envelope (comfyui-api compatible) and the response bodies."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from comfygen.runtime import Workflow


class ConvertOptions(BaseModel):
    """Encoder options; the names follow comfyui-api (sharp) where they exist."""

    model_config = ConfigDict(extra="forbid")

    quality: int | None = Field(default=None, ge=1, le=100, description="1-100 (default 90)")
    progressive: bool | None = Field(default=None, description="JPEG: progressive scan")
    optimize: bool | None = Field(default=None, description="JPEG: optimise Huffman tables")
    chromaSubsampling: Literal["4:4:4", "4:2:2", "4:2:0"] | None = Field(  # noqa: N815
        default=None, description="JPEG chroma subsampling")
    lossless: bool | None = Field(default=None, description="WebP: lossless")
    effort: int | None = Field(default=None, ge=0, le=6, description="WebP: 0 (fast) - 6 (small)")


class ConvertOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["jpeg", "webp"]
    options: ConvertOptions = ConvertOptions()


class Envelope(BaseModel):
    """Fields every endpoint takes besides its input."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200,
                    description="Request id; names the output files (default: a new UUID)")
    webhook: str | None = Field(default=None, description=(
        "Legacy comfyui-api webhook: answer 202 now, then POST each output "
        "(`output.complete`) or `prompt.failed` to this URL, unsigned"))
    webhook_v2: str | None = Field(default=None, description=(
        "Answer 202 now, then POST `prompt.complete` or `prompt.failed` to this URL, "
        "signed per Standard Webhooks"))
    convert_output: ConvertOutput | None = None
    credentials: dict[str, dict[str, SecretStr]] | None = Field(default=None, description=(
        "Headers to send when fetching media URLs that match a pattern, e.g. "
        "`{\"https://bucket.example/*\": {\"Authorization\": \"Bearer ...\"}}`; "
        "never echoed, stored or logged"))


class PromptRequest(Envelope):
    """`POST /prompt`: a raw API-format graph."""

    prompt: dict[str, dict[str, Any]] = Field(description="API-format ComfyUI graph")


def workflow_request_model(workflow: Workflow) -> type[Envelope]:
    """The envelope with this workflow's input model as `input`."""
    name = "".join(p.capitalize() for p in workflow.path.replace(".", "_").replace("-", "_")
                   .replace("/", "_").split("_") if p)
    return create_model(f"{name}Request", __base__=Envelope, input=(workflow.input_model, ...))


def example_input(workflow: Workflow) -> dict[str, Any]:
    """An input that validates: each field's first example, else its default (required ones)."""
    example: dict[str, Any] = {}
    for fname, info in workflow.input_model.model_fields.items():
        if info.examples:
            example[fname] = info.examples[0]
        elif info.is_required():
            example[fname] = info.default
    return example


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


class Accepted(BaseModel):
    """202: comfyui-api's keys (`id`, `status`, `prompt`) plus the job to follow."""

    id: str = Field(description="The request id")
    status: Literal["ok"] = "ok"
    prompt: dict[str, Any]
    input: dict[str, Any] | None = None
    job_id: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    status_url: str = Field(description="GET it for state, progress, result or error")
    events_url: str = Field(description="Server-sent events of the job")


class ErrorBody(BaseModel):
    """Every error answer: a readable `error`, a machine `type`, and details by type."""

    model_config = ConfigDict(extra="allow")

    error: str
    type: str
    id: str | None = None

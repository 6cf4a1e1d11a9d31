"""The request envelope (comfyui-api compatible) and the response bodies."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from comfygen.runtime import Workflow
from server.execution.outputs import ConvertOutput
from server.security.auth import CredentialEntry


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
    credentials: dict[str, dict[str, SecretStr]] | list[CredentialEntry] | None = Field(
        default=None, description=(
            "Credentials for media and model URLs that match a pattern: comfyui-api's list "
            "`[{\"url_pattern\": \"https://bucket.example/**\", \"auth\": {\"type\": "
            "\"bearer\", \"token\": \"...\"}}]` (types bearer, basic, header), or headers "
            "per pattern `{\"https://bucket.example/*\": {\"Authorization\": \"Bearer ...\"}}`; "
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



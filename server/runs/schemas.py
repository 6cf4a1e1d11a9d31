"""The request envelope (comfyui-api compatible) and the response bodies."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    create_model,
    model_validator,
)

from comfygen.runtime import Workflow
from comfygen.storage import AzureBlobUpload, HfUpload, HttpUpload, S3Upload, Target
from server.execution.outputs import ConvertOutput


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
    s3: S3Upload | None = Field(default=None, description=(
        "Upload the outputs to S3: `images` then holds `s3://` URLs instead of base64"))
    azure_blob_upload: AzureBlobUpload | None = Field(
        default=None, validation_alias=AliasChoices("azure_blob_upload", "azure_blob"),
        description="Upload the outputs to Azure Blob Storage (`azure_blob` is accepted too)")
    hf_upload: HfUpload | None = Field(default=None, description=(
        "Commit the outputs to a Hugging Face repo"))
    http_upload: HttpUpload | None = Field(default=None, description=(
        "PUT each output to `<url_prefix>/<filename>` (headers from `credentials`)"))

    @model_validator(mode="after")
    def _one_upload(self) -> Envelope:
        given = [n for n in UPLOAD_BLOCKS if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one upload block, not {' and '.join(given)}")
        return self

    @property
    def upload(self) -> Target | None:
        """The one upload block given, if any."""
        return next((b for n in UPLOAD_BLOCKS if (b := getattr(self, n)) is not None), None)

    @property
    def upload_block(self) -> str:
        """The name of the upload block given (`s3`, ...), for error locations."""
        return next((n for n in UPLOAD_BLOCKS if getattr(self, n) is not None), "")


UPLOAD_BLOCKS = ("s3", "azure_blob_upload", "hf_upload", "http_upload")


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



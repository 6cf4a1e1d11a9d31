"""The request envelope (comfyui-api compatible) and the response bodies."""

from __future__ import annotations

import re
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


def operation_name(workflow: Workflow) -> str:
    """The stable, readable operation id of a workflow's endpoint: `sd3.5-medium/txt2img` is
    `sd35_medium_txt2img` (client generators name their functions after it)."""
    words = re.split(r"[^0-9a-z]+", workflow.path.lower().replace(".", ""))
    return "_".join(w for w in words if w)


def schema_name(workflow: Workflow) -> str:
    """`Sd35MediumTxt2img`: the prefix of the workflow's schema names."""
    return "".join(w.capitalize() for w in operation_name(workflow).split("_"))


def workflow_request_model(workflow: Workflow) -> type[Envelope]:
    """The envelope with this workflow's input model as `input`, named after the workflow
    (`Sd35MediumTxt2imgRequest` with `Sd35MediumTxt2imgInput`): every generated module calls
    its model `Input`, and clients need names that stay put."""
    name = schema_name(workflow)
    inputs = create_model(f"{name}Input", __base__=workflow.input_model,
                          __module__=workflow.input_model.__module__)
    inputs.__doc__ = workflow.input_model.__doc__ or f"Input of `{workflow.path}`"
    return create_model(f"{name}Request", __base__=Envelope, input=(inputs, ...))


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




class DryRunResponse(BaseModel):
    """200 of `POST /workflow/<model>/<name>/validate`: the request would run; nothing was queued."""

    id: str = Field(description="The request id")
    valid: Literal[True] = True
    input: dict[str, Any] = Field(description=(
        "The resolved input: defaults filled in, random seeds drawn (send it back to run exactly "
        "this), media fields naming the file each would be uploaded as"))
    prompt: dict[str, Any] = Field(description="The API-format graph that would be sent to ComfyUI")

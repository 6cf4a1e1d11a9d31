"""The upload blocks of a request, field for field as comfyui-api 1.18 takes them.

`s3 {bucket, prefix}`, `azure_blob_upload {container, blob_prefix}` (also accepted as
`azure_blob`), `hf_upload {repo, repo_type, revision, directory}`, `http_upload {url_prefix}`;
each may say `async: true` (answer 202 at once) and, except `http_upload`, carry its own
`credentials` (otherwise the provider's usual environment variables are used). Credentials are
`SecretStr`: they never print, and `public()` drops them before anything is stored.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    async_: bool = Field(default=False, alias="async", description=(
        "Answer 202 at once and upload in the background (as a webhook or "
        "`Prefer: respond-async` does)"))


class S3Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_key_id: SecretStr
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    region: str | None = Field(default=None, max_length=50)


class S3Upload(_Block):
    """Upload outputs to `s3://<bucket>/<prefix><filename>`."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    prefix: str = Field(default="", max_length=900, description=(
        "Key prefix, joined as is (end it with `/` for a folder)"))
    credentials: S3Credentials | None = Field(default=None, description=(
        "Instead of the server's AWS_* environment; never echoed, stored or logged"))

    def key(self, filename: str) -> str:
        return f"{self.prefix}{filename}"


class AzureCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sas_token: SecretStr | None = Field(default=None, description="A SAS token for the container")
    account_key: SecretStr | None = None


class AzureBlobUpload(_Block):
    """Upload outputs to `<account URL>/<container>/<blob_prefix><filename>`."""

    container: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
    blob_prefix: str = Field(default="", max_length=900, description=(
        "Path in the container, joined as is (end it with `/` for a folder)"))
    credentials: AzureCredentials | None = Field(default=None, description=(
        "Instead of AZURE_STORAGE_*; the account always comes from the server's environment"))

    def blob(self, filename: str) -> str:
        return f"{self.blob_prefix.lstrip('/')}{filename}"


class HfCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr


class HfUpload(_Block):
    """Commit outputs to a Hugging Face repo under `directory`."""

    repo: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", max_length=200,
                      description="user/repo")
    repo_type: Literal["model", "dataset"] = "model"
    revision: str = Field(default="main", min_length=1, max_length=200,
                          pattern=r"^[\w][\w./-]*$", description="A branch, tag or commit")
    directory: str = Field(default="/", max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")
    credentials: HfCredentials | None = Field(default=None, description="Instead of HF_TOKEN")

    def path_in_repo(self, filename: str) -> str:
        parts = [p for p in self.directory.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ValueError("directory may not contain '..'")
        return "/".join([*parts, filename])

    def url(self, endpoint: str, filename: str) -> str:
        kind = "datasets/" if self.repo_type == "dataset" else ""
        return (f"{endpoint.rstrip('/')}/{kind}{self.repo}/resolve/{quote(self.revision, safe='')}"
                f"/{quote(self.path_in_repo(filename))}")


class HttpUpload(_Block):
    """PUT each output to `<url_prefix>/<filename>` (headers from the request's `credentials`)."""

    url_prefix: str = Field(min_length=8, max_length=2000, pattern=r"^[hH][tT][tT][pP][sS]?://")

    def url(self, filename: str) -> str:
        return f"{self.url_prefix.rstrip('/')}/{quote(filename)}"


Target = S3Upload | AzureBlobUpload | HfUpload | HttpUpload

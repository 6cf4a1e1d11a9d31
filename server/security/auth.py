"""comfyui-api's authentication shapes (1.18, `src/types.ts`): the `auth` of `POST /download`
and the list form of per-request `credentials` (`[{url_pattern, auth}]`), turned into the
headers `UrlCredentials` sends. Secrets are `SecretStr`: never echoed, logged or stored."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from server.security.policy import UrlCredentials


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BearerAuth(_Auth):
    type: Literal["bearer"]
    token: SecretStr = Field(description="Sent as `Authorization: Bearer <token>`")

    def headers(self) -> dict[str, SecretStr]:
        return {"Authorization": SecretStr(f"Bearer {self.token.get_secret_value()}")}


class BasicAuth(_Auth):
    type: Literal["basic"]
    username: str
    password: SecretStr

    def headers(self) -> dict[str, SecretStr]:
        raw = f"{self.username}:{self.password.get_secret_value()}".encode()
        return {"Authorization": SecretStr(f"Basic {base64.b64encode(raw).decode()}")}


class HeaderAuth(_Auth):
    type: Literal["header"]
    header_name: str = Field(min_length=1, max_length=200, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    header_value: SecretStr

    def headers(self) -> dict[str, SecretStr]:
        return {self.header_name: self.header_value}


Auth = Annotated[BearerAuth | BasicAuth | HeaderAuth, Field(discriminator="type")]
"""comfyui-api's `query` (a signature in the URL) and `s3` types are not taken: put a presigned
or SAS query in the URL itself."""


class CredentialEntry(BaseModel):
    """One entry of comfyui-api's `credentials` list."""

    model_config = ConfigDict(extra="forbid")

    url_pattern: str = Field(min_length=1, max_length=2000, description=(
        "`scheme://host/path` with `*` wildcards, e.g. `https://example.com/**`"))
    auth: Auth


def auth_credentials(url_pattern: str, auth: BearerAuth | BasicAuth | HeaderAuth) -> UrlCredentials:
    return UrlCredentials({url_pattern: auth.headers()})


def list_credentials(entries: list[CredentialEntry]) -> UrlCredentials:
    """The list form as pattern -> headers: every entry matching a URL adds its headers, and
    of two entries setting one header the first wins (comfyui-api uses the first match only)."""
    merged: dict[str, dict[str, SecretStr]] = {}
    for entry in reversed(entries):  # UrlCredentials: a later pattern wins, so reverse
        merged[entry.url_pattern] = {**merged.pop(entry.url_pattern, {}), **entry.auth.headers()}
    return UrlCredentials(merged)

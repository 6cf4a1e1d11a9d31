"""Settings of the URL guard, per-URL credentials, and URL redaction for messages."""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping

import httpx
from pydantic import BaseModel, ConfigDict, Field, RootModel, SecretStr, field_validator

from comfygen.storage import hf
from server.security.addresses import IPAddress, IPNetwork, in_networks


class UrlPolicy(BaseModel):
    """What a server-side fetch may reach and how much it may read."""

    model_config = ConfigDict(frozen=True)

    allow_cidrs: tuple[IPNetwork, ...] = ()
    """Networks allowed even though they are private/loopback/link-local (e.g. `10.1.0.0/16`)."""
    allow_hosts: tuple[str, ...] = ()
    """Host names allowed whatever they resolve to: exact (`minio.internal`) or `*.suffix`."""
    schemes: tuple[str, ...] = ("http", "https")
    max_redirects: int = Field(default=5, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    """Seconds for the whole fetch, redirects and body included."""
    connect_timeout: float = Field(default=10.0, gt=0)
    max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    """Largest response body read, after content decoding."""
    user_agent: str = "comfygen"
    hf_token_repos: tuple[str, ...] = ()
    """Hugging Face repos a user's URL may be read from with the server's `HF_TOKEN`, as
    globs of `owner/repo` (`datasets/owner/repo`): `myorg/*`. Any other Hub URL is read with the
    request's own credentials, or none."""
    storage_read_allow: tuple[str, ...] = ()
    """Objects a user's `s3://` or Azure blob URL may name, read with the server's own storage
    credentials, as globs of `s3://bucket/key` and `az://container/blob`
    (`s3://inputs/*`); any other such URL is refused."""

    @field_validator("allow_cidrs", mode="before")
    @classmethod
    def _parse_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return tuple(ipaddress.ip_network(str(v).strip(), strict=False) for v in value)
        return value

    @field_validator("hf_token_repos", "storage_read_allow", mode="before")
    @classmethod
    def _parse_repos(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return tuple(str(v).strip().strip("/") for v in value if str(v).strip())
        return value

    @field_validator("allow_hosts", "schemes", mode="before")
    @classmethod
    def _parse_names(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return tuple(str(v).strip().lower().rstrip(".") for v in value if str(v).strip())
        return value

    def host_allowed(self, host: str) -> bool:
        """True when `host` is allow-listed by name."""
        host = host.lower().rstrip(".")
        for pattern in self.allow_hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False

    def hf_token_allowed(self, url: str) -> bool:
        """True when `url` (`hf://` or a Hub `resolve` URL) is in a repo of `hf_token_repos`."""
        repo = hf.repo_id(url)
        return repo is not None and any(
            fnmatch.fnmatchcase(repo.lower(), pattern.lower()) for pattern in self.hf_token_repos
        )

    def storage_read_allowed(self, location: str) -> bool:
        """True when `location` (`comfygen.storage.location`) matches `storage_read_allow`."""
        return any(fnmatch.fnmatchcase(location, pattern) for pattern in self.storage_read_allow)

    def address_allowed(self, ip: IPAddress) -> bool:
        """True when `ip` is inside an allow-listed network."""
        return in_networks(ip, self.allow_cidrs)


class UrlCredentials(RootModel[dict[str, dict[str, SecretStr]]]):
    """Headers per URL pattern, e.g. `{"https://bucket.example/*": {"Authorization": "..."}}`."""

    def headers_for(self, url: httpx.URL) -> dict[str, str]:
        """Headers of every pattern that matches `url`; later patterns win on the same header."""
        found: dict[str, str] = {}
        for pattern, headers in self.root.items():
            if pattern_matches(pattern, url):
                found.update({k: v.get_secret_value() for k, v in headers.items()})
        return found

    def __repr__(self) -> str:
        return f"UrlCredentials(patterns={sorted(self.root)!r})"

    __str__ = __repr__


Credentials = UrlCredentials | Mapping[str, Mapping[str, str | SecretStr]]


def as_credentials(value: Credentials | None) -> UrlCredentials:
    """Coerce a mapping of pattern -> headers into `UrlCredentials`."""
    if value is None:
        return UrlCredentials({})
    if isinstance(value, UrlCredentials):
        return value
    return UrlCredentials.model_validate(
        {
            p: {k: v if isinstance(v, SecretStr) else SecretStr(v) for k, v in h.items()}
            for p, h in value.items()
        }
    )


def merge_credentials(*sources: Credentials | None) -> UrlCredentials:
    """Later sources override earlier ones pattern by pattern."""
    merged: dict[str, dict[str, SecretStr]] = {}
    for source in sources:
        merged.update(as_credentials(source).root)
    return UrlCredentials(merged)


def pattern_matches(pattern: str, url: httpx.URL) -> bool:
    """True when `url` matches `scheme://host[:port]/path-glob` (query ignored); `*` never
    crosses into the host."""
    scheme, sep, rest = pattern.partition("://")
    if not sep:
        return False
    authority, slash, path = rest.partition("/")
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    target_path = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")  # query ignored
    return (
        scheme.lower() == url.scheme
        and fnmatch.fnmatchcase(f"{host.lower()}{port}", authority.lower())
        and fnmatch.fnmatchcase(target_path, f"/{path}" if slash else "/*")
    )


def redact_url(url: httpx.URL | str) -> str:
    """`url` without userinfo, query or fragment: safe for messages and logs."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
        port = f":{parsed.port}" if parsed.port is not None else ""
        return f"{parsed.scheme}://{host}{port}{parsed.path}"
    except Exception:
        return "<unparseable URL>"

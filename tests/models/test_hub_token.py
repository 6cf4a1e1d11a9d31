"""Models on demand and the server's HF_TOKEN: a caller's `hf://` (or Hub `resolve`) URL gets
the token only for a repo of `hf_token_repos` or a manifest entry; otherwise the request's own
credentials, or nothing. The Hub is the local file server (`HF_ENDPOINT`), which records the
headers of every request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from comfygen.models.cache import ModelCache
from comfygen.models.manifest import ModelEntry
from server.models.on_demand import ModelsOnDemand
from server.security import UrlCredentials, UrlGuard, UrlPolicy
from tests.models.file_server import FileServer, Served

SERVER_TOKEN = "hf_servertoken_0123456789abcdef"


@pytest.fixture
def hub(files: FileServer, monkeypatch: pytest.MonkeyPatch) -> FileServer:
    monkeypatch.setenv("HF_ENDPOINT", files.url(""))
    monkeypatch.setenv("HF_TOKEN", SERVER_TOKEN)
    for repo in ("org/private", "team/models"):
        files.files[f"/{repo}/resolve/main/m.safetensors"] = Served(os.urandom(500))
    return files


def on_demand(tmp_path: Path, repos: str = "") -> ModelsOnDemand:
    guard = UrlGuard(UrlPolicy(allow_cidrs=("127.0.0.0/8",), hf_token_repos=repos))
    return ModelsOnDemand(tmp_path / "models", lambda: ModelCache(tmp_path / "cache"), guard)


def authorization(hub: FileServer) -> list[str | None]:
    return [h.get("Authorization") for h in hub.headers]


@pytest.mark.parametrize("url", ["hf://org/private/m.safetensors",
                                 "{endpoint}/org/private/resolve/main/m.safetensors"])
async def test_a_callers_hub_url_never_gets_the_server_token(
        tmp_path: Path, hub: FileServer, url: str) -> None:
    url = url.format(endpoint=hub.url(""))
    await on_demand(tmp_path, "team/*").ensure("loras", url, "m.safetensors")
    assert authorization(hub) == [None]


async def test_listed_repos_get_the_server_token(tmp_path: Path, hub: FileServer) -> None:
    models = on_demand(tmp_path, "team/*, other/x")
    await models.ensure("loras", "hf://team/models/m.safetensors", "m.safetensors")
    assert authorization(hub) == [f"Bearer {SERVER_TOKEN}"]


async def test_the_requests_own_token_is_sent(tmp_path: Path, hub: FileServer) -> None:
    own = UrlCredentials.model_validate(
        {hub.url("/org/private/*"): {"Authorization": "Bearer hf_callers_own"}})
    models = on_demand(tmp_path, "org/*")  # even where the server's token would be allowed
    await models.ensure("loras", "hf://org/private/m.safetensors", "m.safetensors", own)
    assert authorization(hub) == ["Bearer hf_callers_own"]


async def test_manifest_entries_keep_the_server_token(tmp_path: Path, hub: FileServer) -> None:
    models = on_demand(tmp_path)
    url = "hf://org/private/m.safetensors"
    models.known = {url: ModelEntry(folder="loras", file="m.safetensors", url=url)}
    await models.ensure("loras", url, "m.safetensors")
    assert authorization(hub) == [f"Bearer {SERVER_TOKEN}"]


def test_repo_patterns() -> None:
    policy = UrlPolicy(hf_token_repos="team/*,datasets/team/faces")
    assert policy.hf_token_allowed("hf://team/models@v2/a/b.safetensors")
    assert policy.hf_token_allowed("hf://datasets/team/faces/x.png")
    assert policy.hf_token_allowed("https://huggingface.co/team/m/resolve/main/x")
    assert not policy.hf_token_allowed("hf://datasets/team/other/x.png")
    assert not policy.hf_token_allowed("hf://teammate/models/x")
    assert not policy.hf_token_allowed("https://evil.test/team/m/resolve/main/x")
    assert not UrlPolicy().hf_token_allowed("hf://team/models/x")
    # dot segments would leave the listed repo once the URL is normalised
    assert not policy.hf_token_allowed("hf://team/models/../../../../org/private/resolve/main/x")
    assert not policy.hf_token_allowed(
        "https://huggingface.co/team/m/resolve/main/../../../../org/p/resolve/main/x")
    assert not policy.hf_token_allowed(
        "https://huggingface.co/team/m/resolve/main/%2e%2e/%2E%2E/../../org/p/resolve/main/x")

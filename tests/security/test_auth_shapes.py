"""comfyui-api's `auth` and list-form `credentials` as the headers comfygen sends (pure logic;
the live paths are in tests/comfyui_api_compat/test_models_on_demand.py)."""

from __future__ import annotations

import base64

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from server.models.on_demand import ModelRequestError, file_name
from server.security.auth import CredentialEntry, list_credentials

ENTRIES = TypeAdapter(list[CredentialEntry])


def test_list_form_as_headers_first_entry_wins_per_header() -> None:
    creds = list_credentials(ENTRIES.validate_python([
        {"url_pattern": "https://h.example/m/**", "auth": {"type": "bearer", "token": "one"}},
        {"url_pattern": "https://h.example/**", "auth": {"type": "bearer", "token": "two"}},
        {"url_pattern": "https://h.example/**",
         "auth": {"type": "header", "header_name": "X-Key", "header_value": "k"}},
        {"url_pattern": "https://h.example/m/**",
         "auth": {"type": "basic", "username": "u", "password": "p"}},
    ]))
    assert creds.headers_for(httpx.URL("https://h.example/m/a.safetensors")) == {
        "Authorization": "Bearer one", "X-Key": "k"}
    assert creds.headers_for(httpx.URL("https://h.example/other")) == {
        "Authorization": "Bearer two", "X-Key": "k"}
    assert creds.headers_for(httpx.URL("https://elsewhere.example/m/a")) == {}
    assert "one" not in repr(creds) and "Bearer" not in str(creds.root)


def test_basic_auth_header() -> None:
    [entry] = ENTRIES.validate_python([{"url_pattern": "https://h/*", "auth": {
        "type": "basic", "username": "u", "password": "p:w"}}])
    value = entry.auth.headers()["Authorization"].get_secret_value()
    assert value == "Basic " + base64.b64encode(b"u:p:w").decode()


@pytest.mark.parametrize("auth", [
    {"type": "query", "query_param": "sig", "query_value": "x"},
    {"type": "s3", "access_key_id": "a", "secret_access_key": "b"},
    {"type": "bearer"},
    {"type": "header", "header_name": "Bad Header", "header_value": "v"},
])
def test_unsupported_or_incomplete_auth_is_refused(auth: dict) -> None:
    with pytest.raises(ValidationError):
        ENTRIES.validate_python([{"url_pattern": "https://h/*", "auth": auth}])


@pytest.mark.parametrize(("url", "given", "expected"), [
    ("https://h/models/flux%20dev.safetensors?sig=1", None, "flux dev.safetensors"),
    ("https://h/a/b.safetensors", "mine.safetensors", "mine.safetensors"),
])
def test_file_names(url: str, given: str | None, expected: str) -> None:
    assert file_name(url, given) == expected


@pytest.mark.parametrize(("url", "given"), [
    ("https://h/a/..%2F..%2Fx.safetensors", None),
    ("https://h/a/%2Fetc%2Fpasswd", None),
    ("https://h/", None),
    ("https://h/a/x", "../x"),
    ("https://h/a/x", "/abs/x"),
    ("https://h/a/x", "sub\\x"),
    ("https://h/a/x", ".."),
    ("https://h/a/x", ".hidden"),
    ("https://h/a/x", "nul\x00x"),
    ("https://h/a/x", " padded"),
])
def test_unsafe_file_names_are_refused(url: str, given: str | None) -> None:
    with pytest.raises(ModelRequestError) as refused:
        file_name(url, given)
    assert refused.value.reason == "invalid_filename"

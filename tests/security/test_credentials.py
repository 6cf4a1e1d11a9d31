"""Per-URL credentials: sent only where the pattern matches, never echoed or logged."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from server.security import (
    FetchStatusError,
    StaticResolver,
    UrlCredentials,
    UrlGuard,
    UrlPolicy,
)
from server.security.policy import pattern_matches

from .loopback import LoopbackServer, Reply, Seen

TOKEN = "Bearer tok-5f2a9c"
POLICY = UrlPolicy(allow_hosts=("bucket.test", "elsewhere.test"))
RESOLVER = {"bucket.test": "127.0.0.1", "elsewhere.test": "127.0.0.1"}


def make_guard(**kwargs: object) -> UrlGuard:
    return UrlGuard(POLICY, resolver=StaticResolver(RESOLVER), **kwargs)  # type: ignore[arg-type]


def auth_echo(seen: Seen) -> Reply:
    return Reply(body=seen.headers.get("authorization", "-").encode())


async def test_header_sent_to_matching_url_only(server: LoopbackServer) -> None:
    server.route("/obj", auth_echo)
    creds = {f"http://bucket.test:{server.port}/*": {"Authorization": TOKEN}}
    guard = make_guard()
    matched = await guard.fetch(server.url("/obj", host="bucket.test"), credentials=creds)
    other = await guard.fetch(server.url("/obj", host="elsewhere.test"), credentials=creds)
    assert (matched.content, other.content) == (TOKEN.encode(), b"-")


async def test_credentials_do_not_follow_a_redirect_to_another_host(
    server: LoopbackServer,
) -> None:
    server.route("/obj", Reply(302, headers={"Location": server.url("/x", "elsewhere.test")}))
    server.route("/x", auth_echo)
    creds = {f"http://bucket.test:{server.port}/*": {"Authorization": TOKEN}}
    result = await make_guard().fetch(server.url("/obj", host="bucket.test"), credentials=creds)
    assert result.content == b"-"
    assert server.requests[0].headers["authorization"] == TOKEN


async def test_caller_authorization_header_dropped_on_cross_origin_redirect(
    server: LoopbackServer,
) -> None:
    server.route("/obj", Reply(302, headers={"Location": server.url("/x", "elsewhere.test")}))
    server.route("/x", auth_echo)
    url = server.url("/obj", host="bucket.test")
    result = await make_guard().fetch(url, headers={"Authorization": TOKEN})
    assert result.content == b"-"


async def test_server_level_credentials(server: LoopbackServer) -> None:
    server.route("/obj", auth_echo)
    guard = make_guard(credentials={"http://bucket.test:*/obj": {"Authorization": TOKEN}})
    assert (await guard.fetch(server.url("/obj", host="bucket.test"))).content == TOKEN.encode()
    assert "tok-5f2a9c" not in repr(guard)


async def test_secret_never_in_errors_reprs_or_logs(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route("/obj", Reply(403, body=b"denied"))
    creds = UrlCredentials.model_validate(
        {f"http://bucket.test:{server.port}/*": {"Authorization": TOKEN}}
    )
    with pytest.raises(FetchStatusError) as caught:
        await make_guard().fetch(server.url("/obj", host="bucket.test"), credentials=creds)
    texts = [
        str(caught.value),
        repr(caught.value),
        repr(creds),
        str(creds),
        creds.model_dump_json(),
        caplog.text,
    ]
    for text in texts:
        assert "tok-5f2a9c" not in text
    assert server.requests[0].headers["authorization"] == TOKEN


def test_secret_values_are_secret_str() -> None:
    creds = UrlCredentials.model_validate({"https://b.test/*": {"Authorization": "x"}})
    assert isinstance(creds.root["https://b.test/*"]["Authorization"], SecretStr)


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("https://bucket.example/*", "https://bucket.example/a/b.png", True),
        ("https://bucket.example/*", "https://BUCKET.example/a?sig=1", True),
        ("https://bucket.example/*", "http://bucket.example/a", False),
        ("https://bucket.example/*", "https://bucket.example.evil.test/a", False),
        ("https://bucket.example/*", "https://bucket.example@evil.test/a", False),
        ("https://bucket.example/*", "https://bucket.example:8443/a", False),
        ("https://*.example/*", "https://evil.test/.example/a", False),
        ("https://*.example/*", "https://cdn.example/a", True),
        ("https://bucket.example/private/*", "https://bucket.example/public/a", False),
        ("https://bucket.example", "https://bucket.example/any/path", True),
    ],
)
def test_pattern_matching(pattern: str, url: str, matches: bool) -> None:
    assert pattern_matches(pattern, httpx.URL(url)) is matches

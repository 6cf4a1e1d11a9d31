"""The URL guard against real loopback servers: refusals, pinning, redirects, limits."""

from __future__ import annotations

import logging
import time

import pytest

from server.security import (
    FetchConnectionError,
    FetchStatusError,
    FetchTimeout,
    FetchTooLarge,
    StaticResolver,
    TooManyRedirects,
    UrlGuard,
    UrlPolicy,
    UrlRefused,
)

from .loopback import LoopbackServer, Reply, endless

LOOPBACK = UrlPolicy(allow_cidrs=("127.0.0.0/8",))


def guard(policy: UrlPolicy = LOOPBACK, **table: str | list[str]) -> UrlGuard:
    names = {k.replace("_", "."): v for k, v in table.items()}
    return UrlGuard(policy, resolver=StaticResolver(names))


async def test_fetch_allow_listed_loopback(server: LoopbackServer) -> None:
    server.route("/cat.png", Reply(body=b"\x89PNG data", headers={"Content-Type": "image/png"}))
    result = await guard().fetch(server.url("/cat.png"))
    assert (result.status, result.content, result.content_type) == (
        200,
        b"\x89PNG data",
        "image/png",
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8188/prompt",
        "http://10.0.0.8/",
        "http://172.20.1.1/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://localhost/",
        "http://metadata.test/",
        "http://mixed.test/",
    ],
)
async def test_refused_before_any_connection(url: str, no_connections: list[str]) -> None:
    g = guard(
        UrlPolicy(),
        localhost=["127.0.0.1", "::1"],
        metadata_test="169.254.169.254",
        mixed_test=["93.184.215.14", "10.0.0.1"],
    )
    with pytest.raises(UrlRefused) as caught:
        await g.fetch(url)
    assert "not allowed" in caught.value.message
    assert no_connections == []


async def test_refused_loopback_server_never_sees_the_request(server: LoopbackServer) -> None:
    server.route("/admin", Reply(body=b"secret"))
    with pytest.raises(UrlRefused):
        await UrlGuard(UrlPolicy()).fetch(server.url("/admin"))
    assert server.requests == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://a/", "nope"]
)
async def test_only_http_and_https(url: str, no_connections: list[str]) -> None:
    with pytest.raises(UrlRefused):
        await guard().fetch(url)


async def test_unresolvable_host_is_a_connection_error(no_connections: list[str]) -> None:
    with pytest.raises(FetchConnectionError, match="could not resolve"):
        await guard().fetch("http://nowhere.test/x")


async def test_connects_to_checked_address_and_keeps_host(server: LoopbackServer) -> None:
    """DNS rebinding: the second answer (private) is never used; Host stays the name."""

    class Rebinding(StaticResolver):
        async def resolve(self, host: str, port: int) -> list:  # type: ignore[override]
            answers = await super().resolve(host, port)
            self.table[host] = [answers[0].__class__("10.0.0.1")]
            return answers

    server.route("/host", lambda seen: Reply(body=seen.headers["host"].encode()))
    resolver = Rebinding({"images.test": "127.0.0.1"})
    g = UrlGuard(LOOPBACK, resolver=resolver)
    result = await g.fetch(server.url("/host", host="images.test"))
    assert result.content == f"images.test:{server.port}".encode()
    assert resolver.calls == ["images.test"]
    with pytest.raises(UrlRefused):
        await g.fetch(server.url("/host", host="images.test"))


async def test_allow_listed_host_name(server: LoopbackServer) -> None:
    server.route("/a", Reply(body=b"ok"))
    g = guard(UrlPolicy(allow_hosts=("*.internal.test",)), cdn_internal_test="127.0.0.1")
    assert (await g.fetch(server.url("/a", host="cdn.internal.test"))).content == b"ok"
    with pytest.raises(UrlRefused):
        await g.fetch(server.url("/a"))


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://10.0.0.5/",
        "http://internal.test/",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://127.0.0.1:{port}/secret",
    ],
)
async def test_redirect_targets_are_checked(server: LoopbackServer, location: str) -> None:
    """images.test is allow-listed by name; where it redirects to is checked again."""
    server.route("/go", Reply(302, headers={"Location": location.format(port=server.port)}))
    server.route("/secret", Reply(body=b"secret"))
    g = guard(
        UrlPolicy(allow_hosts=("images.test",)), images_test="127.0.0.1", internal_test="10.9.9.9"
    )
    with pytest.raises(UrlRefused):
        await g.fetch(server.url("/go", host="images.test"))
    assert [seen.path for seen in server.requests] == ["/go"]


async def test_redirects_are_followed_and_counted(server: LoopbackServer) -> None:
    server.route("/one", Reply(301, headers={"Location": "/two"}))
    server.route("/two", Reply(307, headers={"Location": server.url("/three")}))
    server.route("/three", Reply(body=b"end"))
    result = await guard().fetch(server.url("/one"))
    assert (result.content, result.redirects, result.url) == (b"end", 2, server.url("/three"))


async def test_too_many_redirects(server: LoopbackServer) -> None:
    server.route("/loop", Reply(302, headers={"Location": "/loop"}))
    policy = UrlPolicy(allow_cidrs=("127.0.0.0/8",), max_redirects=3)
    with pytest.raises(TooManyRedirects):
        await guard(policy).fetch(server.url("/loop"))
    assert len(server.requests) == 4


async def test_streamed_body_stops_at_the_cap(server: LoopbackServer) -> None:
    server.route("/endless", lambda _s: Reply(body=endless()))
    started = time.monotonic()
    with pytest.raises(FetchTooLarge, match="larger than 1000000 bytes"):
        await guard().fetch(server.url("/endless"), max_bytes=1_000_000)
    assert time.monotonic() - started < 5


async def test_declared_length_over_the_cap_is_refused_early(server: LoopbackServer) -> None:
    server.route("/big", Reply(body=b"x" * 5000))
    policy = UrlPolicy(allow_cidrs=("127.0.0.0/8",), max_bytes=4096)
    with pytest.raises(FetchTooLarge):
        await guard(policy).fetch(server.url("/big"))


async def test_truncate_reads_only_the_cap(server: LoopbackServer) -> None:
    server.route("/endless", lambda _s: Reply(body=endless()))
    result = await guard().request("GET", server.url("/endless"), max_bytes=1000, truncate=True)
    assert (len(result.content), result.truncated) == (1000, True)


async def test_time_limit(server: LoopbackServer) -> None:
    server.route("/slow", Reply(body=b"late", delay=3))
    policy = UrlPolicy(allow_cidrs=("127.0.0.0/8",), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        await guard(policy).fetch(server.url("/slow"))
    assert time.monotonic() - started < 2


async def test_slow_drip_body_hits_the_total_time_limit(server: LoopbackServer) -> None:
    server.route("/drip", lambda _s: Reply(body=endless(b"x", delay=0.05)))
    policy = UrlPolicy(allow_cidrs=("127.0.0.0/8",), timeout=0.7)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        await guard(policy).fetch(server.url("/drip"))
    assert time.monotonic() - started < 2.5


async def test_status_error_hides_query_and_userinfo(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route("/missing", Reply(404))
    url = server.url("/missing").replace("http://", "http://user:hunter2@") + "?X-Sig=s3cr3t"
    with pytest.raises(FetchStatusError) as caught:
        await guard().fetch(url)
    error = caught.value
    assert error.status == 404
    assert error.url == server.url("/missing")
    for text in (str(error), repr(error), error.message, str(error.url), caplog.text):
        assert "hunter2" not in text and "s3cr3t" not in text


async def test_post_without_following(server: LoopbackServer) -> None:
    server.route("/hook", lambda seen: Reply(303, body=seen.body, headers={"Location": "/x"}))
    result = await guard().request(
        "POST", server.url("/hook"), content=b"{}", follow_redirects=False
    )
    assert (result.status, result.content) == (303, b"{}")


async def test_connection_refused_is_reported() -> None:
    from .loopback import free_port

    with pytest.raises(FetchConnectionError, match="could not connect"):
        await guard().fetch(f"http://127.0.0.1:{free_port()}/")

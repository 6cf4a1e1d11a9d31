"""DNS rebinding against a real DNS server on loopback (dnslib): the name answers an allowed
address the first time and 127.0.0.1 after that. The connection must go to the address the
guard checked (no second resolution), and every redirect is resolved and checked again.

127.0.0.2 plays the public server (allow-listed as 127.0.0.2/32) and 127.0.0.1 the internal
service a rebinding would reach: both listen on the same port, so only the address differs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from comfygen.models.cache import ModelCache
from comfygen.models.sources import SourceError, open_source
from server.models.on_demand import ModelRequestError, ModelsOnDemand
from server.security import FetchConnectionError, UrlGuard, UrlPolicy, UrlRefused
from server.security.pinning import GuardedTransport

from .dns import DnsResolver, RebindingDns
from .loopback import LoopbackServer, Reply

PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.1"
POLICY = UrlPolicy(allow_cidrs=(f"{PUBLIC}/32",))
MODEL = b"public model bytes " * 100
SECRET = b"internal secret"


@pytest.fixture
def servers() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """(public on 127.0.0.2, internal on 127.0.0.1), on one port."""
    for _ in range(20):
        public = LoopbackServer(bind=PUBLIC).start()
        try:
            internal = LoopbackServer(public.port, bind=INTERNAL).start()
        except OSError:  # that port is taken on 127.0.0.1: try another
            public.stop()
            continue
        for server, body in ((public, MODEL), (internal, SECRET)):
            server.route("/m.safetensors", Reply(body=body))
        try:
            yield public, internal
        finally:
            public.stop()
            internal.stop()
        return
    pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture
def dns() -> Iterator[RebindingDns]:
    with RebindingDns({"rebind.test": [PUBLIC, INTERNAL]}) as server:
        yield server


def on_demand(tmp_path: Path, dns: RebindingDns) -> ModelsOnDemand:
    guard = UrlGuard(POLICY, resolver=DnsResolver(dns.port))
    return ModelsOnDemand(tmp_path / "models", lambda: ModelCache(tmp_path / "cache"), guard)


async def test_model_download_connects_to_the_checked_address(
        tmp_path: Path, dns: RebindingDns,
        servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    public, internal = servers
    url = f"http://rebind.test:{public.port}/m.safetensors"
    path = await on_demand(tmp_path, dns).ensure("loras", url, "m.safetensors")
    assert path.read_bytes() == MODEL
    assert dns.queries == ["rebind.test"]  # one resolution: the guard's, then pinned
    assert [s.headers["host"] for s in public.requests] == [f"rebind.test:{public.port}"]
    assert internal.requests == []


async def test_model_redirect_is_resolved_and_checked_again(
        tmp_path: Path, dns: RebindingDns,
        servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    """The second hop names the same host: its fresh answer (127.0.0.1) is refused."""
    public, internal = servers
    public.route("/go", Reply(302, headers={
        "Location": f"http://rebind.test:{public.port}/m.safetensors"}))
    with pytest.raises(ModelRequestError) as refused:
        await on_demand(tmp_path, dns).ensure(
            "loras", f"http://rebind.test:{public.port}/go", "m.safetensors")
    assert refused.value.reason == "download_failed"
    assert "loopback" in refused.value.message
    assert dns.queries == ["rebind.test", "rebind.test"]
    assert [s.path for s in public.requests] == ["/go"]
    assert internal.requests == []
    assert not (tmp_path / "models/loras/m.safetensors").exists()


async def test_media_fetch_is_pinned_and_the_next_answer_refused(
        dns: RebindingDns, servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    public, internal = servers
    guard = UrlGuard(POLICY, resolver=DnsResolver(dns.port))
    url = f"http://rebind.test:{public.port}/m.safetensors"
    assert (await guard.fetch(url)).content == MODEL
    with pytest.raises(UrlRefused, match="loopback"):
        await guard.fetch(url)
    assert dns.queries == ["rebind.test", "rebind.test"]
    assert internal.requests == []


async def test_upload_put_is_pinned(
        dns: RebindingDns, servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    """`http_upload` and webhooks send through `UrlGuard.request`: same pinning for a PUT."""
    public, internal = servers
    public.route("/out.png", Reply(201))
    internal.route("/out.png", Reply(201))
    guard = UrlGuard(POLICY, resolver=DnsResolver(dns.port))
    result = await guard.request("PUT", f"http://rebind.test:{public.port}/out.png",
                                 content=b"png", follow_redirects=False)
    assert result.status == 201
    assert [(s.method, s.body) for s in public.requests] == [("PUT", b"png")]
    assert internal.requests == []


# -- TLS to a pinned address, through the sync transport of the model downloader ------------

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_public(ca: trustme.CA) -> Iterator[LoopbackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("models.test").configure_cert(context)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)  # type: ignore[assignment]
    with LoopbackServer(ssl_context=context, bind=PUBLIC) as server:
        server.route("/m.safetensors", lambda seen: Reply(body=seen.headers["host"].encode()))
        server.sni = seen_sni  # type: ignore[attr-defined]
        yield server


def read_through_guard(url: str, ca: trustme.CA, dns: RebindingDns,
                       loop: asyncio.AbstractEventLoop) -> bytes:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    guard = UrlGuard(POLICY, resolver=DnsResolver(dns.port))

    def transport() -> GuardedTransport:
        return GuardedTransport(guard, loop, lambda exc: SourceError(exc.message),
                                verify=client)

    with open_source(url, transport=transport) as stream:
        return b"".join(stream.chunks)


async def test_tls_by_address_keeps_sni_and_verifies_the_name(
        ca: trustme.CA, tls_public: LoopbackServer) -> None:
    loop = asyncio.get_running_loop()
    with RebindingDns({"models.test": [PUBLIC], "other.test": [PUBLIC]}) as dns:
        body = await asyncio.to_thread(
            read_through_guard, f"https://models.test:{tls_public.port}/m.safetensors",
            ca, dns, loop)
        assert body == f"models.test:{tls_public.port}".encode()
        assert tls_public.sni == ["models.test"]  # type: ignore[attr-defined]
        # the same address under a name the certificate does not cover: refused by TLS
        with pytest.raises(SourceError, match="ConnectError"):
            await asyncio.to_thread(
                read_through_guard, f"https://other.test:{tls_public.port}/m.safetensors",
                ca, dns, loop)
    assert len(tls_public.requests) == 1


async def test_async_guard_tls_by_address(ca: trustme.CA, tls_public: LoopbackServer) -> None:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with RebindingDns({"models.test": [PUBLIC], "other.test": [PUBLIC]}) as dns:
        guard = UrlGuard(POLICY, resolver=DnsResolver(dns.port), verify=client)
        result = await guard.fetch(f"https://models.test:{tls_public.port}/m.safetensors")
        assert result.content == f"models.test:{tls_public.port}".encode()
        with pytest.raises(FetchConnectionError):
            await guard.fetch(f"https://other.test:{tls_public.port}/m.safetensors")
    assert tls_public.sni[:1] == ["models.test"]  # type: ignore[attr-defined]

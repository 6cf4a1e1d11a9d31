"""HTTPS through a pinned address: SNI and certificate checks use the URL's host name."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.security import FetchConnectionError, StaticResolver, UrlGuard, UrlPolicy

from .loopback import LoopbackServer, Reply


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    assert shutil.which("openssl"), "these tests need Debian's openssl CLI (they fail, never skip)"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=images.test",
            "-addext",
            "subjectAltName=DNS:images.test",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[LoopbackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)  # type: ignore[assignment]
    with LoopbackServer(ssl_context=context) as server:
        server.sni = seen_sni  # type: ignore[attr-defined]
        yield server


def client_guard(certificate: tuple[Path, Path]) -> UrlGuard:
    verify = ssl.create_default_context(cafile=str(certificate[0]))
    resolver = StaticResolver({"images.test": "127.0.0.1", "other.test": "127.0.0.1"})
    return UrlGuard(UrlPolicy(allow_cidrs=("127.0.0.0/8",)), resolver=resolver, verify=verify)


async def test_https_keeps_sni_and_verifies_the_name(
    tls_server: LoopbackServer, certificate: tuple[Path, Path]
) -> None:
    tls_server.route("/img", lambda seen: Reply(body=seen.headers["host"].encode()))
    result = await client_guard(certificate).fetch(tls_server.url("/img", host="images.test"))
    assert result.content == f"images.test:{tls_server.port}".encode()
    assert tls_server.sni == ["images.test"]  # type: ignore[attr-defined]


async def test_certificate_for_another_name_is_rejected(
    tls_server: LoopbackServer, certificate: tuple[Path, Path]
) -> None:
    with pytest.raises(FetchConnectionError):
        await client_guard(certificate).fetch(tls_server.url("/img", host="other.test"))

"""Connect to the address the guard checked, never to a second DNS answer (DNS rebinding).

`pin_request` rewrites a request to the checked IP while the Host header, TLS SNI and the
certificate check keep the URL's host name. `GuardedTransport` is an httpx transport for code
that drives its own (sync) httpx client in a worker thread, such as the model downloader: every
request it sends, redirects included, is checked by the guard on the event loop and pinned.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx

from server.security.addresses import parse_ip
from server.security.errors import FetchError

if TYPE_CHECKING:
    from server.security.urlguard import ResolvedTarget, UrlGuard


def pin_request(request: httpx.Request, target: ResolvedTarget) -> httpx.Request:
    """`request` sent to `target.ip`: Host header and TLS server name stay the URL's host."""
    headers = httpx.Headers(request.headers)
    headers["Host"] = target.host_header
    extensions = dict(request.extensions)
    if target.url.scheme == "https" and parse_ip(target.url.host) is None:
        extensions["sni_hostname"] = target.url.host
    return httpx.Request(
        request.method,
        target.url.copy_with(host=str(target.ip)),
        headers=headers,
        stream=request.stream,
        extensions=extensions,
    )


class GuardedTransport(httpx.BaseTransport):
    """A sync transport that sends each request only after `guard.check` (run on `loop`) let
    its URL through, to the checked address. A refusal raises `refused(FetchError)`. `checked`
    is a target the caller already checked: a request for its very URL goes there unresolved
    (one DNS answer per URL, not one for the 422 check and another for the connection).

    Each request gets its own connection: a pool keyed by address could otherwise hand a TLS
    session made for one host name to a request for another name on the same address."""

    def __init__(self, guard: UrlGuard, loop: asyncio.AbstractEventLoop,
                 refused: Callable[[FetchError], Exception], *, check_timeout: float = 60.0,
                 verify: ssl.SSLContext | bool | None = None,
                 checked: ResolvedTarget | None = None) -> None:
        self.guard = guard
        self.first = checked
        self.loop = loop
        self.refused = refused
        self.check_timeout = check_timeout
        self.verify = guard.ssl_context if verify is None else verify

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.first is not None and request.url == self.first.url:
            target = self.first
        else:
            future = asyncio.run_coroutine_threadsafe(self.guard.check(request.url), self.loop)
            try:
                target = future.result(self.check_timeout)
            except FetchError as exc:
                raise self.refused(exc) from None
        inner = httpx.HTTPTransport(verify=self.verify, trust_env=False, retries=0)
        try:
            response = inner.handle_request(pin_request(request, target))
        except BaseException:
            inner.close()
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_ClosingStream(response, inner),
            extensions=response.extensions,
        )


class _ClosingStream(httpx.SyncByteStream):
    """The inner response's bytes; closing it closes the one-request transport too."""

    def __init__(self, response: httpx.Response, transport: httpx.HTTPTransport) -> None:
        self.response = response
        self.transport = transport

    def __iter__(self) -> Iterator[bytes]:
        yield from self.response.stream  # type: ignore[misc]

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            self.transport.close()

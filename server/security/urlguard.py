"""SSRF-safe HTTP(S) requests: resolve, check, pin the checked address, re-check every redirect."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from server.observability import metrics
from server.security.addresses import IPAddress, parse_ip, refusal_reason
from server.security.errors import (
    FetchConnectionError,
    FetchError,
    FetchStatusError,
    FetchTimeout,
    FetchTooLarge,
    TooManyRedirects,
    UrlRefused,
)
from server.security.pinning import pin_request
from server.security.policy import (
    Credentials,
    UrlCredentials,
    UrlPolicy,
    merge_credentials,
    redact_url,
)
from server.security.resolver import Resolver, SystemResolver

log = logging.getLogger(__name__)


class _RedactUrls(logging.Filter):
    """Strip userinfo and query (tokens, presigned signatures) from URLs httpx logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


if not any(isinstance(f, _RedactUrls) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactUrls())

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True)
class ResolvedTarget:
    """A URL that passed the policy, with the address the connection is pinned to."""

    url: httpx.URL
    ip: IPAddress

    @property
    def host_header(self) -> str:
        """The Host header value: the URL's host[:port], never the pinned address."""
        return self.url.netloc.decode("ascii")


@dataclass(frozen=True)
class FetchResult:
    """A finished response; `url` is the final URL, redacted."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    redirects: int = 0
    truncated: bool = field(default=False)

    @property
    def content_type(self) -> str | None:
        """The media type the server declared, without parameters."""
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None


class UrlGuard:
    """Fetches URLs on behalf of callers without letting them reach internal addresses."""

    def __init__(
        self,
        policy: UrlPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        credentials: Credentials | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.policy = policy or UrlPolicy()
        self.resolver = resolver or SystemResolver()
        self._credentials = merge_credentials(credentials)
        self._verify: ssl.SSLContext | bool = (
            httpx.create_ssl_context() if verify is True else verify
        )

    @property
    def ssl_context(self) -> ssl.SSLContext | bool:
        """How TLS certificates are verified (the guard's own context, or False in tests)."""
        return self._verify

    def credential_headers(self, url: str | httpx.URL,
                           credentials: Credentials | None = None) -> dict[str, str]:
        """The headers the operator's and the request's credentials give `url` (request wins)."""
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        return merge_credentials(self._credentials, credentials).headers_for(parsed)

    def __repr__(self) -> str:
        patterns = len(self._credentials.root)
        return f"UrlGuard(policy={self.policy!r}, credential_patterns={patterns})"

    async def check(self, url: str | httpx.URL) -> ResolvedTarget:
        """Resolve `url` and return the address to connect to, or raise `UrlRefused`."""
        try:
            return await self._check(url)
        except UrlRefused:
            metrics.url_refused()
            raise

    async def _check(self, url: str | httpx.URL) -> ResolvedTarget:
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UrlRefused("not a valid URL; send an absolute http(s) URL") from None
        shown = redact_url(parsed)
        if parsed.scheme not in self.policy.schemes:
            allowed = " and ".join(self.policy.schemes)
            raise UrlRefused(f"only {allowed} URLs are accepted", url=shown)
        host = parsed.host
        if not host:
            raise UrlRefused("the URL has no host", url=shown)
        literal = parse_ip(host)
        if literal is not None:
            addresses = [literal]
        else:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                addresses = await self.resolver.resolve(host, port)
            except (OSError, UnicodeError):
                raise FetchConnectionError(f"could not resolve host {host!r}", url=shown) from None
            if not addresses:
                raise FetchConnectionError(f"host {host!r} has no address", url=shown)
        by_name = literal is None and self.policy.host_allowed(host)
        for ip in addresses:
            if by_name or self.policy.address_allowed(ip):
                continue
            reason = refusal_reason(ip)
            if reason is not None:
                log.warning("refused fetch of %s: %s address %s", shown, reason, ip)
                where = f"address {ip}" if literal is not None else f"host {host!r}"
                raise UrlRefused(
                    f"{where} is {reason}, which is not allowed; use a public URL "
                    "(or have the operator allow-list it)",
                    url=shown,
                )
        return ResolvedTarget(parsed, addresses[0])

    async def fetch(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """GET `url` following checked redirects; raise `FetchError` unless the answer is 2xx."""
        result = await self.request(
            "GET", url, credentials=credentials, max_bytes=max_bytes, headers=headers
        )
        if not 200 <= result.status < 300:
            raise FetchStatusError(
                f"the server answered HTTP {result.status}", url=result.url, status=result.status
            )
        return result

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        credentials: Credentials | None = None,
        follow_redirects: bool = True,
        max_bytes: int | None = None,
        truncate: bool = False,
        timeout: float | None = None,
    ) -> FetchResult:
        """Send one request through the guard, whatever the status; redirects are re-checked."""
        limit = max_bytes or self.policy.max_bytes
        creds = merge_credentials(self._credentials, credentials)
        deadline = timeout or self.policy.timeout
        try:
            async with asyncio.timeout(deadline):
                return await self._follow(
                    method,
                    url,
                    content,
                    dict(headers or {}),
                    creds,
                    follow_redirects,
                    limit,
                    truncate,
                    deadline,
                )
        except TimeoutError:
            raise FetchTimeout(
                f"the fetch took longer than {deadline:g} s", url=redact_url(url)
            ) from None

    async def _follow(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        creds: UrlCredentials,
        follow: bool,
        limit: int,
        truncate: bool,
        deadline: float,
    ) -> FetchResult:
        current: str | httpx.URL = url
        redirects = 0
        while True:
            target = await self.check(current)
            sent = dict(headers)
            sent.update(creds.headers_for(target.url))
            status, resp_headers, body, cut = await self._send(
                method, target, sent, content, limit, truncate, deadline
            )
            location = resp_headers.get("location")
            if not (follow and status in REDIRECT_STATUSES and location):
                log.info("fetched %s: HTTP %s", redact_url(target.url), status)
                return FetchResult(
                    redact_url(target.url), status, resp_headers, body, redirects, cut
                )
            redirects += 1
            if redirects > self.policy.max_redirects:
                raise TooManyRedirects(
                    f"more than {self.policy.max_redirects} redirects", url=redact_url(target.url)
                )
            try:
                following = target.url.join(location)
            except (httpx.InvalidURL, ValueError):
                raise UrlRefused("the server redirected to an invalid URL") from None
            if (following.scheme, following.host, following.port) != (
                target.url.scheme,
                target.url.host,
                target.url.port,
            ):
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in _ORIGIN_BOUND_HEADERS
                }
            if status == 303 or (status in (301, 302) and method != "HEAD"):
                method, content = ("GET" if method != "HEAD" else method), None
            current = following

    async def _send(
        self,
        method: str,
        target: ResolvedTarget,
        headers: dict[str, str],
        content: bytes | None,
        limit: int,
        truncate: bool,
        deadline: float,
    ) -> tuple[int, httpx.Headers, bytes, bool]:
        headers = {"User-Agent": self.policy.user_agent, **headers}
        timeout = httpx.Timeout(deadline, connect=min(self.policy.connect_timeout, deadline))
        shown = redact_url(target.url)
        try:
            async with httpx.AsyncClient(
                trust_env=False, verify=self._verify, timeout=timeout, follow_redirects=False
            ) as client:
                request = pin_request(
                    client.build_request(method, target.url, headers=headers, content=content),
                    target,
                )
                response = await client.send(request, stream=True)
                try:
                    body, cut = await _read_capped(response, limit, truncate, shown)
                finally:
                    await response.aclose()
                return response.status_code, response.headers, body, cut
        except FetchError:
            raise
        except httpx.TimeoutException:
            raise FetchTimeout("the remote server did not answer in time", url=shown) from None
        except (httpx.ConnectError, socket.gaierror, ConnectionError):
            message = "could not connect to the remote server"
            raise FetchConnectionError(message, url=shown) from None
        except ssl.SSLError:
            message = "TLS handshake with the remote server failed"
            raise FetchConnectionError(message, url=shown) from None
        except httpx.HTTPError as exc:
            raise FetchConnectionError(
                f"the request failed ({type(exc).__name__})", url=shown
            ) from None


async def _read_capped(
    response: httpx.Response, limit: int, truncate: bool, shown: str
) -> tuple[bytes, bool]:
    """Read at most `limit` decoded bytes; raise `FetchTooLarge` beyond it unless truncating."""
    declared = response.headers.get("content-length")
    if not truncate and declared and declared.isdigit() and int(declared) > limit:
        raise FetchTooLarge(f"the response is larger than {limit} bytes", url=shown)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                return b"".join(chunks), True
            raise FetchTooLarge(f"the response is larger than {limit} bytes", url=shown)
        chunks.append(chunk)
    return b"".join(chunks), False

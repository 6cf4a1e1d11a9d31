"""Guards for a public endpoint: SSRF-safe fetching with URL policies, and the API key, body
limit and CORS middleware."""

from server.security.addresses import parse_ip, refusal_reason
from server.security.errors import (
    FetchConnectionError,
    FetchError,
    FetchStatusError,
    FetchTimeout,
    FetchTooLarge,
    TooManyRedirects,
    UrlRefused,
)
from server.security.policy import UrlCredentials, UrlPolicy, redact_url
from server.security.resolver import Resolver, StaticResolver, SystemResolver
from server.security.urlguard import FetchResult, ResolvedTarget, UrlGuard

__all__ = [
    "FetchConnectionError",
    "FetchError",
    "FetchResult",
    "FetchStatusError",
    "FetchTimeout",
    "FetchTooLarge",
    "ResolvedTarget",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "TooManyRedirects",
    "UrlCredentials",
    "UrlGuard",
    "UrlPolicy",
    "UrlRefused",
    "parse_ip",
    "redact_url",
    "refusal_reason",
]

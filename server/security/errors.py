"""Errors of the URL guard; every message is safe to show to the caller (no secrets, no query)."""

from __future__ import annotations


class FetchError(Exception):
    """A URL could not be fetched; `message` is user-facing, `url` is redacted."""

    reason: str = "fetch_failed"

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.message = message
        self.url = url
        self.status = status
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class UrlRefused(FetchError):
    """The URL or an address it resolves to is not allowed by the policy."""

    reason = "url_refused"


class FetchTooLarge(FetchError):
    """The response body is larger than the limit."""

    reason = "too_large"


class FetchTimeout(FetchError):
    """The fetch took longer than the time limit."""

    reason = "timeout"


class TooManyRedirects(FetchError):
    """More redirects than the policy allows."""

    reason = "too_many_redirects"


class FetchStatusError(FetchError):
    """The remote server answered with a non-2xx status."""

    reason = "http_status"


class FetchConnectionError(FetchError):
    """DNS or the connection failed."""

    reason = "connection_failed"

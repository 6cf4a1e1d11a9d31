"""Deliver signed webhooks through the URL guard, retrying with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.observability import metrics
from server.security.errors import FetchError, UrlRefused
from server.security.policy import redact_url
from server.security.urlguard import UrlGuard
from server.webhooks.payload import EventType, webhook_body
from server.webhooks.signing import (
    Secret,
    WebhookSecretError,
    new_message_id,
    signature_headers,
    signer,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429})
"""4xx answers that are retried; every 5xx is retried too."""


class RetryPolicy(BaseModel):
    """How long and how often a webhook is retried."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=8, ge=1)
    initial_delay: float = Field(default=1.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay: float = Field(default=60.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""
    max_total: float = Field(default=900.0, gt=0)
    """Give up when the next attempt would start later than this many seconds after the first."""
    attempt_timeout: float = Field(default=15.0, gt=0)
    max_retry_after: float = Field(default=300.0, ge=0)
    """Largest `Retry-After` honoured."""


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one webhook message over all its attempts (no secret, redacted URL)."""

    delivered: bool
    message_id: str
    url: str
    attempts: int
    status: int | None = None
    error: str | None = None
    elapsed: float = 0.0


class WebhookDeliverer:
    """Sends Standard Webhooks messages; `deliver` never raises for delivery failures."""

    def __init__(
        self,
        guard: UrlGuard,
        retry: RetryPolicy | None = None,
        *,
        user_agent: str = "comfygen-webhooks",
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.retry = retry or RetryPolicy()
        self.user_agent = user_agent
        self._sleep = sleep
        self._rand = rand
        self._clock = clock

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), jitter included."""
        policy = self.retry
        base = min(policy.max_delay, policy.initial_delay * policy.multiplier ** (attempt - 1))
        return max(0.0, base * (1 + policy.jitter * (2 * self._rand() - 1)))

    async def send(
        self,
        url: str,
        type: EventType,
        data: dict[str, Any],
        secret: Secret | None,
        *,
        timestamp: datetime | None = None,
        flatten: bool = False,
        message_id: str | None = None,
    ) -> DeliveryResult:
        """Build the `{"type", "timestamp", "data"}` body for an event and deliver it."""
        body = webhook_body(type, data, timestamp=timestamp, flatten=flatten)
        return await self.deliver(url, body, secret, message_id=message_id)

    async def deliver(
        self,
        url: str,
        body: bytes,
        secret: Secret | None,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> DeliveryResult:
        """POST `body` signed with `secret` until a 2xx, a permanent failure or the limits."""
        message_id = message_id or new_message_id()
        shown = redact_url(url)
        started = self._clock()
        try:
            signing = None if secret is None else signer(secret)
        except WebhookSecretError as exc:
            return self._result(False, message_id, shown, 0, None, str(exc), started)
        status: int | None = None
        error: str | None = None
        attempt = 0
        while attempt < self.retry.max_attempts:
            attempt += 1
            sent = {
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
                **(headers or {}),
                **signature_headers(signing, body, message_id=message_id),
            }
            retry_after: float | None = None
            try:
                result = await self.guard.request(
                    "POST",
                    url,
                    content=body,
                    headers=sent,
                    follow_redirects=False,
                    max_bytes=65536,
                    truncate=True,
                    timeout=self.retry.attempt_timeout,
                )
            except UrlRefused as exc:
                error, status = exc.message, None
                log.warning("webhook %s to %s refused: %s", message_id, shown, exc.message)
                return self._result(False, message_id, shown, attempt - 1, status, error, started)
            except FetchError as exc:
                status, error = None, exc.message
                retryable = True
            else:
                status = result.status
                if 200 <= status < 300:
                    log.info("webhook %s to %s delivered (attempt %d)", message_id, shown, attempt)
                    return self._result(True, message_id, shown, attempt, status, None, started)
                error = f"the receiver answered HTTP {status}"
                if 300 <= status < 400:
                    error += " (webhooks do not follow redirects)"
                retryable = status >= 500 or status in RETRY_STATUSES
                retry_after = _retry_after(result.headers.get("retry-after"))
            log.info("webhook %s to %s attempt %d failed: %s", message_id, shown, attempt, error)
            if not retryable or attempt >= self.retry.max_attempts:
                break
            delay = self.backoff(attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.retry.max_retry_after))
            if self._clock() + delay - started > self.retry.max_total:
                error = f"{error}; gave up after {self._clock() - started:.1f} s"
                break
            await self._sleep(delay)
        log.warning("webhook %s to %s not delivered: %s", message_id, shown, error)
        return self._result(False, message_id, shown, attempt, status, error, started)

    def _result(
        self,
        delivered: bool,
        message_id: str,
        url: str,
        attempts: int,
        status: int | None,
        error: str | None,
        started: float,
    ) -> DeliveryResult:
        elapsed = self._clock() - started
        metrics.webhook_delivered(delivered)
        return DeliveryResult(delivered, message_id, url, attempts, status, error, elapsed)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given in seconds (HTTP dates are ignored)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None

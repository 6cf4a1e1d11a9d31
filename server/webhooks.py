"""Webhook delivery: Standard Webhooks signing, exponential backoff, SSRF-safe sending.

Minimal on purpose: `comfygen/webhooks/` (a shared library) was still empty when this was written;
swap it in there when it lands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from comfygen.security import FetchError, UrlGuard, UrlPolicy, UrlRefused, redact_url

log = logging.getLogger("comfygen.webhooks")

RETRY_STATUSES = frozenset({408, 409, 425, 429})


class DeliveryFailed(Exception):
    """Every attempt failed, or the receiver refused for good."""


@dataclass
class WebhookSender:
    """Sends JSON events to receivers, retrying with exponential backoff."""

    guard: UrlGuard
    secret: str | None
    timeout: float = 10.0
    max_attempts: int = 8
    backoff: float = 1.0
    backoff_max: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any) -> WebhookSender:
        policy = UrlPolicy(allow_cidrs=settings.webhook_allow_cidrs, timeout=settings.webhook_timeout)
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        return cls(UrlGuard(policy), secret, settings.webhook_timeout,
                   settings.webhook_max_attempts, settings.webhook_backoff,
                   settings.webhook_backoff_max)

    async def check(self, url: str) -> None:
        """Refuse a URL the guard would not reach (raises UrlRefused/FetchError)."""
        await self.guard.check(url)

    def signed_headers(self, body: bytes, msg_id: str, when: datetime) -> dict[str, str]:
        if not self.secret:
            raise DeliveryFailed("no webhook secret configured")
        signature = Webhook(self.secret).sign(msg_id, when, body.decode())
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signature}

    async def send(self, url: str, payload: dict[str, Any], *, signed: bool) -> int:
        """Deliver one event; return the attempts used or raise DeliveryFailed."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        msg_id = f"msg_{uuid.uuid4().hex}"
        last = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            headers = {"content-type": "application/json"}
            if signed:  # a fresh timestamp per attempt keeps receivers' tolerance checks happy
                headers |= self.signed_headers(body, msg_id, datetime.now(UTC))
            try:
                result = await self.guard.request(
                    "POST", url, content=body, headers=headers, follow_redirects=False,
                    timeout=self.timeout, max_bytes=65536, truncate=True)
                if 200 <= result.status < 300:
                    return attempt
                last = f"the receiver answered HTTP {result.status}"
                if 400 <= result.status < 500 and result.status not in RETRY_STATUSES:
                    raise DeliveryFailed(last)
            except UrlRefused as exc:
                raise DeliveryFailed(str(exc)) from exc
            except FetchError as exc:
                last = str(exc)
            if attempt < self.max_attempts:
                delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
                log.info("webhook to %s failed (%s); retry %d in %.1fs",
                         redact_url(url), last, attempt, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        raise DeliveryFailed(f"gave up after {self.max_attempts} attempts: {last}")


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A webhook_v2 body: {"type", "timestamp", ...}."""
    return {"type": kind, "timestamp": datetime.now(UTC).isoformat(), **fields}

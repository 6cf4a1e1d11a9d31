"""Webhook delivery for the server: `server.webhooks` wired to the settings.

`webhook_v2` events are signed Standard Webhooks messages with comfyui-api's flat body
(`{"type", "timestamp", "id", ...}`); the legacy `webhook` gets unsigned per-file events.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from server.security import UrlGuard, UrlPolicy
from server.settings import Settings
from server.webhooks import DeliveryResult, EventType, RetryPolicy, WebhookDeliverer


class WebhookSender:
    """Checks webhook URLs up front and delivers events with retries (never raises for them)."""

    def __init__(self, deliverer: WebhookDeliverer, secret: SecretStr | None) -> None:
        self.deliverer = deliverer
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSender:
        policy = UrlPolicy(allow_cidrs=settings.webhook_allow_cidrs,
                           allow_hosts=settings.webhook_allow_hosts,
                           timeout=settings.webhook_timeout)
        retry = RetryPolicy(
            max_attempts=settings.webhook_max_attempts, initial_delay=settings.webhook_backoff,
            max_delay=settings.webhook_backoff_max, attempt_timeout=settings.webhook_timeout,
        )
        return cls(WebhookDeliverer(UrlGuard(policy), retry), settings.webhook_secret)

    @property
    def signing(self) -> bool:
        """True when a signing secret is configured (needed for `webhook_v2`)."""
        return self._secret is not None

    def __repr__(self) -> str:
        return f"WebhookSender(signing={self.signing})"

    async def check(self, url: str) -> None:
        """Refuse a URL the guard would not reach (raises UrlRefused/FetchError)."""
        await self.deliverer.guard.check(url)

    async def send_v2(self, url: str, type_: EventType, data: dict[str, Any], *,
                      message_id: str | None = None) -> DeliveryResult:
        """A signed `prompt.complete` / `prompt.failed` event, fields at the top level;
        `message_id` is its `webhook-id` (a fresh one without)."""
        return await self.deliverer.send(url, type_, data, self._secret, flatten=True,
                                         message_id=message_id)

    async def send_legacy(self, url: str, payload: dict[str, Any]) -> DeliveryResult:
        """An unsigned comfyui-api `webhook` event (`output.complete`, `prompt.failed`)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return await self.deliverer.deliver(url, body, None)

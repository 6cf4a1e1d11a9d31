"""Signed webhooks (Standard Webhooks) and their retried, SSRF-guarded delivery."""

from server.webhooks.deliver import DeliveryResult, RetryPolicy, WebhookDeliverer
from server.webhooks.payload import PROMPT_COMPLETE, PROMPT_FAILED, EventType, webhook_body
from server.webhooks.signing import (
    WebhookSecretError,
    WebhookVerificationError,
    decode_secret,
    new_message_id,
    sign,
    signature_headers,
    verify,
)

__all__ = [
    "PROMPT_COMPLETE",
    "PROMPT_FAILED",
    "DeliveryResult",
    "EventType",
    "RetryPolicy",
    "WebhookDeliverer",
    "WebhookSecretError",
    "WebhookVerificationError",
    "decode_secret",
    "new_message_id",
    "sign",
    "signature_headers",
    "verify",
    "webhook_body",
]

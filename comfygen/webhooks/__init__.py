"""Signed webhooks (Standard Webhooks) and their retried, SSRF-guarded delivery."""

from comfygen.webhooks.deliver import DeliveryResult, RetryPolicy, WebhookDeliverer
from comfygen.webhooks.payload import PROMPT_COMPLETE, PROMPT_FAILED, EventType, webhook_body
from comfygen.webhooks.signing import (
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

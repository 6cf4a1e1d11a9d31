"""Signed webhooks (Standard Webhooks) and their retried, SSRF-guarded delivery."""

from server.webhooks.deliver import DeliveryResult, RetryPolicy, WebhookDeliverer
from server.webhooks.payload import PROMPT_COMPLETE, PROMPT_FAILED, EventType, webhook_body
from server.webhooks.signing import (
    WebhookSecretError,
    new_message_id,
    signature_headers,
    signer,
)

__all__ = [
    "PROMPT_COMPLETE",
    "PROMPT_FAILED",
    "DeliveryResult",
    "EventType",
    "RetryPolicy",
    "WebhookDeliverer",
    "WebhookSecretError",
    "new_message_id",
    "signature_headers",
    "signer",
    "webhook_body",
]

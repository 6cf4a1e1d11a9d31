"""Standard Webhooks signatures through the `standardwebhooks` library.

comfygen adds what the library does not: a strict secret check whose error never shows the secret
(the library silently drops non-base64 characters), `SecretStr` secrets, and a `webhook-id` made
once per message so that its retries reuse it. Receivers verify with `standardwebhooks.Webhook`.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from datetime import UTC, datetime

from pydantic import SecretStr
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


class WebhookSecretError(ValueError):
    """The webhook secret is not valid base64 (the secret itself is never in the message)."""


Secret = str | SecretStr | bytes


def signer(secret: Secret | Webhook) -> Webhook:
    """The library's signer for `secret`: base64 with an optional `whsec_` prefix, or raw bytes."""
    if isinstance(secret, Webhook):
        return secret
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        text = text.strip().removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookSecretError(
                "the webhook secret is not base64 (expected `whsec_<base64>`)"
            ) from None
    if not key:
        raise WebhookSecretError("the webhook secret is empty")
    return Webhook(key)


def new_message_id() -> str:
    """A fresh `webhook-id`; retries of one message reuse it."""
    return f"msg_{uuid.uuid4().hex}"


def signature_headers(
    secret: Secret | Webhook | None,
    body: bytes,
    *,
    message_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and (with a secret) `webhook-signature` headers."""
    message_id = message_id or new_message_id()
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if secret is not None:
        moment = datetime.fromtimestamp(timestamp, UTC)
        headers["webhook-signature"] = signer(secret).sign(message_id, moment, body.decode())
    return headers

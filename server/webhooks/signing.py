"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping

from pydantic import SecretStr

SECRET_PREFIX = "whsec_"


class WebhookSecretError(ValueError):
    """The webhook secret is not valid base64 (the secret itself is never in the message)."""


class WebhookVerificationError(ValueError):
    """A received webhook's headers or signature do not check out."""


Secret = str | SecretStr | bytes


def decode_secret(secret: Secret) -> bytes:
    """The HMAC key: the base64-decoded secret, with an optional `whsec_` prefix removed."""
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
    return key


def new_message_id() -> str:
    """A fresh `webhook-id`; retries of one message reuse it."""
    return f"msg_{uuid.uuid4().hex}"


def sign(secret: Secret, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode('ascii')}"


def signature_headers(
    secret: Secret | None,
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
        headers["webhook-signature"] = sign(secret, message_id, timestamp, body)
    return headers


def verify(
    secret: Secret,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> None:
    """Raise `WebhookVerificationError` unless `headers` sign `body` recently with `secret`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, message_id, timestamp, body)
    for candidate in signatures.split():
        if hmac.compare_digest(candidate, expected):
            return
    raise WebhookVerificationError("no matching signature")

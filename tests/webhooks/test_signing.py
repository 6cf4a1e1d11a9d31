"""Signatures made through, and checked by, the reference `standardwebhooks` library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as LibraryVerificationError

from server.webhooks import WebhookSecretError, signature_headers, signer, webhook_body

KEY = b"a 24-byte test secret key"
RAW = base64.b64encode(KEY).decode()
SECRETS = [f"whsec_{RAW}", RAW, SecretStr(f"whsec_{RAW}"), RAW.rstrip("="), KEY]


@pytest.mark.parametrize("secret", SECRETS)
def test_reference_library_verifies(secret: str | SecretStr | bytes) -> None:
    body = webhook_body("prompt.complete", {"id": "r1", "images": ["aGk="]})
    headers = signature_headers(secret, body)
    assert Webhook(f"whsec_{RAW}").verify(body, headers)["data"]["id"] == "r1"
    assert Webhook(RAW.rstrip("=")).verify(body, headers)["data"]["id"] == "r1"


def test_signature_is_hmac_of_id_timestamp_body() -> None:
    stamp = int(time.time())
    body = '{"type":"prompt.failed","error":"é"}'.encode()
    headers = signature_headers(f"whsec_{RAW}", body, message_id="msg_1", timestamp=stamp)
    digest = hmac.new(KEY, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    assert headers == {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
                       "webhook-signature": f"v1,{base64.b64encode(digest).decode()}"}
    theirs = Webhook(f"whsec_{RAW}").sign(
        "msg_1", datetime.fromtimestamp(stamp, UTC), body.decode()
    )
    assert headers["webhook-signature"] == theirs


def test_tampering_is_detected_by_both() -> None:
    body = webhook_body("prompt.complete", {"id": "r1"})
    headers = signature_headers(RAW, body)
    tampered = body.replace(b"r1", b"r2")
    with pytest.raises(LibraryVerificationError):
        Webhook(RAW).verify(tampered, headers)
    with pytest.raises(LibraryVerificationError):
        Webhook(base64.b64encode(b"other key").decode()).verify(body, headers)


def test_old_timestamps_fail() -> None:
    body = b"{}"
    headers = signature_headers(RAW, body, timestamp=int(time.time()) - 3600)
    with pytest.raises(LibraryVerificationError):
        Webhook(RAW).verify(body, headers)


@pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_", "%%%%", b""])
def test_bad_secret_message_has_no_secret(bad: str | bytes) -> None:
    with pytest.raises(WebhookSecretError) as caught:
        signer(bad)
    with pytest.raises(WebhookSecretError):
        signature_headers(bad, b"{}")
    assert "base64!" not in str(caught.value) and "%%%%" not in str(caught.value)


def test_unsigned_headers_without_secret() -> None:
    headers = signature_headers(None, b"{}", message_id="msg_x", timestamp=1)
    assert headers == {"webhook-id": "msg_x", "webhook-timestamp": "1"}


def test_body_shapes() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    nested = json.loads(webhook_body("prompt.failed", {"id": "r", "error": "x"}, timestamp=moment))
    assert nested == {
        "type": "prompt.failed",
        "timestamp": "2026-01-02T03:04:05.006Z",
        "data": {"id": "r", "error": "x"},
    }
    flat = json.loads(
        webhook_body(
            "prompt.complete", {"id": "r", "type": "spoof"}, timestamp=moment, flatten=True
        )
    )
    assert flat == {"type": "prompt.complete", "timestamp": "2026-01-02T03:04:05.006Z", "id": "r"}

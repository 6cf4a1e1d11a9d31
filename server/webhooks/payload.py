"""Webhook bodies: `{"type": "prompt.complete" | "prompt.failed", "timestamp", "data": {...}}`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

EventType = Literal["prompt.complete", "prompt.failed"]
PROMPT_COMPLETE: EventType = "prompt.complete"
PROMPT_FAILED: EventType = "prompt.failed"


def iso_timestamp(moment: datetime | None = None) -> str:
    """UTC time as ISO 8601 with a `Z`, e.g. `2026-01-31T12:00:00.123Z`."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_body(
    type: EventType,
    data: dict[str, Any],
    *,
    timestamp: datetime | None = None,
    flatten: bool = False,
) -> bytes:
    """The JSON body; `flatten=True` puts `data`'s keys at the top level (comfyui-api style)."""
    envelope: dict[str, Any] = {"type": type, "timestamp": iso_timestamp(timestamp)}
    if flatten:
        envelope.update({k: v for k, v in data.items() if k not in envelope})
    else:
        envelope["data"] = data
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

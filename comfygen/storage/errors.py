"""The one error the storage providers raise: the provider's reason, never a secret."""

from __future__ import annotations

from collections.abc import Iterable


class StorageError(Exception):
    """An upload or read that failed; `message` is safe to show (secrets scrubbed)."""

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status  # the provider's HTTP status, when it answered


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret value (and long ones' halves) replaced by `***`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text

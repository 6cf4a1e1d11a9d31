"""Errors of media inputs: they name the field and the reason, ready to become a 4xx."""

from __future__ import annotations

STATUS_BY_REASON: dict[str, int] = {
    "too_large": 413,
    "too_many_pixels": 413,
    "too_many_frames": 413,
    "unsupported_type": 415,
}
"""HTTP status per reason; every other reason is 422 (the value cannot be processed)."""


class MediaError(Exception):
    """A media field value was rejected; `message` is safe to show to the caller."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        self.field = field
        self.reason = reason
        self.message = message
        super().__init__(f"{field}: {message}")

    @property
    def status_code(self) -> int:
        """The HTTP status this rejection maps to (413, 415 or 422)."""
        return STATUS_BY_REASON.get(self.reason, 422)

    def __repr__(self) -> str:
        return f"MediaError({self.field!r}, {self.reason!r}, {self.message!r})"

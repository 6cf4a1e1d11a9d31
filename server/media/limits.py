"""Limits on media inputs (settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MediaLimits(BaseModel):
    """Size, pixel and frame limits for media fields, and whether URLs are fetched."""

    model_config = ConfigDict(frozen=True)

    max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """Largest decoded file."""
    max_pixels: int = Field(default=40_000_000, gt=0)
    """Largest width x height of one image frame (guards against decompression bombs)."""
    max_frames: int = Field(default=1000, gt=0)
    """Most frames in an animated image."""
    allow_urls: bool = True
    """Fetch http(s) URLs through the URL guard; False refuses URL values."""

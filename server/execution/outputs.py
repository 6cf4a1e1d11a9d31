"""Output conversion: re-encode delivered images as JPEG or WebP with the requested options."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from comfygen.comfy.models import OutputFile

log = logging.getLogger("comfygen.server")

class ConvertOptions(BaseModel):
    """Encoder options; the names follow comfyui-api (sharp) where they exist."""

    model_config = ConfigDict(extra="forbid")

    quality: int | None = Field(default=None, ge=1, le=100, description="1-100 (default 90)")
    progressive: bool | None = Field(default=None, description="JPEG: progressive scan")
    optimize: bool | None = Field(default=None, description="JPEG: optimise Huffman tables")
    chromaSubsampling: Literal["4:4:4", "4:2:2", "4:2:0"] | None = Field(  # noqa: N815
        default=None, description="JPEG chroma subsampling")
    lossless: bool | None = Field(default=None, description="WebP: lossless")
    effort: int | None = Field(default=None, ge=0, le=6, description="WebP: 0 (fast) - 6 (small)")
    alphaQuality: int | None = Field(  # noqa: N815
        default=None, ge=0, le=100, description="WebP: quality of the alpha channel (default 100)")

    @model_validator(mode="before")
    @classmethod
    def _sharp_names(cls, value: Any) -> Any:
        """comfyui-api's (sharp's) other option names: `optimizeCoding` is `optimize`; the
        encoder tunings Pillow has no counterpart for (SHARP_ONLY) are accepted and ignored."""
        if not isinstance(value, dict):
            return value
        value = {k: v for k, v in value.items() if k not in SHARP_ONLY}
        if "optimizeCoding" in value:
            value.setdefault("optimize", value.pop("optimizeCoding"))
        return value


SHARP_ONLY = frozenset({"mozjpeg", "trellisQuantisation", "overshootDeringing", "optimizeScans",
                        "quantisationTable", "nearLossless", "smartSubsample", "preset"})
"""comfyui-api (sharp) encoder options without a Pillow counterpart: accepted, no effect."""


class ConvertOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["jpeg", "webp"]
    options: ConvertOptions = ConvertOptions()


CONVERTIBLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")










def convert(data: bytes, spec: ConvertOutput) -> bytes:
    """Re-encode an image as JPEG or WebP with the requested options."""
    opts = spec.options
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        if spec.format == "jpeg":
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            kwargs: dict[str, Any] = {"quality": opts.quality or 90}
            if opts.progressive is not None:
                kwargs["progressive"] = opts.progressive
            if opts.optimize is not None:
                kwargs["optimize"] = opts.optimize
            if opts.chromaSubsampling is not None:
                kwargs["subsampling"] = opts.chromaSubsampling
            img.save(out, "JPEG", **kwargs)
        else:
            kwargs = {"quality": opts.quality or 90}
            if opts.lossless is not None:
                kwargs["lossless"] = opts.lossless
            if opts.effort is not None:
                kwargs["method"] = opts.effort
            if opts.alphaQuality is not None:
                kwargs["alpha_quality"] = opts.alphaQuality
            img.save(out, "WEBP", **kwargs)
        return out.getvalue()


def converted_name(filename: str, fmt: str) -> str:
    return str(Path(filename).with_suffix(".jpg" if fmt == "jpeg" else ".webp"))


def can_convert(file: OutputFile, node_values: Mapping[str, Any]) -> bool:
    animated = node_values.get("animated")
    if isinstance(animated, list) and any(animated):
        return False
    return file.filename.lower().endswith(CONVERTIBLE)



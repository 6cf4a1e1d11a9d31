"""Turn a media field value (base64, data URI, http(s) URL or uploaded bytes) into checked bytes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import urllib.parse
import warnings
from dataclasses import dataclass

import httpx
from PIL import Image, UnidentifiedImageError

from comfygen.runtime.workflow import MediaKind
from server.media.errors import MediaError
from server.media.limits import MediaLimits
from server.media.names import looks_like_path, safe_upload_name
from server.media.sniff import Sniffed, sniff
from server.media.stored import check_location, hub_url, is_stored, read_stored
from server.security.errors import FetchError, FetchTooLarge
from server.security.policy import Credentials, as_credentials
from server.security.urlguard import UrlGuard

ACCEPTED: dict[MediaKind, frozenset[str]] = {
    MediaKind.IMAGE: frozenset(
        {"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff"}
    ),
    MediaKind.VIDEO: frozenset(
        {
            "video/mp4",
            "video/quicktime",
            "video/webm",
            "video/x-matroska",
            "video/x-msvideo",
            "image/gif",
            "image/webp",
        }
    ),
    MediaKind.AUDIO: frozenset(
        {"audio/wav", "audio/mpeg", "audio/aac", "audio/flac", "audio/ogg", "audio/mp4"}
    ),
}
ACCEPTED[MediaKind.MASK] = ACCEPTED[MediaKind.IMAGE]

_PIL_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}
_DATA_URI = re.compile(r"^data:([^,]*?),", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class MediaFile:
    """A checked media file: its bytes, sniffed type and (for images) dimensions."""

    field: str
    kind: MediaKind
    data: bytes
    mime: str
    ext: str
    source: str
    width: int | None = None
    height: int | None = None
    frames: int = 1

    def upload_name(self, request_id: str, index: int | None = None) -> str:
        """A fresh, safe file name for ComfyUI's input folder."""
        return safe_upload_name(request_id, self.field, self.ext, index=index)

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width else f"{len(self.data)} bytes"
        return f"MediaFile({self.field!r}, {self.mime}, {size}, from {self.source})"


async def decode_media(
    field: str,
    value: str | bytes,
    kind: MediaKind | str,
    *,
    limits: MediaLimits | None = None,
    guard: UrlGuard | None = None,
    credentials: Credentials | None = None,
) -> MediaFile:
    """Decode and check one media value; raise `MediaError` naming `field` when it is unusable."""
    limits = limits or MediaLimits()
    if isinstance(value, bytes | bytearray):
        return await validate_media(field, bytes(value), kind, limits=limits, source="upload")
    if not isinstance(value, str) or not value.strip():
        raise MediaError(field, "empty", "no file given; send base64, a data URI or an http(s) URL")
    text = value.strip()
    lowered = text[:8].lower()
    if is_stored(text):  # s3://, hf://, the configured Azure account: its SDK, its credentials
        check_location(field, text, guard.policy if guard is not None else None)
        timeout = guard.policy.timeout if guard is not None else 30.0
        hub = hub_url(text)
        server_token = guard is not None and guard.policy.hf_token_allowed(text)
        headers = None
        if hub is not None:  # the request's own headers for the Hub URL, if any
            headers = guard.credential_headers(hub, credentials) if guard is not None \
                else as_credentials(credentials).headers_for(httpx.URL(hub))
        data = await read_stored(field, text, limits, timeout, hf_server_token=server_token,
                                 hf_headers=headers)
        return await validate_media(field, data, kind, limits=limits, source="storage")
    if lowered.startswith(("http://", "https://")):
        data = await _fetch(field, text, limits, guard, credentials)
        return await validate_media(field, data, kind, limits=limits, source="url")
    if lowered.startswith("data:"):
        data = _decode_data_uri(field, text, limits)
        return await validate_media(field, data, kind, limits=limits, source="data_uri")
    if looks_like_path(text):
        raise MediaError(
            field,
            "path_not_allowed",
            "file paths are not accepted; send base64, a data URI or an http(s) URL",
        )
    if re.match(r"^[a-z][a-z0-9+.-]{1,15}:", text, re.IGNORECASE):
        raise MediaError(field, "unsupported_url",
                         "only http(s), s3:// and hf:// URLs can be fetched")
    data = _decode_base64(field, text, limits)
    return await validate_media(field, data, kind, limits=limits, source="base64")


async def validate_media(
    field: str,
    data: bytes,
    kind: MediaKind | str,
    *,
    limits: MediaLimits | None = None,
    source: str = "upload",
) -> MediaFile:
    """Check raw bytes against `kind` and the limits by content sniffing (Pillow for images)."""
    limits = limits or MediaLimits()
    kind = MediaKind(kind)
    if not data:
        raise MediaError(field, "empty", "the file is empty")
    if len(data) > limits.max_bytes:
        raise MediaError(field, "too_large", f"the file is larger than {limits.max_bytes} bytes")
    found = sniff(data)
    accepted = ACCEPTED[kind]
    if found is None or found.mime not in accepted:
        what = found.mime if found else "not a recognised media file"
        names = ", ".join(sorted(m.split("/", 1)[1] for m in accepted))
        raise MediaError(field, "unsupported_type", f"expected {kind.value} ({names}); got {what}")
    if found.family != "image":
        return MediaFile(field, kind, data, found.mime, found.ext, source)
    width, height, frames = await asyncio.to_thread(_inspect_image, field, data, found, limits)
    return MediaFile(field, kind, data, found.mime, found.ext, source, width, height, frames)


def _inspect_image(
    field: str, data: bytes, found: Sniffed, limits: MediaLimits
) -> tuple[int, int, int]:
    """Open with Pillow restricted to the sniffed format, check pixels and frames, decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[found.mime]]) as image:
                width, height = image.size
                if width * height > limits.max_pixels:
                    raise MediaError(
                        field,
                        "too_many_pixels",
                        f"the image is {width}x{height}; at most {limits.max_pixels} pixels "
                        "are accepted",
                    )
                frames = int(getattr(image, "n_frames", 1))
                if frames > limits.max_frames:
                    raise MediaError(
                        field,
                        "too_many_frames",
                        f"the image has {frames} frames; at most {limits.max_frames} are accepted",
                    )
                image.load()
    except MediaError:
        raise
    except Image.DecompressionBombError:
        message = f"the image has too many pixels; at most {limits.max_pixels} are accepted"
        raise MediaError(field, "too_many_pixels", message) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise MediaError(
            field, "invalid_image", f"the {found.ext} file is damaged or truncated"
        ) from None
    if width < 1 or height < 1:
        raise MediaError(field, "invalid_image", "the image has no pixels")
    return width, height, frames


async def _fetch(
    field: str,
    url: str,
    limits: MediaLimits,
    guard: UrlGuard | None,
    credentials: Credentials | None,
) -> bytes:
    if guard is None or not limits.allow_urls:
        raise MediaError(
            field, "urls_disabled", "URL inputs are disabled here; send base64 or a data URI"
        )
    try:
        result = await guard.fetch(url, credentials=credentials, max_bytes=limits.max_bytes)
    except FetchTooLarge:
        raise MediaError(
            field, "too_large", f"the file is larger than {limits.max_bytes} bytes"
        ) from None
    except FetchError as exc:
        raise MediaError(field, exc.reason, f"could not fetch the URL: {exc.message}") from None
    return result.content


def _decode_data_uri(field: str, text: str, limits: MediaLimits) -> bytes:
    match = _DATA_URI.match(text)
    if match is None:
        raise MediaError(field, "invalid_data_uri", "a data URI needs a comma before its data")
    params = match.group(1).lower().split(";")
    payload = text[match.end() :]
    if "base64" in (p.strip() for p in params):
        return _decode_base64(field, payload, limits)
    data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > limits.max_bytes:
        raise MediaError(field, "too_large", f"the file is larger than {limits.max_bytes} bytes")
    return data


def _decode_base64(field: str, text: str, limits: MediaLimits) -> bytes:
    compact = _WHITESPACE.sub("", text)
    if len(compact) * 3 // 4 > limits.max_bytes + 3:
        raise MediaError(field, "too_large", f"the file is larger than {limits.max_bytes} bytes")
    if "-" in compact or "_" in compact:
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(
            field,
            "invalid_base64",
            "not valid base64; send base64 file contents, a data URI or an http(s) URL",
        ) from None

"""Upload file names: generated from the request id and field, never from user input."""

from __future__ import annotations

import re
import secrets

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]{1,8})?$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
MAX_PART = 48


def slug(text: str, fallback: str = "x") -> str:
    """`text` reduced to `[A-Za-z0-9_-]`, at most 48 characters, never empty."""
    return _UNSAFE.sub("_", text).strip("_-")[:MAX_PART] or fallback


def safe_upload_name(request_id: str, field: str, ext: str, *, index: int | None = None) -> str:
    """A fresh name like `<request>-<field>[-<n>]-<random>.<ext>` for ComfyUI's input folder."""
    if not _EXT.match(ext):
        raise ValueError(f"invalid extension {ext!r}")
    parts = [slug(request_id, "request"), slug(field, "field")]
    if index is not None:
        parts.append(str(int(index)))
    parts.append(secrets.token_hex(4))
    return check_upload_name(f"{'-'.join(parts)}.{ext}")


def check_upload_name(name: str) -> str:
    """Return `name` if it is a plain file name; raise ValueError for paths, `..`, NUL and such."""
    if (
        not name
        or len(name) > 200
        or "\x00" in name
        or "/" in name
        or "\\" in name
        or ".." in name
        or not _SAFE_NAME.match(name)
    ):
        raise ValueError("not a plain file name")
    return name


def looks_like_path(value: str) -> bool:
    """True for values that read as file paths or file URLs rather than file contents."""
    text = value.strip()
    return (
        "\x00" in text
        or "../" in text
        or "..\\" in text
        or text.startswith(("~", "\\", "./", "file:"))
        or re.match(r"^[A-Za-z]:[\\/]", text) is not None
        or (text.startswith("/") and not _plausible_base64(text))
    )


def _plausible_base64(text: str) -> bool:
    return (
        len(text) >= 16
        and re.fullmatch(r"[A-Za-z0-9+/=\s]+", text) is not None
        and ("." not in text)
    )

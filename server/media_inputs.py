"""Media fields: a data URI, base64 or http(s) URL becomes a file in ComfyUI's input folder.

Minimal on purpose: swap in `comfygen/media/` (a shared library, still empty when this was
written) when it lands. Any other string is taken as a file already in ComfyUI's input folder.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from typing import TYPE_CHECKING

from comfygen.comfy.errors import ComfyError
from comfygen.runtime import Workflow, WorkflowInput
from comfygen.security import FetchError, UrlRefused
from server.errors import ApiError
from server.outputs import safe_name

if TYPE_CHECKING:
    from server.runner import Runner

DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[^,]*)?;base64,(?P<data>.*)$", re.S)


async def resolve_media(wf: Workflow, data: WorkflowInput, request_id: str,
                        runner: Runner) -> WorkflowInput:
    """Upload every media field's content to ComfyUI; return the input naming the uploads."""
    updates: dict[str, str] = {}
    for field in sorted(wf.media):
        value = getattr(data, field, None)
        if not isinstance(value, str) or not value:
            continue
        content, content_type = await _content(field, value, runner)
        if content is None:
            continue
        ext = mimetypes.guess_extension(content_type or "") or ".png"
        try:
            ref = await runner.supervisor.client.upload(
                content, f"{safe_name(request_id)}_{field}{ext}", subfolder="comfygen",
                content_type=content_type or "application/octet-stream")
        except ComfyError as exc:
            raise ApiError(503, "comfyui_unavailable", f"could not upload {field}: {exc}",
                           headers={"Retry-After": str(runner.settings.retry_after)}) from exc
        updates[field] = f"{ref['subfolder']}/{ref['name']}" if ref.get("subfolder") else ref["name"]
    return data.model_copy(update=updates) if updates else data


async def _content(field: str, value: str, runner: Runner) -> tuple[bytes | None, str | None]:
    match = DATA_URI.match(value)
    if match:
        return _b64(field, match["data"]), match["type"]
    if value.startswith(("http://", "https://")):
        try:
            result = await runner.media_guard.fetch(value)
        except (UrlRefused, FetchError) as exc:
            raise _invalid(field, f"could not fetch the URL: {exc}") from exc
        return result.content, result.content_type
    if re.fullmatch(r"[A-Za-z0-9+/=\s]+", value) and (len(value) > 256 or "." not in value):
        return _b64(field, value), None
    return None, None  # a file name in ComfyUI's input folder


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(field, f"not valid base64: {exc}") from exc


def _invalid(field: str, msg: str) -> ApiError:
    return ApiError(422, "invalid_input", f"invalid request: input.{field}: {msg}",
                    detail=[{"loc": ["body", "input", field], "msg": msg, "type": "bad_media"}])

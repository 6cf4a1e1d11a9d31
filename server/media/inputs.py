"""Media fields: base64, a data URI, an http(s) URL or a multipart file becomes a checked upload.

Every value goes through `server.media` (content sniffing, size/pixel/frame limits, the URL
guard for URLs) and reaches ComfyUI through `/upload/image` under a generated name; the field then
names that upload. Nothing the caller wrote is ever used as a file name or path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.errors import ComfyError
from comfygen.runtime import Workflow, WorkflowInput
from server.errors import ApiError
from server.media import MediaError, MediaFile, MediaLimits, decode_media
from server.media.attachments import Attachments
from server.observability import metrics
from server.security import UrlCredentials, UrlGuard, UrlPolicy
from server.security.policy import merge_credentials, redact_url
from server.settings import Settings

UPLOAD_SUBFOLDER = "comfygen"
UPLOAD_PLACEHOLDER = "multipart:"
"""Prefix of the value a multipart file's field carries until the file replaces it."""


class MediaResolver:
    """Decodes, checks and uploads the media fields of one request."""

    def __init__(self, settings: Settings) -> None:
        self.limits = MediaLimits(
            max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels,
            max_frames=settings.media_max_frames, allow_urls=settings.media_allow_urls,
        )
        policy = UrlPolicy(
            allow_cidrs=settings.media_allow_cidrs, allow_hosts=settings.media_allow_hosts,
            timeout=settings.media_fetch_timeout, max_redirects=settings.media_max_redirects,
            max_bytes=settings.media_max_bytes, hf_token_repos=settings.hf_token_repos,
            storage_read_allow=settings.storage_read_allow,
        )
        self.guard = UrlGuard(policy, credentials=settings.media_url_credentials)
        self.retry_after = settings.retry_after
        self.on_fetch: Callable[[dict[str, Any]], None] | None = None
        """Called with `{url, size, ...}` (URL redacted) for each file fetched from a URL."""

    async def resolve(self, wf: Workflow, data: WorkflowInput, request_id: str,
                      client: ComfyClient | Attachments, *, uploads: Mapping[str, bytes] | None = None,
                      credentials: UrlCredentials | None = None,
                      dry_run: bool = False) -> WorkflowInput:
        """Upload every media field's content; return the input naming the uploads. A dry run
        decodes and checks every file the same way but uploads none: each field then names the
        file it would be uploaded as."""
        uploads = uploads or {}
        fields = [f for f in sorted(wf.media) if f in uploads or getattr(data, f, None) is not None]
        if not fields:
            return data
        creds = merge_credentials(credentials)
        files = await asyncio.gather(*(
            self._decode(wf, f, uploads.get(f, getattr(data, f, None)), creds) for f in fields))
        if dry_run:
            names = [f"{UPLOAD_SUBFOLDER}/{f.upload_name(request_id)}" for f in files]
        else:
            names = await asyncio.gather(*(self.upload(f, request_id, client) for f in files))
        updates = dict(zip(fields, names, strict=True))
        return data.model_copy(update=updates) if updates else data

    async def _decode(self, wf: Workflow, field: str, value: str | bytes | None,
                      creds: UrlCredentials) -> MediaFile:
        if isinstance(value, str) and value.startswith(UPLOAD_PLACEHOLDER):
            raise media_error(MediaError(field, "missing_upload",
                                         "no multipart file part carries this field"))
        try:
            file = await decode_media(field, value or "", wf.media[field], limits=self.limits,
                                      guard=self.guard, credentials=creds)
        except MediaError as exc:
            raise media_error(exc) from None
        metrics.media_in(str(file.kind), len(file.data))
        self.fetched(file, value)
        return file

    def fetched(self, file: MediaFile, value: object) -> None:
        """Tell `on_fetch` about a file that came from a URL (its query and user redacted)."""
        if self.on_fetch is not None and file.source == "url" and isinstance(value, str):
            self.on_fetch({"url": redact_url(value.strip()), "field": file.field,
                           "size": len(file.data), "content_type": file.mime})

    async def upload(self, file: MediaFile, request_id: str,
                     client: ComfyClient | Attachments, *, label: str | None = None) -> str:
        """Put a checked file in ComfyUI's input folder (or, for a shared job, in its
        attachments); the value that names it there."""
        try:
            ref = await client.upload(file.data, file.upload_name(request_id),
                                      subfolder=UPLOAD_SUBFOLDER, content_type=file.mime)
        except ComfyError as exc:
            raise ApiError(503, "comfyui_unavailable",
                           f"could not upload {label or 'input.' + file.field} to ComfyUI: {exc}",
                           headers={"Retry-After": str(self.retry_after)}) from exc
        name = str(ref.get("name") or "")
        subfolder = str(ref.get("subfolder") or "")
        return f"{subfolder}/{name}" if subfolder else name


def media_error(exc: MediaError) -> ApiError:
    """A 413/415/422 answer naming the field, in the shape of the other input errors."""
    return ApiError(
        exc.status_code, "invalid_media", f"invalid request: input.{exc.field}: {exc.message}",
        detail=[{"loc": ["body", "input", exc.field], "msg": exc.message, "type": exc.reason}],
        field=f"input.{exc.field}", reason=exc.reason,
    )

"""Media of a shared job, kept as bytes until a worker stages them in its own ComfyUI.

With shared jobs (`COMFYGEN_REDIS_URL`) the API replica that accepts a request has no ComfyUI
of its own: it decodes, fetches and checks media exactly as on one machine, but "uploads" them
into an `Attachments` (the same `upload` call as `ComfyClient.upload`), which names each file
as the upload would (`<subfolder>/<name>`). The names go into the graph; the bytes are written
to Redis with the job (`server.jobs.shared`) and uploaded by the worker that runs it.
"""

from __future__ import annotations

from typing import Any

from server.errors import ApiError


class Attachments:
    """name -> bytes of one job's media, at most `max_bytes` in all (else 413)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.files: dict[str, bytes] = {}

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    async def upload(self, data: bytes, filename: str, *, subfolder: str = "",
                     overwrite: bool = True, content_type: str = "") -> dict[str, Any]:
        """Keep `data` under `subfolder/filename`; ComfyUI's `/upload/image` answer for it."""
        del overwrite, content_type  # the worker uploads with overwrite; the name tells the type
        if self.size + len(data) > self.max_bytes:
            raise ApiError(
                413, "media_too_large",
                f"the media of this request take {self.size + len(data)} bytes in all, over "
                f"the shared-jobs limit of {self.max_bytes} "
                "(COMFYGEN_SHARED_MEDIA_MAX_BYTES, setting `shared_media_max_bytes`): send "
                "fewer or smaller files", field="shared_media_max_bytes",
                limit=self.max_bytes)
        name = f"{subfolder}/{filename}" if subfolder else filename
        self.files[name] = data
        return {"name": filename, "subfolder": subfolder, "type": "input"}

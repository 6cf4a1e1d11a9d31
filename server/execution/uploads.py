"""Outputs to object storage: the runner's face of `comfygen.storage`.

`http_upload` PUTs go through the media URL guard (the operator's allow-lists, and the request's
`credentials` headers for matching URLs); a failed upload fails the run with 502 and the
provider's reason, never a credential.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from comfygen import storage
from server.errors import ApiError
from server.security import FetchError, UrlCredentials, UrlGuard, UrlRefused


class Uploader:
    def __init__(self, guard: UrlGuard) -> None:
        self.guard = guard

    async def check(self, target: storage.Target, block: str) -> None:
        """422 now, not after the run, for a provider that is not configured or an
        `http_upload` URL the guard refuses."""
        if not isinstance(target, storage.HttpUpload):
            try:
                await storage.check(target)
            except storage.StorageError as exc:
                raise ApiError(422, "upload_not_configured", f"invalid request: {block}: "
                               f"{exc.message}", detail=[{"loc": ["body", block],
                                                          "msg": exc.message,
                                                          "type": "upload_not_configured"}],
                               provider=exc.provider) from None
            return
        try:
            await self.guard.check(target.url_prefix)
        except (UrlRefused, FetchError) as exc:
            raise ApiError(422, "invalid_input", f"invalid request: http_upload.url_prefix: "
                           f"{exc.message}", detail=[{
                               "loc": ["body", "http_upload", "url_prefix"],
                               "msg": exc.message, "type": exc.reason}]) from None

    async def store(self, target: storage.Target, files: Sequence[tuple[str, bytes, str]],
                    credentials: UrlCredentials | None = None) -> list[str]:
        """Upload every output; their URLs, or 502 naming the provider and its reason."""

        async def put(url: str, data: bytes, headers: Mapping[str, str]) -> int:
            try:
                result = await self.guard.request("PUT", url, content=data, headers=headers,
                                                  credentials=credentials,
                                                  follow_redirects=False)
            except (UrlRefused, FetchError) as exc:
                raise storage.StorageError("http_upload", exc.message) from None
            return result.status

        try:
            return await storage.upload_all(target, files, send=put)
        except storage.StorageError as exc:
            raise ApiError(502, "upload_failed",
                           f"could not upload the outputs to {exc.provider}: {exc.message}",
                           provider=exc.provider) from None

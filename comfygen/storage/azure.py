"""Azure Blob Storage through azure-storage-blob's asyncio client.

The account comes from the server's environment, under the names comfyui-api reads:
`AZURE_STORAGE_CONNECTION_STRING` (Azurite, or any full connection string), else
`AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY` or `AZURE_STORAGE_SAS_TOKEN`. A request's
`credentials` block may give a SAS token or account key for that same account.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from comfygen.storage.errors import StorageError, scrub
from comfygen.storage.targets import AzureBlobUpload, AzureCredentials


def _env_secrets() -> list[str | None]:
    return [os.environ.get("AZURE_STORAGE_KEY"), os.environ.get("AZURE_STORAGE_SAS_TOKEN"),
            *_connection_secrets(os.environ.get("AZURE_STORAGE_CONNECTION_STRING"))]


def _connection_secrets(conn: str | None) -> list[str]:
    fields = dict(p.split("=", 1) for p in (conn or "").split(";") if "=" in p)
    return [v for k, v in fields.items() if k.lower() in ("accountkey", "sharedaccesssignature")]


def _service(credentials: AzureCredentials | None = None) -> BlobServiceClient:
    """A client for the configured account (with the request's credentials, if any)."""
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    account = os.environ.get("AZURE_STORAGE_ACCOUNT")
    if conn:
        base = BlobServiceClient.from_connection_string(conn)
        url, name = base.url.rstrip("/"), base.account_name
        default: Any = base.credential
    elif account:
        url, name = f"https://{account}.blob.core.windows.net", account
        key, sas = os.environ.get("AZURE_STORAGE_KEY"), os.environ.get("AZURE_STORAGE_SAS_TOKEN")
        default = {"account_name": account, "account_key": key} if key else sas
    else:
        raise StorageError("azure_blob", "no Azure storage account is configured on the server "
                           "(AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT)")
    credential = default
    if credentials and credentials.account_key:
        credential = {"account_name": name,
                      "account_key": credentials.account_key.get_secret_value()}
    elif credentials and credentials.sas_token:
        credential = credentials.sas_token.get_secret_value().lstrip("?")
    return BlobServiceClient(url, credential=credential)


def account_url() -> str | None:
    """The configured account's blob endpoint, or None when none is configured."""
    try:
        return str(_service().url).rstrip("/")
    except (StorageError, ValueError):
        return None


def check(target: AzureBlobUpload) -> None:
    """StorageError now, before any work, when no storage account is configured."""
    del target
    _service()


def owns(url: str) -> bool:
    """True for `az://<container>/<blob>` and blob URLs of the configured account (read with
    its credentials)."""
    if url.startswith("az://"):
        return True
    base = account_url()
    return base is not None and url.startswith(base + "/")


def _error(exc: Exception, what: str, credentials: AzureCredentials | None) -> StorageError:
    secrets = _env_secrets()
    if credentials:
        secrets += [c.get_secret_value() for c in (credentials.sas_token, credentials.account_key)
                    if c is not None]
    if isinstance(exc, HttpResponseError):
        code = getattr(exc.error_code, "value", exc.error_code) or exc.reason or "error"
        first = (exc.message or "").splitlines()[0] if exc.message else ""
        return StorageError("azure_blob", scrub(f"{what}: {code}: {first}", secrets),
                            status=exc.status_code)
    return StorageError("azure_blob", scrub(f"{what}: {type(exc).__name__}: "
                                            f"{str(exc).splitlines()[0] if str(exc) else ''}",
                                            secrets))


async def upload(target: AzureBlobUpload, filename: str, data: bytes, content_type: str) -> str:
    """Upload one block blob (overwriting); return its URL (no SAS token in it)."""
    blob_name = target.blob(filename)
    try:
        async with _service(target.credentials) as service:
            blob = service.get_blob_client(target.container, blob_name)
            await blob.upload_blob(data, overwrite=True,
                                   content_settings=ContentSettings(content_type=content_type))
            return blob.url.split("?", 1)[0]
    except (AzureError, ValueError) as exc:
        raise _error(exc, f"upload to container {target.container!r} failed",
                     target.credentials) from None


async def stream(url: str, offset: int = 0) -> tuple[int | None, AsyncIterator[bytes]]:
    """A blob of the configured account (`az://container/blob` or its URL): its total size
    and its bytes from `offset`."""
    base = account_url()
    if url.startswith("az://"):
        path = url[len("az://"):]
    elif base is not None and url.startswith(base + "/"):
        path = url[len(base) + 1:]
    else:
        raise StorageError("azure_blob", "not a blob URL of the configured storage account")
    container, _, name = unquote(urlsplit(path).path).partition("/")
    if not container or not name:
        raise StorageError("azure_blob", f"not a container/blob URL: {url}")
    service = _service()
    try:
        blob = service.get_blob_client(container, name)
        size = (await blob.get_blob_properties()).size
        downloader = await blob.download_blob(offset=offset) if offset < size else None
    except (AzureError, ValueError) as exc:
        await service.close()
        raise _error(exc, f"reading {url} failed", None) from None

    async def chunks() -> AsyncIterator[bytes]:
        try:
            if downloader is not None:
                async for chunk in downloader.chunks():
                    yield chunk
        except AzureError as exc:
            raise _error(exc, f"reading {url} failed", None) from None
        finally:
            await service.close()

    return size, chunks()

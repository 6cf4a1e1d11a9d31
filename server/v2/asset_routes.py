"""`/api/v2/assets`: upload (multipart, blake3 dedup), mint from a hash, probe, read, delete.

Uploaded bytes are sniffed (never trusted by their declared type) and bounded by the media size
limit; output assets (`out_<job>_<n>`) are read from their own job's result only."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import pybase64
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from server.errors import ApiError
from server.media.sniff import sniff
from server.v2 import contract
from server.v2.assets import AssetRecord, AssetStore, parse_hash
from server.v2.shared_assets import SharedAssetStore
from server.v2.views import job_view, parse_output_id


def operation_id(route: APIRoute) -> str:
    """`v2_get_job`, `v2_upload`: the v2 operations apart from comfygen's own (`get_job`)."""
    return f"v2_{route.name}"


router = APIRouter(prefix="/api/v2/assets", tags=["comfy-api-v2"],
                   generate_unique_id_function=operation_id)
ENVELOPE = {"model": contract.ErrorEnvelope}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**ENVELOPE, "description": "`unauthorized`"},
    404: {**ENVELOPE, "description": "`not_found` / `blob_not_found`"},
    409: {**ENVELOPE, "description": "`hash_mismatch`: the bytes are not `expected_hash`"},
    413: {**ENVELOPE, "description": "`too_large`: over the media size limit"},
    415: {**ENVELOPE, "description": "`unsupported_media_type`: not a recognised media file"},
    422: {**ENVELOPE, "description": "`invalid_request`"},
}
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def asset_store(request: Request) -> AssetStore | SharedAssetStore:
    """The app's asset store, opened on first use beside the job database; with shared jobs
    the one in Redis, the same from every replica."""
    state = request.app.state
    store = getattr(state, "v2_assets", None)
    if store is None:
        if not state.jobs.local:
            store = SharedAssetStore(state.jobs.raw, state.settings.redis_prefix,
                                     state.settings.asset_ttl)
        else:
            store = AssetStore(state.settings.jobs_db.resolve().parent / "comfygen-assets")
        state.v2_assets = store
    return store


class FromHash(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hash: str = Field(max_length=80, description="`blake3:<hex>` of bytes already uploaded")
    file_path: str | None = Field(default=None, max_length=1024)
    tags: list[str] | None = None


def asset_view(request: Request, record: AssetRecord, created_new: bool | None = None
               ) -> contract.Asset:
    base = str(request.base_url).rstrip("/")
    return contract.Asset(
        id=record.id, hash=record.hash, size_bytes=record.size_bytes,
        content_type=record.content_type, file_path=record.file_path, created_new=created_new,
        created_at=record.created_at, url=f"{base}/api/v2/assets/{record.id}/content",
        url_expires_at=record.created_at + timedelta(days=3650))


def answer(body: contract.Asset, status: int = 200) -> Response:
    return Response(body.model_dump_json(), status, media_type="application/json")


UPLOAD_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "file_path": {"type": "string"},
        "content_type": {"type": "string"}, "expected_hash": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}}}}}}}}


@router.post("", summary="Upload an asset", status_code=201, response_model=contract.Asset,
             responses=ERRORS, openapi_extra=UPLOAD_FORM, description=(
                 "multipart/form-data: `file`, `file_path`, optional `content_type`, "
                 "`expected_hash` (`blake3:<hex>`), `tags`. Identical bytes are stored once."))
async def upload(request: Request) -> Response:
    limit = request.app.state.settings.media_max_bytes
    form = await request.form(max_files=1, max_fields=40)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise ApiError(422, "invalid_request", "missing the `file` part", field="file")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too_large", f"the file is larger than {limit} bytes", field="file",
                       limit=limit)
    if not data:
        raise ApiError(422, "invalid_request", "the file is empty", field="file")
    found = sniff(data)
    if found is None:
        raise ApiError(415, "unsupported_media_type", "the file is not a recognised image, "
                       "video or audio file", field="file")
    path = form.get("file_path")
    path = path if isinstance(path, str) else file.filename
    store = asset_store(request)
    expected = form.get("expected_hash")
    if isinstance(expected, str) and parse_hash(expected) is None:
        raise ApiError(422, "invalid_request", "expected_hash must be `blake3:<64 hex>`",
                       field="expected_hash")
    record, new = await store.add(data, found.mime, path)
    if isinstance(expected, str) and expected.lower() != record.hash:
        await store.delete(record.id)
        raise ApiError(409, "hash_mismatch", f"the bytes hash to {record.hash}, not {expected}",
                       field="expected_hash")
    return answer(asset_view(request, record, new), 201)


@router.post("/from-hash", summary="An asset over bytes already uploaded", status_code=201,
             response_model=contract.Asset, responses=ERRORS)
async def from_hash(request: Request, body: FromHash) -> Response:
    if parse_hash(body.hash) is None:
        raise ApiError(422, "invalid_request", "hash must be `blake3:<64 hex>`", field="hash")
    record = await asset_store(request).from_hash(body.hash.lower(), body.file_path)
    if record is None:
        raise ApiError(404, "blob_not_found", f"no uploaded bytes with hash {body.hash}")
    return answer(asset_view(request, record, False), 201)


@router.head("/by-hash/{hash}", summary="Are these bytes uploaded?", responses=ERRORS)
async def by_hash(hash: str, request: Request) -> Response:  # noqa: A002 - the contract's name
    if parse_hash(hash) is None:
        raise ApiError(422, "invalid_request", "hash must be `blake3:<64 hex>`", field="hash")
    found = await asset_store(request).has_hash(hash.lower())
    return Response(status_code=200 if found else 404)


async def output_bytes(request: Request, asset_id: str) -> tuple[contract.Output, bytes] | None:
    """An output asset and its bytes, from its own job's result (None: not an output id)."""
    parsed = parse_output_id(asset_id)
    if parsed is None:
        return None
    job_id, index = parsed
    try:
        job = await request.app.state.jobs.get(job_id)
    except ApiError:
        raise not_found(asset_id) from None
    view = job_view(job, str(request.base_url).rstrip("/"), request.app.state.settings.job_ttl)
    output = next((o for o in view.outputs if o.id == asset_id), None)
    if output is None:
        raise not_found(asset_id)
    return output, pybase64.b64decode(job.result["images"][index])


def not_found(asset_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no asset {asset_id!r}")


@router.get("/{asset_id}", summary="Asset metadata", response_model=contract.Asset,
            responses=ERRORS)
async def get_asset(asset_id: str, request: Request) -> Response:
    found = await output_bytes(request, asset_id)
    if found is not None:
        output, data = found
        view = await request.app.state.jobs.get(output.job_id)
        return answer(contract.Asset(
            id=output.id, hash=None, size_bytes=len(data), content_type=output.content_type,
            file_path=output.name, created_at=view.updated_at, url=output.url,
            url_expires_at=output.url_expires_at, expires_at=output.url_expires_at,
            job_id=output.job_id))
    record = await asset_store(request).get(asset_id)
    if record is None:
        raise not_found(asset_id)
    return answer(asset_view(request, record))


@router.get("/{asset_id}/content", summary="Asset bytes (Range)", responses={
    **ERRORS, 200: {"content": {"application/octet-stream": {}}},
    206: {"description": "The requested byte range"},
    416: {**ENVELOPE, "description": "`range_not_satisfiable`"}})
async def get_content(asset_id: str, request: Request,
                      range_: Annotated[str | None, Header(alias="range")] = None) -> Response:
    found = await output_bytes(request, asset_id)
    if found is not None:
        data, content_type = found[1], found[0].content_type
    else:
        store = asset_store(request)
        record = await store.get(asset_id)
        if record is None:
            raise not_found(asset_id)
        try:
            data, content_type = await store.read(record), record.content_type
        except LookupError:  # shared: its bytes expired with the last upload's TTL
            raise not_found(asset_id) from None
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if range_ is None:
        return Response(data, 200, headers=headers, media_type=content_type)
    start, end = byte_range(range_, len(data))
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return Response(data[start:end + 1], 206, headers=headers, media_type=content_type)


def byte_range(header: str, size: int) -> tuple[int, int]:
    """(first, last) byte of a single `bytes=` range; 416 when it cannot be served."""
    match = RANGE.match(header.strip())
    first, last = (match.group(1), match.group(2)) if match else ("", "")
    if match is None or (not first and not last):
        raise ApiError(416, "range_not_satisfiable", f"unsupported Range {header!r}: send "
                       "one `bytes=first-last` range", headers={"Content-Range": f"bytes */{size}"})
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise ApiError(416, "range_not_satisfiable", f"the range is outside the {size} bytes",
                       headers={"Content-Range": f"bytes */{size}"})
    return start, end


@router.delete("/{asset_id}", summary="Delete an asset", status_code=204, responses={
    **ERRORS, 403: {**ENVELOPE, "description": "`forbidden`: outputs go with their job"}})
async def delete_asset(asset_id: str, request: Request) -> Response:
    if parse_output_id(asset_id) is not None:
        raise ApiError(403, "forbidden", "a job's output is deleted with its job, not alone")
    if not await asset_store(request).delete(asset_id):
        raise not_found(asset_id)
    return Response(status_code=204)

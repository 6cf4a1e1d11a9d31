"""`POST /download` (comfyui-api 1.18's request and response) and `GET /download/{id}`: a
model file fetched by URL into a ComfyUI models folder, now (`wait: true`) or in the
background (`202`, then poll `status_url`)."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from server.errors import ApiError, ErrorBody
from server.models.on_demand import Download, ModelRequestError, ModelsOnDemand, file_name
from server.security import redact_url
from server.security.auth import Auth, auth_credentials

router = APIRouter(tags=["models"])


class DownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8000, description=(
        "http(s):// or hf://owner/repo[@revision]/path of the model file"))
    model_type: str = Field(description=(
        "The models folder it goes to: checkpoints, loras, vae, ... (a folder of ComfyUI's "
        "models directory)"))
    filename: str | None = Field(default=None, description=(
        "Name to save it under (default: the URL's last path segment)"))
    wait: bool = Field(default=False, description=(
        "true: answer 200 when the file is there; false: answer 202 at once"))
    auth: Auth | None = Field(default=None, description=(
        "Credentials for this URL (bearer, basic or header); never stored or logged"))


class DownloadResponse(BaseModel):
    """comfyui-api's keys, plus `id`, `status_url` and `error` (comfygen)."""

    id: str
    url: str = Field(description="The URL without its query or user info")
    model_type: str
    filename: str
    status: str = Field(description="started, completed or failed")
    size: int | None = None
    duration: float | None = Field(default=None, description="Seconds")
    error: str | None = None
    status_url: str | None = None


def on_demand(request: Request) -> ModelsOnDemand:
    """409 when the server has no models folder to write to (attached without models_dir)."""
    found: ModelsOnDemand | None = request.app.state.runner.on_demand
    if found is None:
        raise ApiError(409, "models_on_demand_off", "downloads need a models folder this "
                       "server writes to: set COMFYGEN_MODELS_DIR")
    return found


def request_error(exc: ModelRequestError, field: str) -> ApiError:
    return ApiError(exc.status, "invalid_model", f"invalid request: {field}: {exc.message}",
                    detail=[{"loc": ["body", field], "msg": exc.message, "type": exc.reason}],
                    field=field, reason=exc.reason)


@router.post(
    "/download", summary="Download a model",
    description="Download a model file from a URL into a ComfyUI models folder (comfyui-api's "
                "`/download`). By default answers 202 at once with a `status_url` to poll; "
                "`wait: true` answers 200 when the file is there.",
    responses={200: {"model": DownloadResponse}, 202: {"model": DownloadResponse},
               400: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def download(request: Request, body: DownloadRequest) -> JSONResponse:
    models = on_demand(request)
    try:
        name = file_name(body.url, body.filename)
    except ModelRequestError as exc:
        raise request_error(exc, "filename" if body.filename is not None else "url") from None
    try:
        models.target(body.model_type, name)
    except ModelRequestError as exc:
        raise request_error(exc, "model_type" if exc.reason == "unknown_model_type"
                            else "filename") from None
    try:
        await models.check_url(body.url)
    except ModelRequestError as exc:
        raise request_error(exc, "url") from None
    credentials = auth_credentials(body.url, body.auth) if body.auth else None
    record = Download(id=str(uuid.uuid4()), url=redact_url(body.url),
                      model_type=body.model_type, filename=name, started=time.monotonic())
    if not body.wait:
        models.start(body.model_type, body.url, name, credentials, record)
        status_url = str(request.url_for("download_status", download_id=record.id))
        return JSONResponse({**record.body(), "status_url": status_url}, status_code=202,
                            headers={"Location": status_url})
    try:
        path = await models.ensure(body.model_type, body.url, name, credentials)
    except ModelRequestError as exc:
        raise request_error(exc, "url") from None
    record.status, record.size = "completed", path.stat().st_size
    record.duration = round(time.monotonic() - record.started, 3)
    return JSONResponse(record.body())


@router.get("/download/{download_id}", summary="A download's status",
            responses={200: {"model": DownloadResponse}, 404: {"model": ErrorBody}})
async def download_status(request: Request, download_id: str) -> JSONResponse:
    models: ModelsOnDemand | None = request.app.state.runner.on_demand
    record = models.downloads.get(download_id) if models is not None else None
    if record is None:
        raise ApiError(404, "download_not_found", f"no download {download_id!r} (statuses are kept for "
                       "the last downloads of this process)")
    return JSONResponse(record.body())

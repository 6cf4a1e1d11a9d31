"""What the run endpoints share: admission, idempotency, then a sync answer or a 202 job."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from comfygen.models.manifest import graph_model_files
from comfygen.storage import HttpUpload, Target
from server.errors import ApiError
from server.execution.preflight import check_pulling
from server.execution.runner import Run, Runner
from server.jobs import IdempotencyConflict, Job
from server.jobs.manager import JobManager, Submission
from server.jobs.views import job_links
from server.media.multipart import uploads_digest
from server.observability import bind
from server.runs.schemas import Accepted, Envelope
from server.security import FetchError, UrlCredentials, UrlRefused
from server.security.auth import list_credentials

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def wants_async(request: Request) -> bool:
    """True when the `Prefer` header asks for `respond-async` (RFC 7240)."""
    prefs = b",".join(v for k, v in request.scope["headers"] if k == b"prefer").decode(
        "latin-1").lower()
    return any(p.split(";")[0].split("=")[0].strip() == "respond-async" for p in prefs.split(","))


def credentials_of(envelope: Envelope) -> UrlCredentials | None:
    if not envelope.credentials:
        return None
    if isinstance(envelope.credentials, list):
        return list_credentials(envelope.credentials)
    return UrlCredentials(envelope.credentials)


async def answer(request: Request, envelope: Envelope, runner: Runner, workflow: str,
                 build: Callable[[], Awaitable[Run]]) -> Response:
    """Run now and answer 200, or create a job and answer 202 (webhooks, `Prefer`, keys)."""
    jobs: JobManager = request.app.state.jobs  # or SharedJobs (Redis), the same methods
    local = jobs.local
    bind(workflow=workflow)
    upload = envelope.upload
    background = (wants_async(request) or bool(envelope.webhook or envelope.webhook_v2)
                  or bool(upload and upload.async_))
    await check_webhooks(envelope, runner)
    if upload is not None:
        await runner.uploader.check(upload, envelope.upload_block)
        if not local and upload_credentials(envelope, upload):
            # The worker uploads after the run: carrying them would put the secrets in Redis
            # (and its AOF on disk) for as long as the job waits. Media URL credentials are
            # used by this replica, before the job exists, and go nowhere.
            raise ApiError(501, "credentials_not_shared",
                           "request credentials for uploads are not carried to shared-job "
                           "workers (COMFYGEN_REDIS_URL): configure them in the workers' "
                           "environment instead")
    key = request.headers.get("idempotency-key")
    digest = None
    if key is not None:
        if not IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, "invalid_idempotency_key",
                           "Idempotency-Key must be 1-200 printable ASCII characters")
        digest = await request_hash(request, workflow)
        try:
            first = await jobs.find_key(key, digest)
        except IdempotencyConflict as exc:
            raise conflict(exc.job) from None
        if first is not None:
            return await replay(request, jobs, first, background)
    if local:
        runner.supervisor.check_available()
    admission = runner.admission if local else jobs.admission
    async with await admission.acquire() as slot:
        run = await build()
        run.workflow = workflow
        run.storage, run.credentials = upload, credentials_of(envelope)
        # before a job is accepted: a model file on its way is a 503 now, not a failed job
        check_pulling(graph_model_files(run.graph), runner.models, runner.settings.retry_after)
        if not background and key is None and local:
            return model_response(await runner.run(run))
        sub = Submission(run, workflow, envelope.webhook, envelope.webhook_v2, key, digest)
        try:
            job, created = await jobs.submit(sub, slot)
        except IdempotencyConflict as exc:
            raise conflict(exc.job) from None
    if not created:  # a concurrent request with the same key won
        return await replay(request, jobs, job, background)
    if background:
        return accepted(request, job)
    return finished(await jobs.wait(job.id))


def upload_credentials(envelope: Envelope, upload: Target) -> bool:
    """True when the request carries credentials its output upload would use: the block's
    own, or request headers matching an `http_upload` URL."""
    if getattr(upload, "credentials", None):
        return True
    creds = credentials_of(envelope)
    return (creds is not None and isinstance(upload, HttpUpload)
            and bool(creds.headers_for(httpx.URL(upload.url("x")))))


async def check_webhooks(envelope: Envelope, runner: Runner) -> None:
    """400 without a signing secret for webhook_v2; 422 for a URL the guard refuses."""
    if envelope.webhook_v2 and not runner.sender.signing:
        raise ApiError(400, "webhook_not_configured",
                       "webhook_v2 needs a signing secret: the operator must set "
                       "COMFYGEN_WEBHOOK_SECRET (or use `webhook`, which is unsigned)")
    for name in ("webhook", "webhook_v2"):
        url = getattr(envelope, name)
        if url is None:
            continue
        try:
            await runner.sender.check(url)
        except (UrlRefused, FetchError) as exc:
            raise ApiError(422, "invalid_input", f"invalid request: {name}: {exc.message}",
                           detail=[{"loc": ["body", name], "msg": exc.message,
                                    "type": exc.reason}]) from None


async def request_hash(request: Request, workflow: str) -> str:
    """A digest of what was asked (credentials left out), to tell a retry from a new request."""
    raw = await request.body()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = hashlib.sha256(raw).hexdigest()
    if isinstance(body, dict):
        body.pop("credentials", None)
        for name in ("s3", "azure_blob", "azure_blob_upload", "hf_upload"):
            if isinstance(body.get(name), dict):  # an upload block's own credentials
                body[name].pop("credentials", None)
    files = uploads_digest(getattr(request.state, "uploads", None) or {})
    payload = json.dumps({"workflow": workflow, "body": body, "files": files}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


async def replay(request: Request, jobs: JobManager, job: Job, background: bool) -> Response:
    """The answer of the first request made with this Idempotency-Key."""
    if background:
        response = accepted(request, job)
    else:
        response = finished(job if job.terminal else await jobs.wait(job.id))
    response.headers["Idempotent-Replayed"] = "true"
    return response


def conflict(job: Job) -> ApiError:
    return ApiError(422, "idempotency_key_reused",
                    f"this Idempotency-Key was already used by job {job.id} for a different "
                    "request; use a new key for a new request", job_id=job.id)


def accepted(request: Request, job: Job) -> Response:
    """202: comfyui-api's body plus the job id and where to follow it."""
    body = Accepted(id=job.meta.get("request_id"), prompt=job.meta.get("prompt"),
                    input=job.meta.get("input"), job_id=job.id, state=job.state.value,
                    **job_links(job.id))
    headers = {"Location": f"/jobs/{job.id}"}
    if wants_async(request):
        headers["Preference-Applied"] = "respond-async"
    return model_response(body, 202, headers, exclude={"input"} if body.input is None else None)


def model_response(body: BaseModel, status: int = 200, headers: dict[str, str] | None = None,
                   *, exclude: set[str] | None = None) -> Response:
    """A declared response model as the JSON body (so /openapi.json and the wire agree).

    Encoded once, by orjson: the same bytes as `model_dump_json` (key order, UTF-8, floats),
    an order of magnitude faster on megabytes of base64."""
    try:
        content = orjson.dumps(body.model_dump(mode="json", exclude=exclude),
                               option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, say
        content = body.model_dump_json(exclude=exclude).encode()
    return Response(content, status, headers=headers, media_type="application/json")


def json_response(content: Any, status: int = 200) -> Response:
    """A JSON body encoded by orjson (what `JSONResponse` sends, without its slow encoder)."""
    try:
        body = orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, say
        body = json.dumps(content, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()
    return Response(body, status, media_type="application/json")


def finished(job: Job) -> Response:
    """A final job as the sync answer it stands for."""
    if job.state.value == "succeeded":
        return json_response(job.result)
    error = dict(job.error or {"error": f"job {job.state.value}", "type": job.state.value})
    status = int(error.pop("status", 409 if job.state.value == "cancelled" else 500))
    return json_response(error, status)




ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "ComfyUI rejected the graph: `node_errors` names node, input, reason"},
    401: {"description": "The API key is missing or wrong (when the server requires one)"},
    413: {"description": "The request body or a media file is too large"},
    415: {"description": "A media file is not of an accepted type"},
    422: {"description": "Invalid input: `detail` lists field paths (live choices included)"},
    424: {"description": "A model file the workflow needs is missing (file and folder named)"},
    429: {"description": "ComfyUI's queue is full; see Retry-After"},
    500: {"description": "A node failed while running: node id, type and message"},
    503: {"description": "ComfyUI is unavailable (down, restarting); see Retry-After"},
    504: {"description": "The request timed out; its ComfyUI job was cancelled"},
}

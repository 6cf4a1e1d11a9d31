"""`POST /api/v2/jobs`: what a submission may contain, turned into a comfygen job.

Order: the body's shape (422 `invalid_request`), the Idempotency-Key (single use, 422
`idempotency_key_reuse`), the graph (raw, UI-converted or a typed workflow's), its `core/ASSET`
references (422 `missing_asset`), media values and model URLs as on `/prompt`
(`server.media.graph`), its validation against the live node definitions (422
`invalid_workflow`), admission (429 `queue_full`), then the same `submit` as `/jobs`."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comfygen.comfy.errors import ComfyError
from comfygen.errors import Problem, Severity
from comfygen.nodedefs import NodeDefs
from comfygen.workflow.api_format import validate_api_graph
from comfygen.workflow.ui_format import is_ui_format
from comfygen.workflow.ui_to_api import convert_ui_workflow
from server.errors import ApiError
from server.execution.runner import Run, Runner
from server.jobs import Job
from server.jobs.manager import Submission
from server.media.attachments import Attachments
from server.models.on_demand import JobModels
from server.security import FetchError, UrlRefused
from server.v2.assets import AssetStore, display_name
from server.v2.shared_assets import SharedAssetStore

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
KEY_PREFIX = "v2:"
"""Keys of `/api/v2` live apart from the keys of `/jobs` and `/workflow` (other semantics)."""
ASSET_TYPE = "core/ASSET"


class JobRequest(BaseModel):
    """The body of `POST /api/v2/jobs`."""

    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] | str = Field(description=(
        "An API-format graph; or (comfygen extension) the name `<model>/<name>` of a typed "
        "workflow, whose input goes in `inputs`"))
    inputs: dict[str, Any] | None = Field(default=None, description=(
        "comfygen extension: the typed workflow's input, validated by its generated model"))
    extra_data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    convert_ui: bool = Field(default=False, description=(
        "comfygen extension: convert a UI-format graph instead of refusing it"))
    webhook_v2: str | None = Field(default=None, description=(
        "comfygen extension: a URL that gets `prompt.complete` / `prompt.failed`, signed"))


def invalid_workflow(message: str, problems: list[Problem] | None = None,
                     **details: Any) -> ApiError:
    """422 `invalid_workflow`; `node_errors` maps node ids to `[{field, reason}]`."""
    node_errors: dict[str, list[dict[str, Any]]] = {}
    for p in problems or []:
        node_errors.setdefault(p.node or "", []).append({"field": p.input, "reason": p.message})
    if node_errors:
        details["node_errors"] = node_errors
    return ApiError(422, "invalid_workflow", message, **details)


async def create(request: Request, body: JobRequest,
                 assets: AssetStore | SharedAssetStore | None) -> Job:
    """The new job (never a replay: a key is single use under the contract)."""
    jobs = request.app.state.jobs  # JobManager or SharedJobs: the engine of /jobs
    runner: Runner = request.app.state.runner
    extra = check_extra_data(body.extra_data, jobs.local)
    if body.metadata:
        raise ApiError(422, "metadata_not_supported",
                       "job metadata labels are not stored by comfygen; leave out `metadata`",
                       field="metadata")
    key = request.headers.get("idempotency-key")
    digest = None
    if key is not None:
        if not IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, "invalid_request",
                           "Idempotency-Key must be 1-200 printable ASCII characters")
        key = KEY_PREFIX + key
        first = await jobs.find_key(key, None)
        if first is not None:
            raise reused(first)
        digest = hashlib.sha256(json.dumps(body.model_dump(exclude={"extra_data"}), sort_keys=True,
                                           default=str).encode()).hexdigest()
    if body.webhook_v2 is not None:
        await check_webhook(body.webhook_v2, runner)
    graph, workflow, data = await build_graph(request, body, runner)
    run = Run(id=str(uuid.uuid4()), graph=graph, input=data, workflow=workflow, extra_data=extra)
    # shared jobs: the files travel with the job (Redis) to the worker that runs it
    attachments = None if jobs.local else Attachments(runner.settings.shared_media_max_bytes)
    models = None if jobs.local else JobModels(runner.media.guard, None)
    if jobs.local:
        runner.supervisor.check_available()
    admission = runner.admission if jobs.local else jobs.admission
    try:
        # a full queue refuses before any file is fetched or copied
        async with await admission.acquire() as slot:
            run.uploads = await resolve_assets(graph, assets, runner, attachments)
            if workflow == "prompt":
                run.uploads += await graph_conveniences(graph, run.id, runner, attachments,
                                                        models)
            if attachments is not None and models is not None:
                run.attachments, run.models = attachments.files, tuple(models.wanted)
            await validate(graph, runner, jobs.local)
            sub = Submission(run, workflow, None, body.webhook_v2, key, digest)
            job, created = await jobs.submit(sub, slot)
    except BaseException:
        runner.remove_uploads(run)
        raise
    if not created:  # a concurrent request with the same key won
        runner.remove_uploads(run)
        raise reused(job)
    return job


def check_extra_data(extra: dict[str, Any] | None, local: bool) -> dict[str, str] | None:
    """The contract's closed `extra_data`: only `api_key_comfy_org`, a string, handed to
    ComfyUI with the prompt and never stored (so not carried by shared jobs)."""
    if extra is None:
        return None
    unknown = sorted(set(extra) - {"api_key_comfy_org"})
    if unknown or not isinstance(extra.get("api_key_comfy_org"), str):
        raise ApiError(422, "invalid_request", "extra_data accepts only `api_key_comfy_org`, "
                       "a string" + (f" (not {', '.join(unknown)})" if unknown else ""),
                       field="extra_data")
    if not local:
        raise ApiError(501, "extra_data_not_shared", "extra_data (a partner-node key) is never "
                       "stored, so shared jobs (COMFYGEN_REDIS_URL) cannot carry it to a "
                       "worker; configure the key on the workers' ComfyUI", field="extra_data")
    return {"api_key_comfy_org": extra["api_key_comfy_org"]}


def reused(job: Job) -> ApiError:
    return ApiError(422, "idempotency_key_reuse",
                    f"this Idempotency-Key was already used (job {job.id}); keys are single "
                    "use: poll that job instead of resubmitting", job_id=job.id)


async def check_webhook(url: str, runner: Runner) -> None:
    if not runner.sender.signing:
        raise ApiError(400, "webhook_not_configured",
                       "webhook_v2 needs a signing secret: the operator must set "
                       "COMFYGEN_WEBHOOK_SECRET", field="webhook_v2")
    try:
        await runner.sender.check(url)
    except (UrlRefused, FetchError) as exc:
        raise ApiError(422, "invalid_request", f"webhook_v2: {exc.message}",
                       field="webhook_v2", reason=exc.reason) from None


async def nodedefs(runner: Runner) -> NodeDefs:
    """The live node definitions (published by a worker in the shared mode)."""
    try:
        return await runner.supervisor.client.node_info.get()
    except ComfyError as exc:
        raise ApiError(503, "comfyui_unavailable", f"node definitions unavailable: {exc}",
                       headers={"Retry-After": str(runner.settings.retry_after)}) from None


async def build_graph(request: Request, body: JobRequest, runner: Runner
                      ) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """(API-format graph, workflow label, typed input) of the submission."""
    if isinstance(body.workflow, str):
        return typed(request, body.workflow, body.inputs)
    if body.inputs is not None:
        raise ApiError(422, "invalid_workflow", "`inputs` goes with a typed workflow name "
                       "(`\"workflow\": \"<model>/<name>\"`), not with a graph", field="inputs")
    if is_ui_format(body.workflow):
        if not body.convert_ui:
            raise ApiError(422, "workflow_format_ui",
                           "this is a UI-format export; export the workflow in API format, or "
                           "send `\"convert_ui\": true` to have comfygen convert it")
        graph, problems = convert_ui_workflow(body.workflow, await nodedefs(runner))
        errors = [p for p in problems if p.severity == Severity.ERROR]
        if errors:
            raise invalid_workflow(f"the UI-format workflow cannot be converted: {errors[0]}",
                                   errors)
        return graph, "prompt", None
    return copy.deepcopy(body.workflow), "prompt", None


def typed(request: Request, name: str, inputs: dict[str, Any] | None
          ) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A generated workflow's graph built from its validated input (422 naming each field)."""
    registry = request.app.state.registry
    wf = registry.get(name)
    if wf is None:
        known = ", ".join(sorted(registry)) or "none"
        raise ApiError(422, "invalid_workflow", f"no typed workflow {name!r}: a string "
                       f"`workflow` names one of: {known}", field="workflow")
    if wf.media:
        raise ApiError(422, "invalid_workflow", f"workflow {name!r} takes media inputs: run it "
                       f"at /workflow/{wf.path}, or submit its graph with core/ASSET references")
    try:
        data = wf.input_model.model_validate(inputs or {})
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
                  for e in exc.errors()]
        shown = "; ".join(f"inputs.{e['field']}: {e['reason']}" for e in errors[:5])
        raise ApiError(422, "invalid_request", f"invalid inputs: {shown}",
                       errors=errors) from None
    return wf.build(data), wf.path, data.model_dump(mode="json")


async def resolve_assets(graph: dict[str, Any], assets: AssetStore | SharedAssetStore | None,
                         runner: Runner,
                         attachments: Attachments | None) -> tuple[str, ...]:
    """Replace each `core/ASSET` reference by a copy of its bytes in ComfyUI's input folder
    (with `attachments`, a shared job: in the job's files, staged by its worker)."""
    refs = [(node, name, value) for node, spec in graph.items() if isinstance(spec, dict)
            for name, value in (spec.get("inputs") or {}).items()
            if isinstance(value, dict) and value.get("__type") == ASSET_TYPE]
    if not refs:
        return ()
    if assets is None:
        raise ApiError(503, "assets_unavailable", "the asset store is not available")
    uploaded: list[str] = []
    try:
        for node, name, ref in refs:
            info = ref.get("info")
            asset_id = info.get("id") if isinstance(info, dict) else None
            record = await assets.get(asset_id) if isinstance(asset_id, str) else None
            if record is None:
                raise ApiError(422, "missing_asset", f"node {node} input {name!r}: no asset "
                               f"{asset_id!r}; upload it with POST /api/v2/assets first",
                               missing_ids=[asset_id], node_id=node, input=name)
            ext = (display_name(record.file_path) or "").rpartition(".")[2][:8] or "bin"
            filename = f"v2-{uuid.uuid4().hex[:12]}-{record.hash[7:23]}.{ext}"
            try:
                data = await assets.read(record)
            except LookupError:
                raise ApiError(422, "missing_asset", f"node {node} input {name!r}: the bytes "
                               f"of asset {asset_id!r} expired; upload it again",
                               missing_ids=[asset_id], node_id=node, input=name) from None
            answer = await (attachments or runner.supervisor.client).upload(
                data, filename, subfolder="", overwrite=False,
                content_type=record.content_type)
            stored = f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") \
                else answer["name"]
            uploaded.append(stored)
            graph[node]["inputs"][name] = stored
    except ComfyError as exc:
        runner.remove_uploads(Run(id="", graph={}, uploads=tuple(uploaded)))
        raise ApiError(503, "comfyui_unavailable", f"uploading an asset to ComfyUI: {exc}",
                       headers={"Retry-After": str(runner.settings.retry_after)}) from None
    except BaseException:
        runner.remove_uploads(Run(id="", graph={}, uploads=tuple(uploaded)))
        raise
    return tuple(uploaded)


async def graph_conveniences(graph: dict[str, Any], run_id: str, runner: Runner,
                             attachments: Attachments | None, models: JobModels | None
                             ) -> tuple[str, ...]:
    """The media values (base64, data URI, URL) and model URLs of a raw graph, as on
    `POST /prompt` (`server.media.graph`); the names uploaded."""
    if attachments is None or models is None:
        defs = await nodedefs(runner)
    else:
        try:  # what a worker published (none yet: the graph goes as it is, its ComfyUI checks)
            defs = await runner.supervisor.client.node_info.get()
        except ComfyError:
            return ()
    return await runner.graph_media(graph, defs, run_id, None, attachments, models,
                                    body_key="workflow")


async def validate(graph: dict[str, Any], runner: Runner, local: bool) -> None:
    """422 `invalid_workflow` for what the node definitions already rule out: unknown classes,
    dangling links, missing required inputs (ComfyUI checks the rest when it runs the job)."""
    try:
        defs = await nodedefs(runner)
    except ApiError:
        if local:
            raise
        return  # no worker has published its node definitions yet: its ComfyUI validates
    _, problems = validate_api_graph(graph, defs)
    for node_id, spec in graph.items():
        node_def = defs.get(spec.get("class_type", "")) if isinstance(spec, dict) else None
        if node_def is None:
            continue
        given = spec.get("inputs") or {}
        for idef in node_def.inputs.values():
            if idef.section == "required" and idef.name not in given:
                problems.append(Problem("<workflow>", f"required input {idef.name!r} is "
                                        "missing", node=str(node_id), input=idef.name))
            elif isinstance(given.get(idef.name), dict):
                problems.append(Problem("<workflow>", "a value is a literal or a link "
                                        "[node_id, output]", node=str(node_id), input=idef.name))
    errors = [p for p in problems if p.severity == Severity.ERROR]
    if errors:
        first = errors[0]
        where = f"node {first.node}" + (f" input {first.input!r}" if first.input else "")
        raise invalid_workflow(f"{where}: {first.message}", errors)


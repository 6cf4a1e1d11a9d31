"""`POST /workflow/<model>/<name>`: one route per generated workflow."""


import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from comfygen.comfy.errors import ComfyError
from comfygen.comfy.model_files import model_folder
from comfygen.comfy.object_info import ObjectInfoCache
from comfygen.comfy.supervisor import Supervisor
from comfygen.runtime import Workflow, WorkflowInput
from comfygen.runtime.choices import ChoiceError, check_choices
from server.errors import ApiError, ErrorBody
from server.execution.results import WorkflowResponse
from server.execution.runner import Run, Runner
from server.media.attachments import Attachments
from server.media.multipart import media_route
from server.observability import bind
from server.runs.answer import (
    ERROR_RESPONSES,
    answer,
    check_webhooks,
    credentials_of,
    model_response,
)
from server.runs.json_route import JsonRoute
from server.runs.schemas import (
    Accepted,
    DryRunResponse,
    Envelope,
    example_input,
    operation_name,
)
from server.runs.schemas import workflow_request_model as request_model

PREFIX = "/workflow"


def build_router(registry: Mapping[str, Workflow]) -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    for key in sorted(registry):
        wf = registry[key]
        responses = {k: {**v, "model": ErrorBody} for k, v in ERROR_RESPONSES.items()}
        model = request_model(wf)  # one class for both routes: one schema name
        route_class = media_route(frozenset(wf.media), JsonRoute) if wf.media else JsonRoute
        router.add_api_route(
            f"/{wf.path}", _endpoint(wf, model), methods=["POST"], summary=wf.summary,
            route_class_override=route_class,
            description=wf.description, tags=[wf.model],
            operation_id=operation_name(wf),
            responses={200: {"model": WorkflowResponse}, 202: {"model": Accepted}, **responses},
        )
        router.add_api_route(
            f"/{wf.path}/validate", _dry_run_endpoint(wf, model), methods=["POST"],
            summary=f"Dry run: {wf.summary}",
            route_class_override=route_class,
            description=(f"Check a request for `POST /workflow/{wf.path}` without running it: "
                         "200 with the resolved input and the graph that would be sent, or the "
                         "error the real call would answer. Nothing is queued in ComfyUI."),
            tags=[wf.model], operation_id=f"validate_{operation_name(wf)}",
            responses={200: {"model": DryRunResponse},
                       **{k: v for k, v in responses.items() if k not in (429, 500, 504)}},
        )
    return router


def _endpoint(wf: Workflow, model: type[Envelope]) -> Callable[..., Coroutine[Any, Any, Response]]:
    examples = {"default": {"summary": "A working example", "value": {"input": example_input(wf)}}}

    async def run_workflow(
        request: Request,
        body: Annotated[model, Body(openapi_examples=examples)],  # type: ignore[valid-type]
    ) -> Response:
        # No dependencies: `JsonRoute` then takes a valid request straight here.
        runner: Runner = request.app.state.runner
        request.state.request_id = body.id
        return await answer(request, body, runner, wf.path,
                            lambda: prepare_run(wf, body, request, runner))

    run_workflow.__name__ = f"run_{wf.model}_{wf.name}"
    return run_workflow


def _dry_run_endpoint(wf: Workflow, model: type[Envelope]
                      ) -> Callable[..., Coroutine[Any, Any, Response]]:
    examples = {"default": {"summary": "A working example", "value": {"input": example_input(wf)}}}

    async def validate_workflow(
        request: Request,
        body: Annotated[model, Body(openapi_examples=examples)],  # type: ignore[valid-type]
    ) -> Response:
        runner: Runner = request.app.state.runner
        request.state.request_id = body.id
        bind(workflow=wf.path)
        await check_webhooks(body, runner)
        runner.supervisor.check_available()
        run = await prepare_run(wf, body, request, runner, dry_run=True)
        graph = await runner.dry_run(run)
        return model_response(DryRunResponse(id=body.id, input=run.input or {}, prompt=graph))

    validate_workflow.__name__ = f"validate_{wf.model}_{wf.name}"
    return validate_workflow


async def prepare_run(wf: Workflow, body: Any, request: Request, runner: Runner, *,
                      dry_run: bool = False) -> Run:
    """The checks and the graph of one request, shared by the real call and its dry run: live
    choices (422), media (413/415/422; uploaded unless a dry run), then the builder."""
    data: WorkflowInput = body.input
    attachments = None
    if not request.app.state.jobs.local:
        # the node definitions a worker published (none yet: its ComfyUI validates)
        with contextlib.suppress(ComfyError):
            await check_choices_in(wf, data, runner.supervisor.client.node_info)
        # media are carried with the job (Redis) and staged by the worker that runs it
        attachments = Attachments(runner.settings.shared_media_max_bytes)
    else:
        await check_live_choices(wf, data, runner.supervisor)
    data = await runner.media.resolve(
        wf, data, body.id, attachments or runner.supervisor.client,
        uploads=getattr(request.state, "uploads", None), credentials=credentials_of(body),
        dry_run=dry_run)
    # After resolve, every media value that is set names a file it uploaded (or would).
    uploaded = tuple(v for f in sorted(wf.media) if (v := getattr(data, f)) is not None)
    fields = {(t.node, t.input): name for name, ts in wf.targets.items() for t in ts}
    return Run(id=body.id, graph=wf.build(data), nodes=tuple(wf.outputs) or None,
               convert=body.convert_output, input=data.model_dump(mode="json"),
               fields=fields, uploads=() if dry_run else uploaded,
               attachments=attachments.files if attachments is not None else {})


async def check_live_choices(wf: Workflow, data: WorkflowInput, supervisor: Supervisor) -> None:
    """422 for a value the live ComfyUI does not offer (refreshing /object_info once first).

    A model file at its default is not checked here: the model check then names every missing
    file of the graph at once (424).
    """
    if not wf.choices:
        return
    supervisor.check_available()
    await check_choices_in(wf, data, supervisor.client.node_info)


async def check_choices_in(wf: Workflow, data: WorkflowInput, node_info: ObjectInfoCache) -> None:
    """422 for a value these node definitions do not offer."""
    if not wf.choices:
        return

    def relevant(errors: list[ChoiceError]) -> list[ChoiceError]:
        """A model file at its default (left out, or restated as typed clients do) is left to
        the model check, which names every missing file at once (424)."""
        return [e for e in errors if model_folder(wf.choices[e.field].node_class,
                                                  wf.choices[e.field].input) is None
                or (e.field in data.model_fields_set
                    and e.value != type(data).model_fields[e.field].default)]

    errors = await node_info.lookup(
        lambda nodedefs: relevant(check_choices(wf, data, nodedefs)))
    if not errors:
        return
    detail = []
    for e in errors:
        msg = e.message
        folder = model_folder(wf.choices[e.field].node_class, wf.choices[e.field].input)
        if folder:
            msg += f" (model files in ComfyUI's models/{folder} folder)"
        detail.append({"loc": ["body", "input", e.field], "msg": msg,
                       "type": "value_not_available", "input": e.value,
                       "ctx": {"allowed": list(e.allowed)}})
    shown = "; ".join(f"input.{d['loc'][2]}: {d['msg']}" for d in detail)
    raise ApiError(422, "invalid_input", f"invalid request: {shown}", detail=detail)


__all__ = ["build_router", "check_live_choices", "ErrorBody"]

"""`POST /prompt`: run a raw API-format graph with the same envelope as the workflows."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from comfygen.comfy.errors import ComfyError
from server.errors import ErrorBody
from server.execution.results import RunResponse
from server.execution.runner import Run, Runner
from server.media.attachments import Attachments
from server.models.on_demand import JobModels
from server.runs.answer import ERROR_RESPONSES, answer, credentials_of
from server.runs.json_route import JsonRoute
from server.runs.schemas import Accepted, PromptRequest
from server.security import UrlCredentials

router = APIRouter(tags=["prompt"], route_class=JsonRoute)


@router.post(
    "/prompt", summary="Submit a prompt",
    description="Run an API-format ComfyUI graph. Every file any node outputs is returned. "
                "An input of a node that loads a file (LoadImage, LoadImageMask, video and "
                "audio loaders) may be base64, a data URI or an http(s) URL: it is checked and "
                "uploaded, and the input names the upload. A loader input (checkpoint, LoRA, VAE, "
                "...) may be an http(s):// or hf:// URL: the file is downloaded into its models "
                "folder (once, cached) and the input names it. "
                "`Prefer: respond-async` answers 202 with a job to follow.",
    responses={200: {"model": RunResponse}, 202: {"model": Accepted},
               **{k: {**v, "model": ErrorBody} for k, v in ERROR_RESPONSES.items()}},
)
async def submit_prompt(request: Request, body: PromptRequest) -> Response:
    runner: Runner = request.app.state.runner  # no dependencies: see JsonRoute
    request.state.request_id = body.id

    async def build() -> Run:
        graph = copy.deepcopy(body.prompt)
        shared = not request.app.state.jobs.local
        attachments = Attachments(runner.settings.shared_media_max_bytes) if shared else None
        credentials = credentials_of(body)
        models = JobModels(runner.media.guard, credentials) if shared else None
        uploads = await prompt_media(graph, body.id, runner, credentials, attachments, models)
        return Run(id=body.id, graph=graph, convert=body.convert_output, uploads=uploads,
                   attachments=attachments.files if attachments is not None else {},
                   models=tuple(models.wanted) if models is not None else ())

    return await answer(request, body, runner, "prompt", build)


async def prompt_media(graph: dict[str, Any], request_id: str, runner: Runner,
                       credentials: UrlCredentials | None,
                       attachments: Attachments | None,
                       job_models: JobModels | None = None) -> tuple[str, ...]:
    """Upload the media values of `graph` (in place), or with shared jobs keep them in
    `attachments` and its model URLs in `job_models` for the worker; the names uploaded. Without node definitions (ComfyUI not up
    yet, or no worker published them) the graph is left as it is: ComfyUI validates it."""
    try:
        nodedefs = await runner.supervisor.client.node_info.get()
    except ComfyError:
        return ()
    return await runner.graph_media(graph, nodedefs, request_id, credentials, attachments,
                                    job_models)

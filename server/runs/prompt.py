"""`POST /prompt`: run a raw API-format graph with the same envelope as the workflows."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from comfygen.comfy.errors import ComfyError
from server.deps import RunnerDep
from server.errors import ApiError, ErrorBody
from server.execution.results import RunResponse
from server.execution.runner import Run, Runner
from server.media.graph import graph_media, graph_models, resolve_graph_media
from server.runs.answer import ERROR_RESPONSES, answer, credentials_of
from server.runs.schemas import Accepted, PromptRequest
from server.security import UrlCredentials

router = APIRouter(tags=["prompt"])


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
async def submit_prompt(request: Request, body: PromptRequest, runner: RunnerDep) -> Response:
    request.state.request_id = body.id

    async def build() -> Run:
        graph = copy.deepcopy(body.prompt)
        uploads = await prompt_media(request, graph, body.id, runner,
                                     credentials_of(body))
        return Run(id=body.id, graph=graph, convert=body.convert_output, uploads=uploads)

    return await answer(request, body, runner, "prompt", build)


async def prompt_media(request: Request, graph: dict[str, Any], request_id: str, runner: Runner,
                       credentials: UrlCredentials | None) -> tuple[str, ...]:
    """Upload the media values of `graph` (in place); the names uploaded. Without node
    definitions (ComfyUI not up yet) the graph is left as it is: the run answers 503."""
    client = runner.supervisor.client
    try:
        nodedefs = await client.node_info.get()
    except ComfyError:
        return ()
    if not request.app.state.jobs.local:
        given = [*graph_media(graph, nodedefs), *graph_models(graph, nodedefs)]
        if given:
            names = ", ".join(item.field for item in given)
            raise ApiError(501, "media_not_shared",
                           f"media values ({names}) are not supported with shared jobs "
                           "(COMFYGEN_REDIS_URL) yet: send file names, or use a single-machine "
                           "server")
        return ()
    models = runner.on_demand.for_graph(credentials) if runner.on_demand is not None else None
    return await resolve_graph_media(graph, nodedefs, runner.media, request_id, client,
                                     credentials=credentials, models=models)

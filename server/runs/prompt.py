"""`POST /prompt`: run a raw API-format graph with the same envelope as the workflows."""

from __future__ import annotations

import copy

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.deps import RunnerDep
from server.errors import ErrorBody
from server.execution.results import RunResponse
from server.execution.runner import Run
from server.runs.answer import ERROR_RESPONSES, answer
from server.runs.schemas import Accepted, PromptRequest

router = APIRouter(tags=["prompt"])


@router.post(
    "/prompt", summary="Submit a prompt",
    description="Run an API-format ComfyUI graph. Every file any node outputs is returned. "
                "`Prefer: respond-async` answers 202 with a job to follow.",
    responses={200: {"model": RunResponse}, 202: {"model": Accepted},
               **{k: {**v, "model": ErrorBody} for k, v in ERROR_RESPONSES.items()}},
)
async def submit_prompt(request: Request, body: PromptRequest, runner: RunnerDep) -> Response:
    request.state.request_id = body.id

    async def build() -> Run:
        return Run(id=body.id, graph=copy.deepcopy(body.prompt), convert=body.convert_output)

    return await answer(request, body, runner, "prompt", build)

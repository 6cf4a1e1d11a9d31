"""What the run endpoints share: sync answer or 202 + webhook job."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from comfygen.security import FetchError, UrlRefused
from server.errors import ApiError
from server.runner import Job, Runner
from server.schemas import Envelope


async def answer(request: Request, job: Job, envelope: Envelope, runner: Runner) -> JSONResponse:
    """Run now and answer 200, or accept (202) and deliver to the webhook(s) later."""
    if not (envelope.webhook or envelope.webhook_v2):
        return JSONResponse(await runner.run(job))
    if envelope.webhook_v2 and not runner.sender.secret:
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
            raise ApiError(422, "invalid_input", f"invalid request: {name}: {exc}", detail=[
                {"loc": ["body", name], "msg": str(exc), "type": "url_refused"}]) from exc
    runner.supervisor.check_available()
    runner.spawn(runner.run_with_webhooks(job, envelope.webhook, envelope.webhook_v2))
    body: dict[str, Any] = {"id": job.id, "status": "ok", "prompt": job.graph}
    if job.input is not None:
        body["input"] = job.input
    return JSONResponse(body, 202)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "ComfyUI rejected the graph: `node_errors` names node, input, reason"},
    422: {"description": "Invalid input: `detail` lists field paths (live choices included)"},
    424: {"description": "A model file the workflow needs is missing (file and folder named)"},
    500: {"description": "A node failed while running: node id, type and message"},
    503: {"description": "ComfyUI is unavailable (down, restarting); see Retry-After"},
    504: {"description": "The request timed out; its ComfyUI job was cancelled"},
}

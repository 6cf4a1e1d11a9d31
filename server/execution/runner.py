"""Run one request on ComfyUI: submit, wait, fetch outputs, convert, clean up, answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pybase64

from comfygen.comfy.errors import ComfyError
from comfygen.comfy.files import (
    fresh_outputs,
    lost_outputs,
    media_of,
    name_outputs,
    read_local,
    remove_local,
    sent_files,
)
from comfygen.comfy.models import OutputFile, PromptResult
from comfygen.comfy.supervisor import Supervisor
from comfygen.nodedefs import NodeDefs
from comfygen.parser import output_nodes
from comfygen.storage import Target
from server.errors import ApiError, from_comfy
from server.execution.admission import Admission
from server.execution.outputs import ConvertOutput, can_convert, convert, converted_name
from server.execution.preflight import check_models, validate_graph
from server.execution.results import (
    NodeOutput,
    OutputFileInfo,
    RunResponse,
    RunStats,
    WorkflowResponse,
)
from server.execution.uploads import Uploader
from server.media.attachments import Attachments
from server.media.graph import ModelFetch, resolve_graph_media, resolve_job_media
from server.media.inputs import MediaResolver
from server.models.on_demand import ModelsOnDemand
from server.models.puller import ModelPuller
from server.observability import observe_run, run_stats
from server.security import UrlCredentials
from server.settings import Settings
from server.webhooks.sender import WebhookSender
from server.webhooks.system_events import SystemEvents

log = logging.getLogger("comfygen.server")


@dataclass
class Run:
    """What one request asks ComfyUI to do, and what it left in ComfyUI's input folder."""

    id: str
    graph: dict[str, Any]
    nodes: tuple[str, ...] | None = None  # outputs to return; None: every node
    convert: ConvertOutput | None = None
    input: dict[str, Any] | None = None
    fields: Mapping[tuple[str, str], str] = field(default_factory=dict)
    uploads: tuple[str, ...] = ()  # media this request put in ComfyUI's input folder
    attachments: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """Shared jobs: the bytes of `uploads` (name -> bytes), carried to the worker in Redis."""
    models: tuple[tuple[str, str, str, str], ...] = field(default=(), repr=False)
    """Shared jobs: (field, folder, url, file name) of the model URLs the worker downloads."""
    received: float = field(default_factory=time.monotonic)
    workflow: str = "prompt"  # metrics and log label: the workflow path, or "prompt"
    storage: Target | None = None  # upload outputs there; `images` then holds their URLs
    credentials: UrlCredentials | None = None  # the request's headers for http_upload URLs
    extra_data: Mapping[str, Any] | None = field(default=None, repr=False)
    """ComfyUI's `extra_data` (a partner-node API key): sent with the prompt, never stored."""


class Runner:
    """Executes runs and keeps track of background (job and webhook) work for draining."""

    def __init__(self, supervisor: Supervisor, settings: Settings, sender: WebhookSender) -> None:
        self.supervisor = supervisor
        self.settings = settings
        self.sender = sender
        self.media = MediaResolver(settings)
        self.system = SystemEvents.from_settings(settings)
        self.prompts: dict[str, str] = {}  # ComfyUI prompt id -> request id, while running
        if self.system.enabled:
            self.system.request_ids = self.prompts.get
            self.media.on_fetch = lambda data: self.system.file_event("file_downloaded", data)
            supervisor.client.watcher.listener = self.system.comfy_message
        self.uploader = Uploader(self.media.guard)
        self.admission = Admission(supervisor, settings.queue_limit, settings.retry_after)
        self.background: set[asyncio.Task[Any]] = set()
        self.models: ModelPuller | None = None  # model files pulled at start (models_pull)
        self.on_demand = ModelsOnDemand.from_settings(
            settings, self.media.guard,
            supervisor.process.base_dir if supervisor.process is not None else None)
        """Model files named by URL in requests (None: no models folder to write to)."""
        if self.on_demand is not None and self.system.enabled:
            self.on_demand.on_download = lambda data: self.system.file_event(
                "file_downloaded", data)

    @property
    def input_root(self) -> Path | None:
        """ComfyUI's input folder when reachable from here (uploaded media are removed)."""
        if self.supervisor.process is not None:
            return self.supervisor.process.base_dir / "input"
        return self.settings.comfyui_input_dir

    async def graph_media(self, graph: dict[str, Any], nodedefs: NodeDefs, request_id: str,
                          credentials: UrlCredentials | None, attachments: Attachments | None,
                          job_models: ModelFetch | None, *, body_key: str = "prompt"
                          ) -> tuple[str, ...]:
        """The media values and model URLs of a raw graph (`/prompt`, v2), replaced in place:
        uploaded to this ComfyUI and downloaded here, or with shared jobs (`attachments` and
        `job_models`) kept for the worker that will run it; the input names they take."""
        if attachments is not None and job_models is not None:
            return await resolve_job_media(graph, nodedefs, self.media, request_id, attachments,
                                           job_models, credentials=credentials,
                                           body_key=body_key)
        models = self.on_demand.for_graph(credentials) if self.on_demand is not None else None
        return await resolve_graph_media(graph, nodedefs, self.media, request_id,
                                         self.supervisor.client, credentials=credentials,
                                         models=models, body_key=body_key)

    def remove_uploads(self, run: Run) -> None:
        """Delete the media a run uploaded: nothing of a request stays behind in ComfyUI."""
        root = self.input_root
        if root is None:
            return
        for name in run.uploads:
            subfolder, _, filename = name.rpartition("/")
            remove_local(OutputFile(node="", kind="input", filename=filename,
                                    subfolder=subfolder, type="input"), {"input": root})

    @property
    def output_roots(self) -> dict[str, Path]:
        """The output folders where delivered files are deleted (none with `keep_outputs`)."""
        return {} if self.settings.keep_outputs else self.output_folders

    @property
    def output_folders(self) -> dict[str, Path]:
        """ComfyUI's output and temp folders when reachable from here: outputs are read from
        disk there instead of through /view."""
        if self.supervisor.process is not None:
            base = self.supervisor.process.base_dir
            return {"output": base / "output", "temp": base / "temp"}
        roots = {}
        if self.settings.comfyui_output_dir:
            roots["output"] = self.settings.comfyui_output_dir
        if self.settings.comfyui_temp_dir:
            roots["temp"] = self.settings.comfyui_temp_dir
        return roots

    async def run(self, run: Run, prompt_id: str | None = None) -> RunResponse:
        """The sync 200 body, or raise ApiError; `prompt_id` is ComfyUI's id for the prompt."""
        prompt_id = prompt_id or str(uuid.uuid4())
        with observe_run(run.workflow, prompt_id) as observed:
            self.prompts[prompt_id] = run.id
            try:
                response = await self._run(run, prompt_id)
            except ComfyError as exc:
                raise from_comfy(exc, self.settings.retry_after, run.fields) from exc
            finally:
                self.prompts.pop(prompt_id, None)
                self.remove_uploads(run)
            observed.succeeded(response.stats.model_dump())
            return response

    async def prepare(self, run: Run) -> dict[str, Any]:
        """The graph to send, once it passed the checks made before sending (ComfyUI up, model
        files installed); a dry run stops here, after ComfyUI's own graph checks."""
        self.supervisor.check_available()
        graph = name_outputs(run.graph, run.id)
        await check_models(graph, self.supervisor.client, run.fields, self.models,
                           self.settings.retry_after)
        return graph

    async def dry_run(self, run: Run) -> dict[str, Any]:
        """The graph a real run would send, or the ApiError it would answer; nothing queued."""
        try:
            graph = await self.prepare(run)
            await validate_graph(graph, self.supervisor.client, run.fields,
                                 self.settings.retry_after)
        except ComfyError as exc:
            raise from_comfy(exc, self.settings.retry_after, run.fields) from exc
        return graph

    async def _run(self, run: Run, prompt_id: str) -> RunResponse:
        graph = await self.prepare(run)
        client = self.supervisor.client
        try:  # cached (the checks above read them): which nodes' websocket images are outputs
            outputs: tuple[str, ...] | None = tuple(output_nodes(graph,
                                                                 await client.node_info.get()))
        except ComfyError:
            outputs = None
        submitted = time.monotonic()
        result = await client.run(fresh_outputs(graph), prompt_id,
                                  timeout=self.settings.request_timeout, extra_data=run.extra_data,
                                  keep_images=outputs)
        finished = time.monotonic()
        files = result.files(run.nodes)
        sent = (self.sent_images(result, run, files, outputs)
                if result.ws_images or not result.ws_whole else [])
        # one file (the usual case) is read on this task: a gathered task costs a loop turn
        datas = ([await self.fetch(files[0])] if len(files) == 1
                 else await asyncio.gather(*(self.fetch(f) for f in files)))
        if sent:
            files, datas = [*files, *(f for f, _ in sent)], [*datas, *(d for _, d in sent)]
        values_by_node: dict[str, dict[str, Any]] = {}
        for node, key, value in result.values(run.nodes):
            values_by_node.setdefault(node, {})[key] = value
        outputs: dict[str, NodeOutput] = {}
        images: list[str] = []
        filenames: list[str] = []
        stored: list[tuple[str, bytes, str]] = []
        for index, (file, data) in enumerate(zip(files, datas, strict=True)):
            name, content_type = file.filename, file.content_type
            if run.convert and can_convert(file, values_by_node.get(file.node, {})):
                try:
                    data = await asyncio.to_thread(convert, data, run.convert)
                except (OSError, ValueError) as exc:
                    raise ApiError(422, "convert_failed",
                                   f"could not convert {file.filename}: {exc}") from exc
                name = converted_name(file.filename, run.convert.format)
                content_type = "image/jpeg" if run.convert.format == "jpeg" else "image/webp"
            if run.storage is None:
                images.append(pybase64.b64encode_as_string(data))
            else:
                stored.append((name, data, content_type))
            filenames.append(name)
            node_out = outputs.setdefault(file.node, _node_output(graph, file.node))
            node_out.files.append(OutputFileInfo(
                kind=file.kind, media=media_of(content_type), filename=name,
                comfyui_filename=file.filename, subfolder=file.subfolder,
                type=file.type, content_type=content_type, index=index,
            ))
        for node, values in values_by_node.items():
            outputs.setdefault(node, _node_output(graph, node)).values = values
        for file in files:
            remove_local(file, self.output_roots)
        extra: dict[str, int] = {}
        if run.storage is not None:
            uploading = time.monotonic()
            images = await self.uploader.store(run.storage, stored, run.credentials)
            extra["upload_time"] = _ms(uploading, time.monotonic())  # comfyui-api's name
            for node_out in outputs.values():
                for info in node_out.files:
                    info.url = images[info.index]
        done = time.monotonic()
        fields: dict[str, Any] = {
            "id": run.id, "prompt": graph, "images": images, "filenames": filenames,
            "stats": RunStats(  # small: validated, unlike the megabytes of base64 below
                preprocess_time=_ms(run.received, submitted),
                comfy_round_trip=_ms(submitted, finished),
                comfy_execution=result.execution_ms,
                postprocess_time=_ms(finished, done),
                total_time=_ms(run.received, done),
                **run_stats(graph, result, run.received, finished, done), **extra,
            ),
            "outputs": outputs,
        }
        # Every field is built here with its declared type: skip validating (and copying)
        # megabytes of base64 once more.
        if run.input is not None:
            return WorkflowResponse.model_construct(**fields, input=run.input)
        return RunResponse.model_construct(**fields)

    def sent_images(self, result: PromptResult, run: Run, files: list[OutputFile],
                    outputs: tuple[str, ...] | None) -> list[tuple[OutputFile, bytes]]:
        """The images the graph's output nodes (`outputs`; None: not known) sent over the
        websocket; a 502 when an output node left nothing while the websocket was not there for
        the whole run (what it sent over it is lost: ComfyUI keeps no copy), once the run's
        saved `files` are removed."""
        lost = lost_outputs(result, outputs, run.nodes) if outputs is not None else []
        if lost:
            for file in files:
                remove_local(file, self.output_roots)
            raise ApiError(
                502, "outputs_lost",
                f"output node(s) {', '.join(lost)} left no file or value, and the websocket to "
                "ComfyUI was not connected for the whole run: images a node sends over it "
                "(SaveImageWebsocket and the like) are sent nowhere else; retry",
                nodes=lost, prompt_id=result.prompt_id)
        return sent_files(result, outputs, run.id, run.nodes)

    async def fetch(self, file: OutputFile) -> bytes:
        """An output's bytes: from disk when ComfyUI's folder is reachable, else over /view.
        Called once the prompt has ended, so the file is complete."""
        data = await read_local(file, self.output_folders)
        if data is None:
            data = await self.supervisor.client.fetch(file)
        return data

    # -- background work -----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def drain(self, timeout: float) -> None:
        """Let background jobs finish (up to `timeout`), then cancel what is left; then let
        system events go out for as long again."""
        try:
            await self._drain_background(timeout)
        finally:
            await self.system.drain(timeout)

    async def _drain_background(self, timeout: float) -> None:
        if not self.background:
            return
        _, pending = await asyncio.wait(set(self.background), timeout=timeout or None)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task


def _node_output(graph: Mapping[str, Any], node: str) -> NodeOutput:
    return NodeOutput(class_type=(graph.get(node) or {}).get("class_type"))


def _ms(a: float, b: float) -> int:
    return int((b - a) * 1000)

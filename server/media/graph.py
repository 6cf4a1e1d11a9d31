"""Media in raw API-format graphs (`POST /prompt`): a file-loading input given as base64, a data
URI or an http(s) URL is checked, uploaded to ComfyUI and replaced by the uploaded file's name.

Which inputs load a file from ComfyUI's input folder comes from the node definitions (an upload
combo: `InputDef.media_kind`, from `UPLOAD_OPTIONS`), never from a list of node names, so custom
loaders with an upload widget are covered too. A value the node already offers (a file in the
input folder), a link, or anything that reads as a file name stays as it is: ComfyUI validates it.

Models on demand, in the same pass: a loader input (a combo of a ComfyUI model folder:
`comfygen.comfy.model_files`) given as an http(s):// or hf:// URL is downloaded into that folder
by the `ModelFetch` the caller passes (server/models/on_demand.py) and replaced by the file's
name; the node definitions are then fetched again so the new file is a valid choice.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from comfygen.comfy.client import ComfyClient
from comfygen.comfy.model_files import model_folder
from comfygen.nodedefs import InputDef, MediaKind, NodeDef, NodeDefs
from server.errors import ApiError
from server.media.attachments import Attachments
from server.media.decode import MediaFile, decode_media
from server.media.errors import MediaError
from server.media.inputs import MediaResolver
from server.observability import metrics
from server.security.policy import UrlCredentials, merge_credentials

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{1,15}://", re.IGNORECASE)
_MODEL_URL = re.compile(r"^(https?|hf)://", re.IGNORECASE)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\s-]+$")
MIN_BASE64 = 64
"""Shorter values of the base64 alphabet are taken as file names (no image is this small)."""


@dataclass(frozen=True)
class GraphMedia:
    """One input of a graph that carries file contents (or a URL) instead of a file name."""

    node: str
    class_type: str
    input: str
    kind: MediaKind
    value: str
    root: str = "prompt"
    """The request body's key holding the graph (`prompt`; `workflow` in API v2)."""

    @property
    def field(self) -> str:
        """Where the value is in the request body, e.g. `prompt.10.inputs.image`."""
        return f"{self.root}.{self.node}.inputs.{self.input}"


@dataclass(frozen=True)
class GraphModel:
    """A loader input of a graph given as a URL: the file is downloaded into `folder`."""

    node: str
    class_type: str
    input: str
    folder: str
    url: str
    root: str = "prompt"

    @property
    def field(self) -> str:
        return f"{self.root}.{self.node}.inputs.{self.input}"


ModelFetch = Callable[[str, str, str], Awaitable[str]]
"""(field, folder, url) -> the file name the input must name; raises ApiError naming `field`."""


def _string_inputs(graph: Mapping[str, Any], nodedefs: NodeDefs
                   ) -> Iterator[tuple[str, NodeDef, str, str, InputDef]]:
    """(node id, its definition, input name, value, input definition) of every string input of
    a node ComfyUI knows: the one walk over a raw graph that media and models share."""
    for node_id, node in graph.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("inputs"), Mapping):
            continue
        nodedef = nodedefs.get(str(node.get("class_type")))
        if nodedef is None:
            continue
        for name, value in node["inputs"].items():
            idef = nodedef.input(name)
            if idef is not None and isinstance(value, str):
                yield str(node_id), nodedef, name, value, idef


def graph_models(graph: Mapping[str, Any], nodedefs: NodeDefs) -> list[GraphModel]:
    """The loader inputs of `graph` given as a model URL (not one of the node's choices)."""
    found: list[GraphModel] = []
    for node_id, nodedef, name, value, idef in _string_inputs(graph, nodedefs):
        if idef.kind != "COMBO" or idef.section == "hidden" or value in (idef.choices or ()):
            continue
        folder = model_folder(nodedef.class_type, name)
        if folder is not None and _MODEL_URL.match(value.strip()):
            found.append(GraphModel(node_id, nodedef.class_type, name, folder, value.strip()))
    return found


def carries_content(value: str, offered: tuple[Any, ...] | None) -> bool:
    """True when `value` is file contents or a URL to fetch, not the name of a file."""
    text = value.strip()
    if not text or (offered and value in offered):
        return False
    if text[:5].lower() == "data:" or _SCHEME.match(text):
        return True
    return len(text) >= MIN_BASE64 and _BASE64.match(text) is not None


def graph_media(graph: Mapping[str, Any], nodedefs: NodeDefs) -> list[GraphMedia]:
    """The file-loading inputs of `graph` whose value must be fetched or decoded, in node order."""
    return [GraphMedia(node_id, nodedef.class_type, name, idef.media_kind, value)
            for node_id, nodedef, name, value, idef in _string_inputs(graph, nodedefs)
            if idef.media_kind is not None and carries_content(value, idef.choices)]


async def resolve_graph_media(
    graph: dict[str, Any],
    nodedefs: NodeDefs,
    resolver: MediaResolver,
    request_id: str,
    client: ComfyClient | None,
    *,
    credentials: UrlCredentials | None = None,
    models: ModelFetch | None = None,
    body_key: str = "prompt",
    attachments: Attachments | None = None,
) -> tuple[str, ...]:
    """Decode, check and upload every media value of `graph`, writing the uploaded file's name
    in its place (the graph is changed in place); the names uploaded. Raises ApiError 413, 415
    or 422 naming the node and input of a bad value (nothing is uploaded then). Model URLs are
    downloaded by `models` first (without it, a model URL is a 422). Errors name the input
    under `body_key`, the body's key holding the graph (`workflow` in API v2). With
    `attachments` (a shared job) the files are kept there instead of uploaded to `client`."""
    wanted = [replace(m, root=body_key) for m in graph_models(graph, nodedefs)]
    if wanted:
        assert client is not None
        await resolve_graph_models(graph, wanted, models, client)
    items = [replace(m, root=body_key) for m in graph_media(graph, nodedefs)]
    if not items:
        return ()
    creds = merge_credentials(credentials)

    async def decode(item: GraphMedia) -> MediaFile:
        try:
            file = await decode_media(item.field, item.value, item.kind, limits=resolver.limits,
                                      guard=resolver.guard, credentials=creds)
        except MediaError as exc:
            raise graph_media_error(item, exc) from None
        metrics.media_in(str(file.kind), len(file.data))
        resolver.fetched(file, item.value)
        return file

    files = await asyncio.gather(*(decode(item) for item in items))
    names = await asyncio.gather(*(
        resolver.upload(file, request_id, attachments or client,  # type: ignore[arg-type]
                        label=item.field)
        for item, file in zip(items, files, strict=True)))
    for item, name in zip(items, names, strict=True):
        graph[item.node]["inputs"][item.input] = name
    return tuple(names)


async def resolve_job_media(graph: dict[str, Any], nodedefs: NodeDefs, resolver: MediaResolver,
                            request_id: str, attachments: Attachments, models: ModelFetch, *,
                            credentials: UrlCredentials | None = None,
                            body_key: str = "prompt") -> tuple[str, ...]:
    """`resolve_graph_media` for a shared job: the files go into `attachments` (the worker
    that runs the job stages them in its ComfyUI); the names they will have there. `models`
    checks each model URL and names its file (the worker downloads it before the run)."""
    wanted = [replace(m, root=body_key) for m in graph_models(graph, nodedefs)]
    names = await asyncio.gather(*(models(m.field, m.folder, m.url) for m in wanted))
    for item, name in zip(wanted, names, strict=True):
        graph[item.node]["inputs"][item.input] = name
    return await resolve_graph_media(graph, nodedefs, resolver, request_id, None,
                                     credentials=credentials, attachments=attachments,
                                     body_key=body_key)


async def resolve_graph_models(graph: dict[str, Any], wanted: list[GraphModel],
                               models: ModelFetch | None, client: ComfyClient) -> None:
    """Download the models `wanted`, name them in `graph`, refresh the node definitions."""
    if models is None:
        first = wanted[0]
        raise ApiError(422, "models_on_demand_off",
                       f"invalid request: {first.field} ({first.class_type}): a model URL "
                       "needs a models folder this server writes to (COMFYGEN_MODELS_DIR); "
                       "send the name of an installed model",
                       field=first.field, reason="models_on_demand_off")
    names = await asyncio.gather(*(models(m.field, m.folder, m.url) for m in wanted))
    for item, name in zip(wanted, names, strict=True):
        graph[item.node]["inputs"][item.input] = name
    await client.node_info.get(refresh=True)  # ComfyUI lists the new files now


def graph_media_error(item: GraphMedia, exc: MediaError) -> ApiError:
    """413/415/422 naming the node, its class and the input."""
    where = f"{item.field} ({item.class_type})"
    return ApiError(
        exc.status_code, "invalid_media", f"invalid request: {where}: {exc.message}",
        detail=[{"loc": ["body", item.root, item.node, "inputs", item.input], "msg": exc.message,
                 "type": exc.reason}],
        field=item.field, reason=exc.reason,
    )

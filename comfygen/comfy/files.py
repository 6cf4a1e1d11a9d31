"""Files in ComfyUI's folders: request-named output prefixes, re-running output nodes that ComfyUI
would serve from its cache, and deleting delivered files where this process can reach them; and
the images output nodes send over the websocket instead of saving them."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path

from comfygen.comfy.models import OutputFile, PromptResult
from comfygen.runtime.workflow import Graph

log = logging.getLogger("comfygen.comfy")


def safe_name(request_id: str) -> str:
    """A file-name-safe form of a request id (letters, digits, `_-`; at most 100 chars)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", request_id).strip("_") or "request"
    return name[:100]


def name_outputs(graph: Graph, request_id: str) -> Graph:
    """Point every `filename_prefix` at the request id, keeping (cleaned) subfolders."""
    base = safe_name(request_id)
    for node in graph.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict) or not isinstance(inputs.get("filename_prefix"), str):
            continue
        parts = [p for p in inputs["filename_prefix"].replace("\\", "/").split("/")
                 if p not in ("", ".", "..")]
        folders = [re.sub(r"[^A-Za-z0-9_ -]+", "_", p) for p in parts[:-1]]
        inputs["filename_prefix"] = "/".join([*folders, base])
    return graph


def fresh_outputs(graph: Graph) -> Graph:
    """A copy of `graph` whose terminal nodes carry a unique extra input.

    ComfyUI caches a node whose inputs did not change and lists its old files again; those were
    deleted after delivery, so a repeated request would find nothing at /view. The extra input
    (ignored by the nodes) makes the output nodes run again; everything upstream stays cached.
    """
    linked = {str(v[0]) for node in graph.values() if isinstance(node, dict)
              for v in (node.get("inputs") or {}).values()
              if isinstance(v, list) and len(v) == 2 and isinstance(v[1], int)}
    nonce = uuid.uuid4().hex
    fresh = dict(graph)
    for node_id, node in graph.items():
        if str(node_id) not in linked and isinstance(node, dict) and isinstance(
                node.get("inputs"), dict):
            fresh[node_id] = {**node, "inputs": {**node["inputs"], "comfygen_run": nonce}}
    return fresh


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
"""Opening a link fails (POSIX); without it (Windows) every name is resolved first."""

INLINE_READ_LIMIT = 8 << 20
"""Files up to this size are read on the event loop: from the page cache that is about 0.1 ms
per MB, less than handing the read to a worker thread costs; larger ones go to a thread."""


def local_path(file: OutputFile, roots: Mapping[str, Path]) -> Path | None:
    """Where `file` is on this machine, when its folder is reachable from here: the path with
    symlinks resolved, strictly inside the folder (None for `..`, absolute names, links out)."""
    root = roots.get(file.type)
    if root is None:
        return None
    base = _real(os.fspath(root))
    name = file.filename
    if NOFOLLOW and not file.subfolder and name not in ("", ".", "..") and os.sep not in name:
        # A plain name in the folder itself (ComfyUI's usual output): no path to resolve, and
        # `read_local` opens it with O_NOFOLLOW, so a link at that name leads nowhere.
        return Path(base, name)
    path = os.path.realpath(os.path.join(base, file.subfolder, name))
    if os.path.commonpath((base, path)) != base or path == base:
        return None
    return Path(path)


@functools.lru_cache(maxsize=64)
def _real(root: str) -> str:
    """A folder's real path, resolved once (a few syscalls per path component otherwise)."""
    return os.path.realpath(root)


async def read_local(file: OutputFile, roots: Mapping[str, Path]) -> bytes | None:
    """The bytes of an output file read from ComfyUI's folder, or None when it is not reachable
    from here (no folder configured, a name leading out of it, no such file): then use /view.

    Only call it once the prompt has ended (`ComfyClient.run` returned): ComfyUI has written and
    closed its outputs before it reports them (`executed`) and ends the prompt after that.
    """
    path = local_path(file, roots)
    if path is None:
        return None
    try:  # plain system calls: a file object costs four more (and more time than the read)
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        if size <= INLINE_READ_LIMIT:
            return _read_and_close(fd, size)
        return await asyncio.to_thread(_read_and_close, fd, size)  # the thread closes it
    except OSError:
        return None


def _read_and_close(fd: int, size: int) -> bytes:
    """The whole file in one `read` when it is `size` bytes (asking one more shows its end);
    otherwise (it changed, or a read over 2 GiB came back short) on to its end."""
    try:
        data = os.read(fd, size + 1)
        if len(data) == size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_local(file: OutputFile, roots: Mapping[str, Path]) -> None:
    """Delete a delivered file when its folder is reachable from here (never outside it)."""
    path = local_path(file, roots)
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def media_of(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "file"


WEBSOCKET = "websocket"
"""The `type` of an output that came over the websocket: in memory, in no folder."""
_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def sent_files(result: PromptResult, outputs: Collection[str] | None, request_id: str,
               nodes: tuple[str, ...] | None = None) -> list[tuple[OutputFile, bytes]]:
    """The images output nodes sent over the websocket (`SaveImageWebsocket` and the like), as
    files named after the request, in the order they came. `outputs`: the graph's output
    nodes (a sampler's previews come from other nodes; None: keep every image); `nodes`: only
    these (None: all)."""
    found: list[tuple[OutputFile, bytes]] = []
    counts: dict[str, int] = {}
    for image in result.ws_images:
        if outputs is not None and image.node not in outputs:
            continue
        if nodes and image.node not in nodes:
            continue
        counts[image.node] = count = counts.get(image.node, 0) + 1
        suffix = _SUFFIX.get(image.content_type, ".bin")
        name = f"{safe_name(request_id)}_{safe_name(image.node)}_ws_{count:05}_{suffix}"
        found.append((OutputFile(node=image.node, kind="images", filename=name,
                                 type=WEBSOCKET), image.data))
    return found


def lost_outputs(result: PromptResult, outputs: Collection[str],
                 nodes: tuple[str, ...] | None = None) -> list[str]:
    """Output nodes that left nothing: no file or value in the result and no image over the
    websocket, while no one websocket connection saw the whole run. Such a node may have sent
    its images over the websocket while it was down (they are sent nowhere else)."""
    if result.ws_whole:
        return []
    sent = {image.node for image in result.ws_images}
    return [node for node in outputs if (not nodes or node in nodes)
            and node not in result.outputs and node not in sent]

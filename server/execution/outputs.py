"""Output files: request-named prefixes, conversion to JPEG/WebP, cleanup after delivery."""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from comfygen.comfy.models import OutputFile
from server.runs.schemas import ConvertOutput

log = logging.getLogger("comfygen.server")

CONVERTIBLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def safe_name(request_id: str) -> str:
    """A file-name-safe form of a request id (letters, digits, `_-`; at most 100 chars)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", request_id).strip("_") or "request"
    return name[:100]


def name_outputs(graph: dict[str, Any], request_id: str) -> dict[str, Any]:
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


def fresh_outputs(graph: dict[str, Any]) -> dict[str, Any]:
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


def media_of(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "file"


def convert(data: bytes, spec: ConvertOutput) -> bytes:
    """Re-encode an image as JPEG or WebP with the requested options."""
    opts = spec.options
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        if spec.format == "jpeg":
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            kwargs: dict[str, Any] = {"quality": opts.quality or 90}
            if opts.progressive is not None:
                kwargs["progressive"] = opts.progressive
            if opts.optimize is not None:
                kwargs["optimize"] = opts.optimize
            if opts.chromaSubsampling is not None:
                kwargs["subsampling"] = opts.chromaSubsampling
            img.save(out, "JPEG", **kwargs)
        else:
            kwargs = {"quality": opts.quality or 90}
            if opts.lossless is not None:
                kwargs["lossless"] = opts.lossless
            if opts.effort is not None:
                kwargs["method"] = opts.effort
            img.save(out, "WEBP", **kwargs)
        return out.getvalue()


def converted_name(filename: str, fmt: str) -> str:
    return str(Path(filename).with_suffix(".jpg" if fmt == "jpeg" else ".webp"))


def can_convert(file: OutputFile, node_values: Mapping[str, Any]) -> bool:
    animated = node_values.get("animated")
    if isinstance(animated, list) and any(animated):
        return False
    return file.filename.lower().endswith(CONVERTIBLE)


def remove_local(file: OutputFile, roots: Mapping[str, Path]) -> None:
    """Delete a delivered file when its folder is reachable from here (never outside it)."""
    root = roots.get(file.type)
    if root is None:
        return
    path = (root / file.subfolder / file.filename).resolve()
    if not path.is_relative_to(root.resolve()):
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)

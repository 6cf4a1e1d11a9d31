"""The model manifest (`workflow_templates/models.yaml`): which files the workflows need, in which
ComfyUI models folder, where they come from and their checksum. Parsed and validated here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from comfygen.comfy.model_files import model_folder
from comfygen.errors import GenerationError, Problem

MANIFEST_FILE = "models.yaml"
HEADER = ("# Model files the workflows need; `comfygen models pull` downloads them\n"
          "# (docs/models-and-custom-nodes.md).\n")
FOLDER_ALIASES = {"clip": "text_encoders", "unet": "diffusion_models"}
"""Older ComfyUI folder names and the name ComfyUI reads them under today."""
SOURCE_SCHEMES = ("https://", "http://", "hf://", "s3://", "az://")


def _relative(value: str, what: str) -> str:
    path = PurePosixPath(value)
    if not value or value.startswith("/") or "\\" in value or ".." in path.parts:
        raise ValueError(f"{what} must be a relative path without '..' (got {value!r})")
    return value


class ModelEntry(BaseModel):
    """One model file: where it goes, where it comes from, what it must hash to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: str = Field(description="ComfyUI models folder, e.g. checkpoints")
    file: str = Field(description="file name inside the folder (may hold a subfolder)")
    url: str | None = Field(default=None, description="source; null: not filled in yet")
    sha256: str | None = None
    blake3: str | None = None
    """Another checksum, for sources that publish BLAKE3 (used when there is no sha256)."""
    size: int | None = Field(default=None, gt=0)
    workflows: tuple[str, ...] = ()
    """Workflows that need the file although their graph does not name it (e.g. a LoRA chosen
    per request); the ones whose graph names it need it anyway."""

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        return _relative(value, "folder")

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        return _relative(value, "file")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(SOURCE_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(SOURCE_SCHEMES)}")
        return value

    @field_validator("sha256", "blake3")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hexadecimal digits")
        return value.lower() if value else None

    @property
    def key(self) -> tuple[str, str]:
        """(folder as ComfyUI reads it today, file): what a graph's loader input names."""
        return FOLDER_ALIASES.get(self.folder, self.folder), self.file

    @property
    def checksum(self) -> tuple[str, str] | None:
        """(algorithm, hex digest) to verify with: sha256, else blake3, else None."""
        if self.sha256:
            return "sha256", self.sha256
        return ("blake3", self.blake3) if self.blake3 else None

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.file}"


class Manifest(BaseModel):
    """Every model file of a project (one entry per file, shared by the workflows using it)."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = []

    def for_workflow(self, path: str, graph: Mapping[str, Any]) -> list[ModelEntry]:
        """The entries workflow `path` needs: those its graph names, and those naming it."""
        named = graph_model_files(graph)
        return [e for e in self.models if e.key in named or path in e.workflows]

    def unlisted(self, graph: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Model files the graph names that no entry lists."""
        listed = {e.key for e in self.models}
        return sorted(graph_model_files(graph) - listed)


def graph_model_files(graph: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(folder, file) of every model file a graph's loader inputs name."""
    found = set()
    for node in graph.values():
        if not isinstance(node, Mapping):
            continue
        for name, value in (node.get("inputs") or {}).items():
            if isinstance(value, str):
                folder = model_folder(str(node.get("class_type")), name, value)
                if folder is not None and folder != "configs":
                    found.add((FOLDER_ALIASES.get(folder, folder), value))
    return found


def load_manifest(path: Path, display: str | None = None) -> Manifest:
    """Read and validate a manifest; a missing file is an empty one. GenerationError names the
    file and each bad entry."""
    display = display or str(path)
    if not path.exists():
        return Manifest()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GenerationError([Problem(display, f"cannot read the model manifest: {exc}")]) \
            from None
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict) or not isinstance(raw.get("models", []), list):
        raise GenerationError([Problem(display, "the model manifest must be a mapping with a "
                                                "`models:` list of entries")])
    problems = [Problem(display, f"{key}: unknown key; the manifest has only `models:`")
                for key in raw if key != "models"]
    entries: list[ModelEntry] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(raw.get("models") or [], start=1):
        where = _where(index, item)
        try:
            entry = ModelEntry.model_validate(item)
        except ValidationError as exc:
            problems.extend(Problem(display, f"{where}: {_message(err)}") for err in exc.errors())
            continue
        if entry.key in seen:
            problems.append(Problem(display, f"{where}: the same file as entry {seen[entry.key]}"))
            continue
        seen[entry.key] = index
        entries.append(entry)
    if problems:
        raise GenerationError(problems)
    return Manifest(models=entries)


def _where(index: int, item: Any) -> str:
    if isinstance(item, Mapping) and item.get("folder") and item.get("file"):
        return f"entry {index} ({item['folder']}/{item['file']})"
    return f"entry {index}"


def _message(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        message = "unknown key (folder, file, url, sha256, blake3, size, workflows)"
    return f"{loc}: {message}" if loc else message


def draft_entries(path: Path, files: Iterable[tuple[str, str]], workflow: str,
                  known: Manifest | None = None) -> list[str]:
    """Append an entry for each file not in the manifest at `path` yet: the `known` one (a
    built-in workflow's), else folder and file with url and sha256 left for the author. Return
    the labels added; the author's text is kept."""
    manifest = load_manifest(path)
    listed = {e.key for e in manifest.models}
    new = [(folder, file) for folder, file in sorted(set(files)) if (folder, file) not in listed]
    if not new:
        return []
    shipped = {e.key: e for e in (known.models if known else [])}
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if not re.search(r"^models:", text, re.M):
        text = text.rstrip("\n") + ("\n" if text.strip() else "") + "models:\n"
    elif not text.endswith("\n"):
        text += "\n"
    items = [shipped[key].model_dump(exclude_defaults=True) if key in shipped
             else {"folder": key[0], "file": key[1], "url": None, "sha256": None} for key in new]
    block = yaml.safe_dump(items, sort_keys=False, allow_unicode=True)
    indent = _item_indent(text)
    block = "".join(indent + line if line.strip() else line for line in block.splitlines(True))
    note = (f"{indent}# added by `comfygen add-workflow {workflow}`"
            + ("\n" if len(shipped) else ": fill in url (and sha256)\n"))
    candidate = text + note + block
    try:
        ok = [e.key for e in load_manifest_text(candidate).models][-len(new):] == new
    except GenerationError:
        ok = False
    if not ok:  # the list is not the file's last block: write the whole manifest again
        data = {"models": [*(e.model_dump(exclude_defaults=True) for e in manifest.models),
                           *items]}
        candidate = HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text(candidate, encoding="utf-8")
    return [f"{folder}/{file}" for folder, file in new]


def load_manifest_text(text: str) -> Manifest:
    raw = yaml.safe_load(text) or {}
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise GenerationError([Problem("models.yaml", str(exc))]) from None


def _item_indent(text: str) -> str:
    items = re.findall(r"^( *)- ", text[text.index("models:"):], re.M)
    return items[-1] if items else "  "

"""`comfygen models pull|status` as a library: which entries the chosen workflows need, and
fetching several at once (each through `ModelStore.ensure`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfygen.config import GeneratorConfig
from comfygen.errors import GenerationError, Problem
from comfygen.models.download import ModelError, Progress
from comfygen.models.manifest import MANIFEST_FILE, Manifest, ModelEntry, load_manifest
from comfygen.models.store import ModelStore


def manifest_path(config: GeneratorConfig) -> Path:
    return config.templates_path / MANIFEST_FILE


def project_manifest(config: GeneratorConfig) -> Manifest:
    path = manifest_path(config)
    try:
        display = path.relative_to(config.root).as_posix()
    except ValueError:
        display = str(path)
    return load_manifest(path, display)


def default_models_dir(server: Mapping[str, Any]) -> Path:
    """Where `comfygen serve` puts model files, from the project's server table: `models_dir`,
    else `<comfyui_base_dir>/models` (default comfyui-data/models)."""
    if server.get("models_dir"):
        return Path(server["models_dir"])
    return Path(server.get("comfyui_base_dir") or "comfyui-data") / "models"


def needed(manifest: Manifest, graphs: Mapping[str, Mapping[str, Any]],
           chosen: Sequence[str] = ()) -> dict[str, list[ModelEntry]]:
    """Workflow path -> the entries it needs, for the `chosen` workflows (default: all)."""
    unknown = [name for name in chosen if name not in graphs]
    if unknown:
        raise GenerationError([Problem(name, "no such workflow; `comfygen list` shows them")
                               for name in unknown])
    return {path: manifest.for_workflow(path, graphs[path])
            for path in sorted(chosen or graphs)}


@dataclass
class Pulled:
    entry: ModelEntry
    path: Path | None = None
    error: str | None = None


def pull_entries(store: ModelStore, entries: Sequence[ModelEntry],
                 progress_for: Callable[[ModelEntry], Progress] | None = None,
                 workers: int = 4) -> list[Pulled]:
    """Ensure every entry (several at a time); one failure does not stop the others."""

    def one(entry: ModelEntry) -> Pulled:
        try:
            return Pulled(entry, store.ensure(entry, progress_for(entry) if progress_for else None))
        except (ModelError, OSError) as exc:
            return Pulled(entry, error=str(exc))

    unique = list({e.key: e for e in entries}.values())
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(unique) or 1))) as pool:
        return list(pool.map(one, unique))

"""`ModelPuller`: the manifest entries the served workflows need, checked and downloaded in
threads (`comfygen.models`) while the server starts; their state for /ready and preflight."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from comfygen.errors import GenerationError
from comfygen.models.cache import ModelCache, default_cache_dir
from comfygen.models.download import ModelError
from comfygen.models.manifest import ModelEntry, load_manifest
from comfygen.models.store import FileState, ModelStore
from comfygen.runtime import Workflow
from server.settings import Settings

log = logging.getLogger("comfygen.server")
PARALLEL = 4


class Stopped(Exception):
    """The server stops: a download is abandoned (its partial file stays, to be resumed)."""


class PullState(StrEnum):
    CHECKING = "checking"
    DOWNLOADING = "downloading"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Pull:
    entry: ModelEntry
    state: PullState = PullState.CHECKING
    done: int = 0
    total: int | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.state is PullState.FAILED:
            return f"{self.entry.label} (failed: {self.error})"
        if self.state is PullState.DOWNLOADING and self.total:
            return f"{self.entry.label} (downloading, {100 * self.done // self.total}%)"
        return f"{self.entry.label} ({self.state.value})"


class ModelPuller:
    """Pulls `entries` into `store` once, from `start()`; `waiting()` and `in_flight()` say
    what is not there yet."""

    def __init__(self, mode: str, store: ModelStore, entries: Iterable[ModelEntry]) -> None:
        self.mode = mode
        self.store = store
        # a file not there yet is on its way from the start; one there is checked first
        self.pulls = {e.key: Pull(e, PullState.CHECKING if store.path(e).is_file()
                                  else PullState.DOWNLOADING) for e in entries}
        self.stopping = threading.Event()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings,
                      registry: Mapping[str, Workflow]) -> ModelPuller | None:
        """None when `models_pull` is off; ValueError naming the setting when it cannot run."""
        if settings.models_pull == "off":
            return None
        path = settings.models_manifest
        if path is None or not path.is_file():
            raise ValueError(f"COMFYGEN_MODELS_PULL={settings.models_pull} needs a model "
                             f"manifest: {path or 'models_manifest is not set'} not found")
        try:
            manifest = load_manifest(path)
        except GenerationError as exc:
            raise ValueError(str(exc)) from None
        models_dir = settings.models_dir
        if models_dir is None:
            if settings.comfyui_url:
                raise ValueError("COMFYGEN_MODELS_PULL with an attached ComfyUI needs "
                                 "COMFYGEN_MODELS_DIR (its models folder as seen from here)")
            models_dir = settings.comfyui_base_dir.resolve() / "models"
        cache = ModelCache(settings.models_cache_dir or default_cache_dir(),
                           settings.models_cache_max_bytes)
        entries = {e.key: e for path, wf in sorted(registry.items())
                   for e in manifest.for_workflow(path, wf.graph)}
        return cls(settings.models_pull, ModelStore(models_dir, cache), entries.values())

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="model-pull")

    async def close(self) -> None:
        self.stopping.set()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        limit = asyncio.Semaphore(PARALLEL)

        async def one(pull: Pull) -> None:
            async with limit:
                await asyncio.to_thread(self._pull, pull)

        await asyncio.gather(*(one(p) for p in self.pulls.values()))
        failed = [p.describe() for p in self.pulls.values() if p.state is PullState.FAILED]
        if failed:
            log.error("model files not pulled: %s", "; ".join(failed))
        else:
            log.info("model files ready: %d", len(self.pulls))

    def _pull(self, pull: Pull) -> None:
        """In a thread: check the file, download it when missing or wrong."""
        try:
            if self.store.check(pull.entry).state is not FileState.PRESENT:
                pull.state = PullState.DOWNLOADING
                log.info("pulling model file %s", pull.entry.label)
            self.store.ensure(pull.entry, lambda done, total: self._progress(pull, done, total))
            pull.state = PullState.READY
        except Stopped:
            pull.state, pull.error = PullState.FAILED, "the server stopped"
        except (ModelError, OSError) as exc:
            pull.state, pull.error = PullState.FAILED, str(exc)

    def _progress(self, pull: Pull, done: int, total: int | None) -> None:
        if self.stopping.is_set():
            raise Stopped
        pull.done, pull.total = done, total

    def waiting(self) -> str | None:
        """Why /ready must wait (`before_start` only): the files not ready yet, else None."""
        if self.mode != "before_start":
            return None
        pending = [p.describe() for p in self.pulls.values() if p.state is not PullState.READY]
        return f"model files not ready: {', '.join(pending)}" if pending else None

    def in_flight(self, files: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """Those of `files` ((folder, file) as ComfyUI reads them) being downloaded (a file
        there and being verified is usable meanwhile)."""
        busy = []
        for key in files:
            pull = self.pulls.get(key)
            if pull is not None and pull.state is PullState.DOWNLOADING:
                busy.append({"file": pull.entry.file, "folder": pull.entry.folder,
                             "state": pull.state.value, "bytes": pull.done,
                             "total": pull.total})
        return busy

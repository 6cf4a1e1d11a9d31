"""Development reload: regenerate `generated/` when the sources change and load the result
fresh, beside the copy already in use (`comfygen serve --reload`; the server remounts it).

A change that fails to generate writes nothing: the last good package stays, and the result
names the workflows whose sources have the problems.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import awatch

from comfygen.config import GeneratorConfig
from comfygen.errors import GenerationError, Problem, Severity
from comfygen.generator import generate, write
from comfygen.registry import load_workflows
from comfygen.runtime import Workflow


@dataclass(frozen=True)
class Reloaded:
    """One regeneration: the fresh workflows, or None when it failed (see `problems`)."""

    workflows: Mapping[str, Workflow] | None
    problems: list[Problem] = field(default_factory=list)
    stale: tuple[str, ...] = ()
    """Workflows (`model/name`) whose sources failed to generate: still served as they were."""
    changed: tuple[Path, ...] = ()


def regenerate(config: GeneratorConfig) -> Reloaded:
    """Generate, write what changed, and import the package under a fresh name."""
    try:
        result = generate(config)
    except GenerationError as exc:
        return Reloaded(None, exc.problems, stale_paths(config, exc.problems))
    changed = write(result, config.output_path)
    for path in changed:  # a rewrite within the same second must not load old bytecode
        if path.suffix == ".py":
            Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    return Reloaded(load_workflows(config, fresh=True), result.problems, (), tuple(changed))


def stale_paths(config: GeneratorConfig, problems: list[Problem]) -> tuple[str, ...]:
    """The `model/name` of every workflow a problem (an error) is about; a problem outside one
    workflow's sources (the node definitions, say) makes every workflow stale."""
    templates = config.templates_path.resolve()
    found: set[str] = set()
    for p in problems:
        if p.severity != Severity.ERROR:
            continue
        path = config.resolve(Path(p.file)).resolve()
        rel = path.relative_to(templates) if path.is_relative_to(templates) else None
        if rel is None or len(rel.parts) != 2:
            return ("*",)
        found.add(f"{rel.parts[0]}/{Path(rel.parts[1]).stem}")
    return tuple(sorted(found))


async def changes(config: GeneratorConfig) -> AsyncIterator[set[str]]:
    """The files that changed below the templates folder, a batch at a time (changes less than
    0.3 s apart, such as an editor's save, make one batch); runs until cancelled."""
    async for batch in awatch(config.templates_path, recursive=True, debounce=300):
        names = {path for _, path in batch if not Path(path).name.startswith(".")}
        if names:
            yield names

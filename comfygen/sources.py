"""Find workflow sources (`<model>/<name>.json` + `<name>.yaml`) and read their specs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from comfygen.errors import Problem
from comfygen.names import IDENTIFIER, path_segment_problem
from comfygen.spec.models import FieldSpec, WorkflowSpec

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class WorkflowSource:
    """One workflow under the templates folder."""

    model: str
    name: str
    workflow_path: Path
    spec_path: Path
    root: Path

    @property
    def path(self) -> str:
        return f"{self.model}/{self.name}"

    def rel(self, path: Path) -> str:
        """`path` relative to the project root, as written in messages and generated headers."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


def discover(templates_dir: Path, root: Path) -> tuple[list[WorkflowSource], list[Problem]]:
    """Every `<model>/<name>.json` below `templates_dir`, sorted, with problems for bad names."""
    sources: list[WorkflowSource] = []
    problems: list[Problem] = []
    if not templates_dir.is_dir():
        return [], [Problem(str(templates_dir), "templates folder does not exist")]
    for model_dir in sorted(p for p in templates_dir.iterdir() if p.is_dir()):
        if model_dir.name.startswith((".", "_")):
            continue
        for wf in sorted(model_dir.glob("*.json")):
            src = WorkflowSource(model_dir.name, wf.stem, wf, spec_path_for(wf), root)
            bad = [path_segment_problem(model_dir.name), path_segment_problem(wf.stem)]
            problems.extend(Problem(src.rel(wf), msg) for msg in bad if msg)
            if not any(bad):
                sources.append(src)
    return sources, problems


def spec_path_for(workflow_path: Path) -> Path:
    """The spec beside a workflow file (`.yaml`, or an existing `.yml`)."""
    for suffix in SPEC_SUFFIXES:
        candidate = workflow_path.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return workflow_path.with_suffix(SPEC_SUFFIXES[0])


def load_spec(path: Path, display: str) -> tuple[WorkflowSpec | None, list[Problem]]:
    """Read and validate a spec file; every validation error becomes a Problem."""
    if not path.exists():
        return None, [
            Problem(display, "mapping spec not found; write it or run `comfygen add-workflow`")
        ]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return None, [Problem(display, f"not valid YAML: {exc}")]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [Problem(display, "the spec must be a YAML mapping")]
    raw_inputs = raw.get("inputs") or {}
    problems: list[Problem] = []
    if not isinstance(raw_inputs, dict):
        problems.append(Problem(display, "inputs: must be a mapping of field name to field spec"))
        raw_inputs = {}
    try:
        spec = WorkflowSpec.model_validate({**raw, "inputs": {}})
    except ValidationError as exc:
        problems.extend(_spec_problem(display, err) for err in exc.errors())
        spec = WorkflowSpec()
    # Each field is validated on its own, so that one bad field does not hide the others.
    for name, raw_field in raw_inputs.items():
        name = str(name)
        if not IDENTIFIER.match(name):
            problems.append(
                Problem(display, "not a valid field name: use letters, digits and _", field=name)
            )
            continue
        try:
            spec.inputs[name] = FieldSpec.model_validate(raw_field)
        except ValidationError as exc:
            problems.extend(_spec_problem(display, err, name) for err in exc.errors())
    return spec, problems


def _spec_problem(display: str, err: dict, field: str | None = None) -> Problem:
    where = ".".join(str(p) for p in err.get("loc", ()))
    message = err.get("msg", "invalid").removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        message = "unknown key; see docs/spec.md for the keys a spec accepts"
    return Problem(display, f"{where}: {message}" if where else message, field=field)

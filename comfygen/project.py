"""Project operations on top of the generator: add a workflow (copy sources, draft a spec)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from comfygen.config import GeneratorConfig
from comfygen.draft import draft_spec
from comfygen.errors import GenerationError, Problem, Severity, has_errors
from comfygen.generator import GenerationResult, generate, load_nodedefs, write
from comfygen.models.manifest import (
    MANIFEST_FILE,
    Manifest,
    draft_entries,
    graph_model_files,
    load_manifest,
)
from comfygen.names import path_segment_problem
from comfygen.nodedefs import NodeDefs

DRAFT_HEADER = "# Drafted by `comfygen add-workflow`; review it (see docs/spec.md).\n"


@dataclass
class AddResult:
    workflow_path: Path
    spec_path: Path
    drafted: bool
    result: GenerationResult
    models: list[str] = field(default_factory=list)
    """Entries added to the model manifest (workflow_templates/models.yaml)."""
    embedded_in: str | None = None
    """Where the workflow came from when the file was one ComfyUI saved (an image...)."""
    warnings: list[Problem] = field(default_factory=list)
    """What reading the workflow warned about (inputs filled with defaults...)."""


def add_workflow(
    config: GeneratorConfig,
    endpoint: str,
    workflow_file: Path,
    spec_file: Path | None = None,
    *,
    force: bool = False,
    nodedefs: NodeDefs | None = None,
    known_models: Manifest | None = None,
) -> AddResult:
    """Copy a workflow (and spec, or a drafted one) into the templates folder, regenerate, and
    add the model files its loaders name to the manifest (`known_models`' entries, else drafts).

    On any error nothing is left behind: the copied files are removed (or restored) and
    GenerationError lists every problem.
    """
    from comfygen.workflow.load import read_source, to_api_graph
    from comfygen.workflow.ui_format import is_ui_format

    model, sep, name = endpoint.partition("/")
    where = str(workflow_file)
    if not sep:
        raise GenerationError([Problem(endpoint, "must be MODEL/NAME, e.g. sd3.5-medium/txt2img")])
    bad = [m for m in (path_segment_problem(model), path_segment_problem(name)) if m]
    if bad:
        raise GenerationError([Problem(endpoint, m) for m in bad])
    dest_wf = config.templates_path / model / f"{name}.json"
    dest_spec = dest_wf.with_suffix(".yaml")
    if dest_wf.exists() and not force:
        raise GenerationError(
            [
                Problem(
                    str(dest_wf.relative_to(config.root)),
                    "already exists; use --force to replace it",
                )
            ]
        )
    load_manifest(config.templates_path / MANIFEST_FILE)  # a bad manifest stops us before copying
    nodedefs = nodedefs if nodedefs is not None else load_nodedefs(config)
    source, problems = read_source(workflow_file)
    graph: dict = {}
    if source is not None:
        graph, more = to_api_graph(source.data, nodedefs, where)
        problems += more
    if not graph or (spec_file is None and has_errors(problems)):
        # Without a readable graph there is nothing to draft from; with a given spec, go on so
        # that generation reports the graph's problems and the spec's together.
        raise GenerationError(problems or [Problem(where, "could not read the workflow")])

    backups = {p: p.read_bytes() for p in (dest_wf, dest_spec) if p.exists()}
    folder_existed = dest_wf.parent.exists()
    dest_wf.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source is not None and (source.embedded_in or _filled(problems)):
            # Keep the workflow itself, not the image; an old API export with its new inputs.
            kept = source.data if is_ui_format(source.data) else graph
            dest_wf.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", "utf-8")
        else:
            shutil.copyfile(workflow_file, dest_wf)
        if spec_file is not None:
            shutil.copyfile(spec_file, dest_spec)
        else:
            drafted = draft_spec(graph, nodedefs, summary=f"{model} {name}")
            dest_spec.write_text(
                DRAFT_HEADER + yaml.safe_dump(drafted, sort_keys=False, allow_unicode=True),
                encoding="utf-8",
            )
        result = generate(config, nodedefs)
    except BaseException:
        for path in (dest_wf, dest_spec):
            if path in backups:
                path.write_bytes(backups[path])
            else:
                path.unlink(missing_ok=True)
        if not folder_existed and not any(dest_wf.parent.iterdir()):
            dest_wf.parent.rmdir()
        raise
    write(result, config.output_path)
    models = draft_entries(config.templates_path / MANIFEST_FILE, graph_model_files(graph),
                           endpoint, known_models)
    warnings = [p for p in problems if p.severity == Severity.WARNING]
    return AddResult(dest_wf, dest_spec, spec_file is None, result, models,
                     source.embedded_in if source else None, warnings)


def _filled(problems: list[Problem]) -> bool:
    return any(p.severity == Severity.WARNING and p.input for p in problems)

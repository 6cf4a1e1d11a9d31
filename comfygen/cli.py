"""The `comfygen` command: a thin client of the library (generator, node definitions, server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from comfygen.config import GeneratorConfig, load_config
from comfygen.errors import GenerationError, Problem
from comfygen.generator import build_irs, generate, stale_files, write
from comfygen.project import add_workflow

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
nodes_app = typer.Typer(no_args_is_help=True, help="Node definitions (ComfyUI's /object_info).")
app.add_typer(nodes_app, name="nodes")
models_app = typer.Typer(no_args_is_help=True, help="Model files the workflows need "
                         "(workflow_templates/models.yaml).")
app.add_typer(models_app, name="models")
out = Console()
err = Console(stderr=True)

RootOpt = Annotated[
    Path | None,
    typer.Option("--root", help="Project folder (default: the nearest folder with comfygen.toml "
                 "or a [tool.comfygen] table in pyproject.toml, from here upwards)."),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", help="Read node definitions from this live ComfyUI instead of the snapshot."
    ),
]


def _config(root: Path | None, url: str | None = None) -> GeneratorConfig:
    try:
        return load_config(root, comfyui_url=url)
    except GenerationError as exc:
        raise _fail(exc) from None


def _report(problems: list[Problem]) -> None:
    for p in problems:
        style = "red" if p.severity == "error" else "yellow"
        err.print(f"[{style}]{p}[/{style}]", markup=True, highlight=False, soft_wrap=True)


def _fail(exc: GenerationError) -> typer.Exit:
    _report(exc.problems)
    errors = sum(1 for p in exc.problems if p.severity == "error")
    err.print(f"[red]{errors} error(s); nothing was written.[/red]")
    return typer.Exit(1)


@app.command("generate")
def generate_cmd(root: RootOpt = None, url: UrlOpt = None) -> None:
    """Render generated/ from workflow_templates/."""
    config = _config(root, url)
    try:
        result = generate(config)
    except GenerationError as exc:
        raise _fail(exc) from None
    _report(result.problems)
    changed = write(result, config.output_path)
    for path in changed:
        out.print(
            f"wrote {path.relative_to(config.root)}"
            if path.exists()
            else f"removed {path.relative_to(config.root)}"
        )
    out.print(f"{len(result.irs)} workflow(s); {len(changed)} file(s) changed.")


@app.command("check")
def check_cmd(root: RootOpt = None) -> None:
    """Fail when generated/ is not what `comfygen generate` would write."""
    config = _config(root)
    try:
        result = generate(config)
    except GenerationError as exc:
        raise _fail(exc) from None
    stale = stale_files(result, config.output_path)
    if stale:
        for path in stale:
            err.print(f"stale: {path.relative_to(config.root)}")
        err.print("generated/ is out of date: run `comfygen generate` and commit the result.")
        raise typer.Exit(1)
    out.print(f"generated/ is up to date ({len(result.irs)} workflow(s)).")


@app.command("list")
def list_cmd(root: RootOpt = None) -> None:
    """List the workflows and their public fields."""
    config = _config(root)
    try:
        irs, _ = build_irs(config)
    except GenerationError as exc:
        raise _fail(exc) from None
    for ir in sorted(irs, key=lambda i: i.path):
        fields = ", ".join(f.name for f in ir.fields) or "(none)"
        outputs = ", ".join(o.node for o in ir.outputs)
        out.print(f"POST /workflow/{ir.path}", highlight=False)
        out.print(f"    fields: {fields}\n    outputs: {outputs}\n    source: {ir.workflow_file}",
                  highlight=False, soft_wrap=True)


@app.command("add-workflow")
def add_workflow_cmd(
    path: Annotated[str, typer.Argument(help="MODEL/NAME, e.g. sd3.5-medium/txt2img.")],
    workflow: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, help="Exported workflow (API or UI format), "
                      "or an image, audio or video file ComfyUI saved (PNG, WebP, FLAC, MP3, "
                      "Opus, MP4, WebM): its embedded workflow is used."),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec", exists=True, dir_okay=False, help="Mapping spec; drafted when left out."
        ),
    ] = None,
    builtin: Annotated[
        bool, typer.Option("--builtin", help="Add the workflow of that name that ships with "
                           "comfygen (e.g. sd3.5-medium/txt2img), spec included.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing workflow of that name.")
    ] = False,
    root: RootOpt = None,
    url: UrlOpt = None,
) -> None:
    """Copy a workflow (and spec) into workflow_templates/ and regenerate."""
    from comfygen.models.manifest import load_manifest
    from comfygen.scaffold import builtin_models, builtin_workflow

    config = _config(root, url)
    known = None
    try:
        if builtin:
            if workflow is not None or spec is not None:
                raise GenerationError([Problem(path, "--builtin takes no workflow or --spec: "
                                                     "they ship with comfygen")])
            workflow, spec = builtin_workflow(path)
            shipped = builtin_models(path)
            known = load_manifest(shipped) if shipped is not None else None
        elif workflow is None:
            raise GenerationError([Problem(path, "give the exported workflow file (or --builtin "
                                                 "for a workflow that ships with comfygen)")])
        added = add_workflow(config, path, workflow, spec, force=force, known_models=known)
    except GenerationError as exc:
        raise _fail(exc) from None
    _report(added.warnings + added.result.problems)
    if added.embedded_in:
        out.print(f"read {added.embedded_in}", highlight=False)
    spec_note = " (drafted: review it)" if added.drafted else ""
    out.print(
        f"added POST /workflow/{path} from {added.workflow_path.relative_to(config.root)} "
        f"and {added.spec_path.relative_to(config.root)}{spec_note}"
    )
    if added.models:
        how = "with their sources" if known else "fill in their url and sha256"
        out.print(f"model files added to {config.templates_dir / 'models.yaml'}: "
                  f"{', '.join(added.models)} ({how})", highlight=False, soft_wrap=True)


@app.command("init")
def init_cmd(
    folder: Annotated[Path, typer.Argument(help="The project folder (made if missing).")] = Path(),
    url: Annotated[
        str | None,
        typer.Option("--url", help="Take the node definitions from this running ComfyUI "
                     "(default: the snapshot of ComfyUI 0.3.75 that ships with comfygen)."),
    ] = None,
) -> None:
    """Make a new comfygen project: config, workflow_templates/, generated/, a CI test."""
    from comfygen.scaffold import init_project

    body = _object_info(url) if url else None
    try:
        made = init_project(folder, body)
    except GenerationError as exc:
        raise _fail(exc) from None
    for path in made.written:
        out.print(f"wrote {path.relative_to(made.root)}", highlight=False)
    out.print(f"comfygen project ready in {made.root}; next: `comfygen add-workflow MODEL/NAME "
              "workflow.json` (see README.md there)", highlight=False)


def _object_info(url: str) -> bytes:
    """A running ComfyUI's /object_info body, or exit naming the URL and the reason."""
    import httpx

    try:
        response = httpx.get(url.rstrip("/") + "/object_info", timeout=60)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        err.print(f"[red]error: could not read {url}/object_info: {exc}[/red]")
        raise typer.Exit(1) from None
    return response.content


@nodes_app.command("refresh")
def nodes_refresh_cmd(
    url: Annotated[
        str, typer.Option("--url", help="A running ComfyUI, e.g. http://127.0.0.1:8188.")
    ],
    root: RootOpt = None,
) -> None:
    """Save the live ComfyUI's /object_info as the project's node definitions snapshot."""
    import json

    from comfygen.nodedefs import dump_object_info

    config = _config(root)
    raw = json.loads(_object_info(url))
    config.object_info_path.write_text(dump_object_info(raw), encoding="utf-8")
    out.print(
        f"wrote {config.object_info_path.relative_to(config.root)} ({len(raw)} node classes)"
    )

ModelsDirOpt = Annotated[
    Path | None,
    typer.Option("--models-dir", envvar="COMFYGEN_MODELS_DIR",
                 help="ComfyUI's models folder (default: the project's server models_dir, else "
                 "<comfyui_base_dir>/models, i.e. comfyui-data/models)."),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar="COMFYGEN_MODELS_CACHE_DIR",
                 help="The shared download cache (default: ~/.cache/comfygen/models)."),
]
WorkflowsArg = Annotated[
    list[str] | None,
    typer.Argument(help="MODEL/NAME of the workflows (default: every workflow)."),
]


def _models_plan(root: Path | None, workflows: list[str] | None, models_dir: Path | None,
                 cache_dir: Path | None) -> tuple[Any, Any]:
    """(workflow -> entries, ModelStore) for the project, or exit naming what is wrong."""
    from comfygen.models.cache import ModelCache, default_cache_dir
    from comfygen.models.pull import default_models_dir, needed, project_manifest
    from comfygen.models.store import ModelStore
    from comfygen.registry import load_workflows

    config = _config(root)
    try:
        manifest = project_manifest(config)
        graphs = {path: wf.graph for path, wf in load_workflows(config, check=False).items()}
        plan = needed(manifest, graphs, workflows or ())
    except GenerationError as exc:
        _report(exc.problems)
        err.print("[red]nothing was downloaded.[/red]")
        raise typer.Exit(1) from None
    for path, graph in graphs.items():
        if path in plan:
            for folder, file in manifest.unlisted(graph):
                err.print(f"[yellow]warning: {path} needs {folder}/{file}, which "
                          f"{config.templates_dir / 'models.yaml'} does not list[/yellow]",
                          highlight=False, soft_wrap=True)
    models = models_dir or config.resolve(default_models_dir(config.server))
    return plan, ModelStore(models, ModelCache(cache_dir or default_cache_dir()))


@models_app.command("pull")
def models_pull_cmd(workflows: WorkflowsArg = None, models_dir: ModelsDirOpt = None,
                    cache_dir: CacheDirOpt = None, root: RootOpt = None) -> None:
    """Download the workflows' model files into ComfyUI's models folder (resumed, verified)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    from comfygen.models.pull import pull_entries

    plan, store = _models_plan(root, workflows, models_dir, cache_dir)
    entries = [e for group in plan.values() for e in group]
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn())
    with Progress(*columns, console=err) as bar:
        def progress_for(entry: Any) -> Any:
            task = bar.add_task(entry.label, total=entry.size)

            def advance(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)
            return advance

        results = pull_entries(store, entries, progress_for)
    failed = [r for r in results if r.error]
    for r in results:
        if r.error:
            err.print(f"[red]error: {r.entry.label}: {r.error}[/red]", highlight=False,
                      soft_wrap=True)
        else:
            out.print(f"ok {r.entry.label}", highlight=False)
    out.print(f"{len(results) - len(failed)} of {len(results)} model file(s) in "
              f"{store.models_dir}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@models_app.command("status")
def models_status_cmd(workflows: WorkflowsArg = None, models_dir: ModelsDirOpt = None,
                      cache_dir: CacheDirOpt = None, root: RootOpt = None) -> None:
    """Show, per workflow, which model files are present, missing or wrong (exit 1 if any)."""
    from comfygen.models.store import FileState

    plan, store = _models_plan(root, workflows, models_dir, cache_dir)
    bad = 0
    for path, entries in plan.items():
        out.print(f"{path}:" + ("" if entries else " (no model files listed)"), highlight=False)
        for entry in entries:
            check = store.check(entry)
            bad += check.state is not FileState.PRESENT
            detail = f" ({check.detail})" if check.detail else ""
            out.print(f"    {check.state.value:<14} {entry.label}{detail}", highlight=False,
                      soft_wrap=True)
    if bad:
        raise typer.Exit(1)


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env COMFYGEN_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env COMFYGEN_PORT).")] = None,
    comfyui_url: Annotated[
        str | None,
        typer.Option(
            "--comfyui-url",
            help="Attach to this ComfyUI instead of launching one (env COMFYGEN_COMFYUI_URL).",
        ),
    ] = None,
    comfyui_home: Annotated[
        Path | None,
        typer.Option(
            "--comfyui-home",
            help="ComfyUI install to launch (ComfyUI/ + venv/) (env COMFYGEN_COMFYUI_HOME).",
        ),
    ] = None,
    comfyui_base_dir: Annotated[
        Path | None,
        typer.Option(
            "--comfyui-base-dir", help="Models, input and output folders of the launched ComfyUI."
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="critical, error, warning, info or debug.")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", help="all (default), api (HTTP only) or worker (runs jobs); api and "
                     "worker share jobs through COMFYGEN_REDIS_URL (env COMFYGEN_ROLE)."),
    ] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Development: regenerate and remount the endpoints "
                           "when workflow_templates/ changes.")
    ] = False,
    root: RootOpt = None,
) -> None:
    """Serve the project's workflows at POST /workflow/<model>/<name> (see docs/configuration.md)."""
    from comfygen.registry import load_workflows
    from server.main import serve
    from server.settings import project_settings

    config = _config(root)
    started = None
    if reload:  # generate now; when that fails, serve the last good package and say why
        from comfygen.reload import regenerate

        started = regenerate(config)
        if started.workflows is None:
            _report(started.problems)
            err.print("[yellow]the sources do not generate; serving the last good generated/ "
                      "until they do[/yellow]")
    try:
        workflows = (started.workflows if started is not None and started.workflows is not None
                     else load_workflows(config, check=not reload))
    except GenerationError as exc:
        _report(exc.problems)
        err.print("[red]generated/ is out of date with its sources; not serving. Run "
                  "`comfygen generate` (and commit the result).[/red]")
        raise typer.Exit(1) from None
    flags = {
        "host": host,
        "port": port,
        "comfyui_url": comfyui_url,
        "comfyui_home": comfyui_home,
        "comfyui_base_dir": comfyui_base_dir,
        "log_level": log_level,
        "role": role,
    }
    from comfygen.models.pull import manifest_path

    table = {"models_manifest": manifest_path(config), **config.server}
    serve(project_settings(table, **{k: v for k, v in flags.items() if v is not None}),
          workflows, reload=started, project=config if reload else None)


@app.command("run")
def run_cmd(
    workflow: Annotated[str, typer.Argument(help="MODEL/NAME, e.g. sd3.5-medium/txt2img.")],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="key=value (JSON values parse: steps=20); "
                     "key=@file sends a file."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the output files.")] = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, no bar.")] = False,
    server: Annotated[
        str, typer.Option("--server", envvar="COMFYGEN_SERVER", help="The comfygen server.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="COMFYGEN_API_KEY", help="Its API key.")
    ] = None,
    api_key_header: Annotated[
        str, typer.Option("--api-key-header", envvar="COMFYGEN_API_KEY_HEADER")
    ] = "X-API-Key",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only check the request: print the resolved input "
                           "and the graph it would send; nothing is queued.")
    ] = False,
) -> None:
    """Run a workflow on a running server: follow its progress, write its files."""
    import json

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from comfygen.remote import Remote, RemoteError, parse_inputs, save_files

    try:
        values = parse_inputs(inputs or [])
        with Remote(server, api_key=api_key, api_key_header=api_key_header) as remote:
            if dry_run:
                checked = remote.validate(workflow, values)
                if as_json:
                    out.print_json(json.dumps(checked))
                else:
                    err.print(f"{workflow}: the request is valid (nothing was run)")
                    out.print(json.dumps({"input": checked["input"]}, indent=2),
                              highlight=False, soft_wrap=True)
                return
            accepted = remote.submit(workflow, values)
            job_id = accepted["job_id"]
            if as_json:
                for _event in remote.events(job_id):
                    pass
            else:
                columns = (TextColumn("{task.description}"), BarColumn(),
                           TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
                with Progress(*columns, console=err, transient=True) as bar:
                    task = bar.add_task(f"{workflow}: queued", total=100)
                    for event in remote.events(job_id):
                        data = event.data
                        if "percent" in data:
                            bar.update(task, completed=data["percent"])
                        if event.type == "executing":
                            bar.update(task, description=f"{workflow}: {data.get('class_type')}"
                                       f" (node {data.get('node')})")
                        elif event.type == "running":
                            bar.update(task, description=f"{workflow}: running")
                        elif event.type == "succeeded":
                            bar.update(task, completed=100)
            job = remote.job(job_id)
    except RemoteError as exc:
        if as_json:
            out.print_json(json.dumps({"error": exc.message, "status": exc.status,
                                       "body": exc.body}))
        else:
            err.print(f"[red]error: {exc.message}[/red]", highlight=False, soft_wrap=True)
            if isinstance(exc.body, dict) and exc.body.get("detail"):
                for item in exc.body["detail"]:
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    err.print(f"  {loc}: {item.get('msg')}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    files = save_files(job["result"], out_dir) if job["state"] == "succeeded" else []
    if as_json:
        result = job.get("result") or {}
        out.print_json(json.dumps({
            "job_id": job_id, "id": accepted.get("id"), "state": job["state"],
            "files": [str(p) for p in files], "filenames": result.get("filenames", []),
            "input": result.get("input"), "stats": result.get("stats"), "error": job["error"],
        }))
    elif job["state"] == "succeeded":
        for path in files:
            out.print(f"wrote {path}")
    else:
        error = job.get("error") or {}
        err.print(f"[red]job {job_id} {job['state']}: {error.get('error', '')}[/red]",
                  highlight=False, soft_wrap=True)
    if job["state"] != "succeeded":
        raise typer.Exit(1)


def main() -> None:
    app()

"""The `comfygen` command: a thin client of the library (generator, node definitions, server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from comfygen.config import GeneratorConfig, load_config
from comfygen.errors import GenerationError, Problem
from comfygen.generator import build_irs, generate, stale_files, write
from comfygen.project import add_workflow

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
nodes_app = typer.Typer(no_args_is_help=True, help="Node definitions (ComfyUI's /object_info).")
app.add_typer(nodes_app, name="nodes")
out = Console()
err = Console(stderr=True)

RootOpt = Annotated[
    Path | None, typer.Option("--root", help="Project folder (default: nearest pyproject.toml).")
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", help="Read node definitions from this live ComfyUI instead of the snapshot."
    ),
]


def _config(root: Path | None, url: str | None = None) -> GeneratorConfig:
    return load_config(root, comfyui_url=url)


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
    table = Table("endpoint", "fields", "outputs", "source")
    for ir in sorted(irs, key=lambda i: i.path):
        table.add_row(
            f"POST /workflow/{ir.path}",
            ", ".join(f.name for f in ir.fields),
            ", ".join(o.node for o in ir.outputs),
            ir.workflow_file,
        )
    out.print(table)


@app.command("add-workflow")
def add_workflow_cmd(
    path: Annotated[str, typer.Argument(help="MODEL/NAME, e.g. sd3.5-medium/txt2img.")],
    workflow: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Exported workflow (API or UI format)."),
    ],
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec", exists=True, dir_okay=False, help="Mapping spec; drafted when left out."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing workflow of that name.")
    ] = False,
    root: RootOpt = None,
    url: UrlOpt = None,
) -> None:
    """Copy a workflow (and spec) into workflow_templates/ and regenerate."""
    config = _config(root, url)
    try:
        added = add_workflow(config, path, workflow, spec, force=force)
    except GenerationError as exc:
        raise _fail(exc) from None
    _report(added.result.problems)
    spec_note = " (drafted: review it)" if added.drafted else ""
    out.print(
        f"added POST /workflow/{path} from {added.workflow_path.relative_to(config.root)} "
        f"and {added.spec_path.relative_to(config.root)}{spec_note}"
    )


@nodes_app.command("refresh")
def nodes_refresh_cmd(
    url: Annotated[
        str, typer.Option("--url", help="A running ComfyUI, e.g. http://127.0.0.1:8188.")
    ],
    root: RootOpt = None,
) -> None:
    """Save the live ComfyUI's /object_info as the project's node definitions snapshot."""
    import httpx

    from comfygen.nodedefs import dump_object_info

    config = _config(root)
    try:
        response = httpx.get(url.rstrip("/") + "/object_info", timeout=60)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        err.print(f"[red]error: could not read {url}/object_info: {exc}[/red]")
        raise typer.Exit(1) from None
    config.object_info_path.write_text(dump_object_info(response.json()), encoding="utf-8")
    out.print(
        f"wrote {config.object_info_path.relative_to(config.root)} "
        f"({len(response.json())} node classes)"
    )


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
) -> None:
    """Serve every generated workflow at POST /workflow/<model>/<name> (see docs/configuration.md)."""
    from server.main import serve
    from server.settings import Settings

    flags = {
        "host": host,
        "port": port,
        "comfyui_url": comfyui_url,
        "comfyui_home": comfyui_home,
        "comfyui_base_dir": comfyui_base_dir,
        "log_level": log_level,
    }
    serve(Settings(**{k: v for k, v in flags.items() if v is not None}))


def main() -> None:
    app()

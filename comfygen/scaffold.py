"""`comfygen init`: a new project folder, and the workflows that ship with comfygen."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

from comfygen.config import CONFIG_FILE, load_config, project_table
from comfygen.errors import GenerationError, Problem
from comfygen.generator import generate, write
from comfygen.nodedefs import dump_object_info

SNAPSHOT = "object_info-comfyui-0.3.75.json"
"""The node definitions of a stock ComfyUI 0.3.75, shipped for projects made without a ComfyUI."""

CONFIG = """\
# A comfygen project: ComfyUI workflows in workflow_templates/, the code generated from them in
# generated/ (commit it; `comfygen check` fails when it is stale). See docs/spec.md.
templates_dir = "workflow_templates"
output_dir = "generated"
object_info = "workflow_templates/object_info.json"

[server]
# Settings of `comfygen serve`: any COMFYGEN_* setting in lower case, without the prefix.
# Command-line flags and the environment win over these (docs/configuration.md).
# comfyui_url = "http://127.0.0.1:8188"
"""

GITIGNORE = """\
.venv/
__pycache__/
comfyui-data/
comfygen-jobs.sqlite3*
"""

README = """\
# {name}

A [comfygen](https://pypi.org/project/comfygen/) project: each ComfyUI workflow in
`workflow_templates/<model>/<name>.json` (with its mapping spec `<name>.yaml`) is served as
`POST /workflow/<model>/<name>`.

```sh
comfygen add-workflow my-model/my-workflow path/to/exported_workflow.json   # drafts the spec
comfygen generate                                                          # after editing it
comfygen serve --comfyui-url http://127.0.0.1:8188                         # docs at /docs
```

`tests/test_generated.py` fails when `generated/` is out of date with the workflows: run it in CI.
"""

TEST = '''\
"""CI guard: generated/ must be what `comfygen generate` writes from workflow_templates/."""

import subprocess
import sys
from pathlib import Path


def test_generated_is_up_to_date() -> None:
    root = Path(__file__).resolve().parents[1]
    check = subprocess.run([sys.executable, "-m", "comfygen", "check", "--root", str(root)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
'''


@dataclass
class InitResult:
    root: Path
    written: list[Path]


def init_project(folder: Path, object_info: bytes | None = None) -> InitResult:
    """Make `folder` a comfygen project; `object_info` is a live `/object_info` body (default:
    the shipped ComfyUI 0.3.75 snapshot). Refuses a folder that already is a project."""
    folder = folder.resolve()
    if project_table(folder) is not None:
        raise GenerationError([Problem(str(folder), "is already a comfygen project")])
    if folder.exists() and not folder.is_dir():
        raise GenerationError([Problem(str(folder), "exists and is not a folder")])
    texts = {
        folder / CONFIG_FILE: CONFIG,
        folder / ".gitignore": GITIGNORE,
        folder / "README.md": README.format(name=folder.name),
        folder / "tests" / "test_generated.py": TEST,
    }
    clashes = [p for p in texts if p.exists()]
    if clashes:
        raise GenerationError([Problem(str(p), "already exists; not overwritten") for p in clashes])
    snapshot = folder / "workflow_templates" / "object_info.json"
    if object_info is None:
        snapshot_text = (files("comfygen") / "data" / SNAPSHOT).read_text(encoding="utf-8")
    else:
        snapshot_text = dump_object_info(json.loads(object_info))
    for path, text in {**texts, snapshot: snapshot_text}.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    config = load_config(folder)
    written = [*texts, snapshot, *write(generate(config), config.output_path)]
    return InitResult(folder, written)


def builtin_workflow(path: str) -> tuple[Path, Path]:
    """The workflow and spec files of a workflow shipped with comfygen (e.g.
    `sd3.5-medium/txt2img`), or GenerationError naming the ones there are."""
    root = files("comfygen") / "builtins"
    model, _, name = path.partition("/")
    folder = root / model
    workflow, spec = folder / f"{name}.json", folder / f"{name}.yaml"
    if not (name and workflow.is_file() and spec.is_file()):
        known = sorted(f"{m.name}/{w.name.removesuffix('.json')}" for m in root.iterdir()
                       if m.is_dir() for w in m.iterdir() if w.name.endswith(".json"))
        raise GenerationError([Problem(path, f"no such built-in workflow; there are: "
                                             f"{', '.join(known)}")])
    with as_file(workflow) as wf, as_file(spec) as sp:
        return Path(wf), Path(sp)


def builtin_models(path: str) -> Path | None:
    """The model manifest shipped beside a built-in workflow (its files' sources), if any."""
    manifest = files("comfygen") / "builtins" / path.partition("/")[0] / "models.yaml"
    if not manifest.is_file():
        return None
    with as_file(manifest) as found:
        return Path(found)

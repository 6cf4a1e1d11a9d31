"""A comfygen project: where it is (a folder with `comfygen.toml`, or a `pyproject.toml` with a
`[tool.comfygen]` table) and where its sources, node definitions and generated package live."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from comfygen.errors import GenerationError, Problem

CONFIG_FILE = "comfygen.toml"
PYPROJECT = "pyproject.toml"


class GeneratorConfig(BaseModel):
    """Where the sources, the node definitions and the generated package live."""

    model_config = ConfigDict(extra="ignore")

    root: Path
    templates_dir: Path = Path("workflow_templates")
    output_dir: Path = Path("generated")
    object_info: Path = Path("workflow_templates/object_info.json")
    comfyui_url: str | None = None
    server: dict[str, Any] = Field(default_factory=dict)
    """The project's server settings (`[server]` of comfygen.toml, `[tool.comfygen.server]`)."""

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path

    @property
    def templates_path(self) -> Path:
        return self.resolve(self.templates_dir)

    @property
    def output_path(self) -> Path:
        return self.resolve(self.output_dir)

    @property
    def object_info_path(self) -> Path:
        return self.resolve(self.object_info)

    @property
    def package(self) -> str:
        """The folder name of the generated package."""
        return self.output_path.name


def project_table(folder: Path) -> dict[str, Any] | None:
    """The comfygen table of `folder` (comfygen.toml, else pyproject's [tool.comfygen]), or None
    when the folder is not a comfygen project."""
    config = folder / CONFIG_FILE
    if config.is_file():
        return _read(config)
    pyproject = folder / PYPROJECT
    if pyproject.is_file():
        table = _read(pyproject).get("tool", {}).get("comfygen")
        return table if isinstance(table, dict) else None
    return None


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` (default: the working directory) that is a
    comfygen project, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if project_table(folder) is not None:
            return folder
    return None


def load_config(root: Path | None = None, **overrides: object) -> GeneratorConfig:
    """The project at `root` (taken as given), else the nearest one above the working directory,
    with non-None `overrides` on top."""
    if root is None:
        root = find_project_root()
        if root is None:
            where = Path.cwd()
            raise GenerationError([Problem(
                str(where), f"not inside a comfygen project (no {CONFIG_FILE}, and no "
                f"{PYPROJECT} with a [tool.comfygen] table, here or in a folder above): run "
                "`comfygen init`, or pass --root")])
    root = root.resolve()
    data = dict(project_table(root) or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return GeneratorConfig(root=root, **data)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise GenerationError([Problem(str(path), f"cannot read the project config: {exc}")]) \
            from None

"""Generator settings, read from `[tool.comfygen]` of the project's pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class GeneratorConfig(BaseModel):
    """Where the sources, the node definitions and the generated package live."""

    model_config = ConfigDict(extra="ignore")

    root: Path
    templates_dir: Path = Path("workflow_templates")
    output_dir: Path = Path("generated")
    object_info: Path = Path("workflow_templates/object_info.json")
    comfyui_url: str | None = None

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
        """The import name of the generated package (its folder name)."""
        return self.output_path.name


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` with a pyproject.toml, else `start` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists():
            return folder
    return here


def load_config(root: Path | None = None, **overrides: object) -> GeneratorConfig:
    """`[tool.comfygen]` of root/pyproject.toml, with non-None `overrides` on top."""
    root = find_project_root(root)
    data: dict[str, object] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        data = (
            tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("comfygen", {})
        )
    data.update({k: v for k, v in overrides.items() if v is not None})
    return GeneratorConfig(root=root, **data)

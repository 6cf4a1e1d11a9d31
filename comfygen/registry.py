"""The workflows a project serves: its generated package, imported from the project's own folder
(never whatever `generated` package happens to be on sys.path), once it is up to date."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import sys
from collections.abc import Mapping
from types import ModuleType

from comfygen.config import GeneratorConfig
from comfygen.errors import GenerationError, Problem
from comfygen.generator import stale_workflows
from comfygen.runtime import Workflow


def load_workflows(config: GeneratorConfig, *, check: bool = True,
                   fresh: bool = False) -> Mapping[str, Workflow]:
    """Every workflow of the project, keyed by its path below /workflow/.

    With `check`, refuse (GenerationError) a generated package older than its sources. `fresh`
    imports the package again under a new name (`serve --reload`): the copy already imported
    stays as it is for whoever still uses it."""
    if check:
        stale = stale_workflows(config)
        if stale:
            raise GenerationError(stale)
    package = _import_package(config, next(_reloads) if fresh else 0)
    registry = importlib.import_module(f"{package.__name__}.registry")
    return registry.WORKFLOWS


_reloads = itertools.count(1)


def _import_package(config: GeneratorConfig, generation: int = 0) -> ModuleType:
    """The generated package under a name made from its folder, so that two projects, or an
    installed package called `generated`, never shadow each other."""
    folder = config.output_path.resolve()
    init = folder / "__init__.py"
    if not init.is_file():
        raise GenerationError([Problem(str(folder), "no generated package here: run "
                                                    "`comfygen generate`")])
    name = f"comfygen_project_{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}"
    if generation:
        name += f"_reload{generation}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, init,
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module

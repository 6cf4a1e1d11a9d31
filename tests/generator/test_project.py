"""Projects: found from the working directory or --root, made by `comfygen init`, and their
generated package imported from the project folder and refused when stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.config import find_project_root, load_config
from comfygen.errors import GenerationError
from comfygen.registry import load_workflows

from .helpers import ROOT

runner = CliRunner()
INVERT = ROOT / "docs" / "examples" / "invert"


def test_shipped_copies_match_the_repository_project() -> None:
    """The snapshot and built-in workflow in the wheel are this project's own files."""
    shipped = ROOT / "comfygen"
    assert (shipped / "data/object_info-comfyui-0.3.75.json").read_bytes() == (
        ROOT / "workflow_templates/object_info.json").read_bytes()
    for suffix in (".json", ".yaml"):
        assert (shipped / f"builtins/sd3.5-medium/txt2img{suffix}").read_bytes() == (
            ROOT / f"workflow_templates/sd3.5-medium/txt2img{suffix}").read_bytes()


def test_project_found_from_a_subfolder(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "p")]).exit_code == 0
    deep = tmp_path / "p" / "workflow_templates" / "x"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == (tmp_path / "p").resolve()
    assert find_project_root(tmp_path) is None


def test_outside_a_project_commands_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "not inside a comfygen project" in result.output and "comfygen init" in result.output


def test_init_refuses_an_existing_project(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 1 and "already a comfygen project" in again.output


def test_server_settings_come_from_the_project(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from server.settings import project_settings

    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    config = tmp_path / "comfygen.toml"
    config.write_text(config.read_text().replace('# comfyui_url = "http://127.0.0.1:8188"',
                                                 'port = 9123\nretry_after = 7'))
    project = load_config(tmp_path)
    monkeypatch.setenv("COMFYGEN_RETRY_AFTER", "3")
    settings = project_settings(project.server, host="0.0.0.0")
    assert (settings.port, settings.retry_after, settings.host) == (9123, 3, "0.0.0.0")


def test_two_projects_in_one_process_keep_their_own_workflows(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert runner.invoke(app, ["init", str(tmp_path / name)]).exit_code == 0
    added = runner.invoke(app, ["add-workflow", "demo/invert", str(INVERT / "workflow.json"),
                                "--spec", str(INVERT / "spec.yaml"), "--root", str(tmp_path / "a")])
    assert added.exit_code == 0, added.output
    a = load_workflows(load_config(tmp_path / "a"))
    b = load_workflows(load_config(tmp_path / "b"))
    assert set(a) == {"demo/invert"} and set(b) == set()


def test_a_stale_package_is_refused_with_the_file_named(tmp_path: Path) -> None:
    project = tmp_path / "p"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    shutil.copy(INVERT / "workflow.json", tmp_path / "w.json")
    assert runner.invoke(app, ["add-workflow", "demo/invert", str(tmp_path / "w.json"),
                               "--root", str(project)]).exit_code == 0
    workflow = project / "workflow_templates/demo/invert.json"
    workflow.write_text(workflow.read_text().replace('"color": 0', '"color": 1'))
    with pytest.raises(GenerationError) as caught:
        load_workflows(load_config(project))
    assert [p.file for p in caught.value.problems] == ["workflow_templates/demo/invert.json"]
    (project / "workflow_templates/demo/invert.yaml").unlink()
    workflow.unlink()
    with pytest.raises(GenerationError) as caught:
        load_workflows(load_config(project))
    assert "source is gone" in str(caught.value)

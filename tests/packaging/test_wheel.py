"""comfygen as a dependency: the wheel and sdist build, the wheel installs into a fresh virtualenv
outside the checkout (the session fixtures `dist` and `installed` of tests/conftest.py), and from
there `comfygen init` makes a project that serves its own endpoint while this repository's project
serves SD3.5 on another port; neither sees the other's endpoints."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import zipfile
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from tests.serving import serving as run_server
from tests.wheel import clean_env

ROOT = Path(__file__).resolve().parents[2]
INVERT = ROOT / "docs" / "examples" / "invert"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(bin_dir / "comfygen"), *args], cwd=cwd, capture_output=True,
                            text=True, env=clean_env(), timeout=300)
    assert result.returncode == 0, f"comfygen {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_wheel_ships_the_library_and_server_but_no_user_workflows(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.startswith("comfygen-")}
    assert tops == {"comfygen", "server"}
    assert "comfygen/builtins/sd3.5-medium/txt2img.json" in names
    assert "comfygen/data/object_info-comfyui-0.3.75.json" in names
    assert "comfygen/templates/workflow_module.py.jinja" in names
    (sdist,) = dist.glob("*.tar.gz")
    assert sdist.stat().st_size > 0


def serving(args: list[str], cwd: Path, port: int) -> AbstractContextManager[str]:
    return run_server([*args, "--port", str(port)], cwd, clean_env(), port)


def test_an_installed_comfygen_serves_the_project_it_runs_in(
        installed: Path, comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    where = run(installed, "--help", cwd=tmp_path)
    assert "init" in where.stdout and "serve" in where.stdout
    origin = subprocess.run([str(installed / "python"), "-c", "import comfygen; "
                             "print(comfygen.__file__)"], capture_output=True, text=True,
                            env=clean_env(), cwd=tmp_path, check=True).stdout
    assert str(installed.parent) in origin and str(ROOT) not in origin

    run(installed, "init", "mine", cwd=tmp_path)
    project = tmp_path / "mine"
    shutil.copy(INVERT / "workflow.json", tmp_path / "invert.json")
    shutil.copy(INVERT / "spec.yaml", tmp_path / "invert.yaml")
    run(installed, "add-workflow", "demo/invert", "../invert.json", "--spec", "../invert.yaml",
        cwd=project)
    run(installed, "generate", cwd=project)
    check = subprocess.run([str(installed / "python"), "-m", "pytest", "-q", "tests"],
                           cwd=project, capture_output=True, text=True, env=clean_env())
    # the project's own CI test runs `comfygen check` (pytest itself is not a dependency)
    if "No module named pytest" not in check.stderr:
        assert check.returncode == 0, check.stdout + check.stderr

    attach = ["--comfyui-url", comfyui.url]
    mine = [str(installed / "comfygen"), "serve", *attach]
    repo = [str(ROOT / ".venv" / "bin" / "comfygen"), "serve", "--root", str(ROOT), *attach]
    with serving(mine, project, free_port()) as mine_url, \
            serving(repo, tmp_path, free_port()) as repo_url:
        mine_paths = set(httpx.get(mine_url + "/openapi.json", timeout=30).json()["paths"])
        repo_paths = set(httpx.get(repo_url + "/openapi.json", timeout=30).json()["paths"])
        assert "/workflow/demo/invert" in mine_paths
        assert "/workflow/sd3.5-medium/txt2img" not in mine_paths
        assert "/workflow/sd3.5-medium/txt2img" in repo_paths
        assert "/workflow/demo/invert" not in repo_paths

        r = httpx.post(mine_url + "/workflow/demo/invert", timeout=120,
                       json={"input": {"color": 0x3366CC, "size": 64}})
        assert r.status_code == 200, r.text
        body = r.json()
        image = Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).convert("RGB")
        assert image.size == (64, 64)
        assert all(abs(a - b) <= 1 for a, b in zip(image.getpixel((5, 5)), (0xCC, 0x99, 0x33),
                                                    strict=True))
        assert json.loads(json.dumps(body["input"])) == {"color": 0x3366CC, "size": 64}


def test_serve_refuses_a_stale_project(installed: Path, tmp_path: Path) -> None:
    run(installed, "init", "stale", cwd=tmp_path)
    project = tmp_path / "stale"
    run(installed, "add-workflow", "demo/invert", str(INVERT / "workflow.json"), "--spec",
        str(INVERT / "spec.yaml"), cwd=project)
    spec = project / "workflow_templates" / "demo" / "invert.yaml"
    spec.write_text(spec.read_text().replace("ge: 64", "ge: 32"))
    result = subprocess.run([str(installed / "comfygen"), "serve", "--port", str(free_port())],
                            cwd=project, capture_output=True, text=True, env=clean_env(),
                            timeout=60)
    assert result.returncode == 1
    assert "workflow_templates/demo/invert.json" in result.stderr
    assert "comfygen generate" in result.stderr
    run(installed, "generate", cwd=project)
    run(installed, "check", cwd=project)


def test_builtin_sd35_is_the_repository_project_s_own(installed: Path, tmp_path: Path) -> None:
    run(installed, "init", "withsd", cwd=tmp_path)
    project = tmp_path / "withsd"
    run(installed, "add-workflow", "--builtin", "sd3.5-medium/txt2img", cwd=project)
    for suffix in (".json", ".yaml"):
        added = project / "workflow_templates" / "sd3.5-medium" / f"txt2img{suffix}"
        assert added.read_bytes() == (
            ROOT / "workflow_templates" / "sd3.5-medium" / f"txt2img{suffix}").read_bytes()
    generated = project / "generated" / "sd3_5_medium" / "txt2img.py"
    assert generated.read_text() == (ROOT / "generated/sd3_5_medium/txt2img.py").read_text()
    bad = subprocess.run([str(installed / "comfygen"), "add-workflow", "--builtin", "nope/x"],
                         cwd=project, capture_output=True, text=True, env=clean_env())
    assert bad.returncode == 1 and "sd3.5-medium/txt2img" in bad.stderr

"""The guides in docs/ are real: every command and code block of getting-started.md,
models-and-custom-nodes.md and deployment.md runs here, or is the file it claims to be.

getting-started.md runs as written in an empty folder with an environment that points nowhere
near this checkout, with one stand-in: `pip install comfygen` installs the wheel built from this
checkout (comfygen is not on PyPI yet). The other guides' commands run literally, with `bash`, in a
scratch copy of this repository's project (so they never touch the checkout's
`workflow_templates/` and `generated/`). Servers attach to the session's ComfyUI instead of
launching one and listen on a free port instead of 8000 (URLs in the commands are rewritten).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from server.settings import Settings
from tests.serving import serving as run_server
from tests.wheel import clean_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(doc: str, lang: str | None = None) -> list[str]:
    found = BLOCK.findall((DOCS / doc).read_text(encoding="utf-8"))
    return [body for kind, body in found if lang is None or kind == lang]


def commands(doc: str) -> list[str]:
    """Every command line of the doc's `sh` blocks, comments removed, in order."""
    lines = []
    for body in blocks(doc, "sh"):
        for line in body.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def make_recipe(target: str) -> list[str]:
    """The commands `make TARGET` runs (dry run), prerequisites first."""
    out = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), target],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the project's sources (the venv linked) to run the guides in."""
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("workflow_templates", "generated", "docs/examples"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def sh(line: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
       ) -> subprocess.CompletedProcess[str]:
    env = {**(env or os.environ), "COLUMNS": "200"}  # `comfygen list` prints a wide table
    result = subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, text=True,
                            env=env, timeout=timeout)
    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    return result


def pythonpath(scratch: Path) -> str:
    """Serve the scratch project's generated/ (in a clone, the editable install finds it)."""
    return os.pathsep.join(p for p in (str(scratch), os.environ.get("PYTHONPATH")) if p)


def serving(line: str, scratch: Path, env: dict[str, str], port: int) -> AbstractContextManager[str]:
    """Run a serve command line in the background until /ready answers 200; SIGTERM it after."""
    return run_server(["bash", "-c", line], scratch, env, port, timeout=90)


# -- files shown in the guides are the files -------------------------------------------------

SHOWN = [
    ("getting-started.md", "json", 0, "docs/examples/invert/workflow.json"),
    ("getting-started.md", "yaml", 0, "docs/examples/invert/spec.yaml"),
    ("getting-started.md", "python", 0, "docs/examples/invert/save_images.py"),
    ("models-and-custom-nodes.md", "python", 0, "docs/examples/custom_node/comfygen_example_nodes/__init__.py"),
    ("models-and-custom-nodes.md", "json", 0, "docs/examples/custom_node/tint.json"),
    ("models-and-custom-nodes.md", "yaml", 0, "docs/examples/custom_node/tint.yaml"),
    ("models-and-custom-nodes.md", "yaml", 1, "workflow_templates/models.yaml"),
    ("deployment.md", "dockerfile", 0, "deploy/Dockerfile"),
    ("deployment.md", "dockerfile", 1, "deploy/project.Dockerfile"),
    ("deployment.md", "yaml", 0, "deploy/kubernetes.yaml"),
]


@pytest.mark.parametrize(("doc", "lang", "index", "path"), SHOWN)
def test_code_blocks_are_the_example_files(doc: str, lang: str, index: int, path: str) -> None:
    assert blocks(doc, lang)[index] == (ROOT / path).read_text(encoding="utf-8")


@pytest.mark.parametrize("doc", ["getting-started.md", "models-and-custom-nodes.md",
                                 "deployment.md", "performance.md"])
def test_every_block_is_accounted_for(doc: str) -> None:
    """A new block needs a test: shown files are listed above, `sh` and `text` run below."""
    shown = sum(1 for d, *_ in SHOWN if d == doc)
    others = [b for b in BLOCK.findall((DOCS / doc).read_text()) if b[0] not in ("sh", "text")]
    assert len(others) == shown


# -- getting-started.md ----------------------------------------------------------------------


def test_the_two_commands_are_make_targets() -> None:
    """The README's two commands for working on comfygen are make targets with these recipes."""
    assert commands("../README.md")[:2] == ["make serve", "make test"]
    serve, test = make_recipe("serve"), make_recipe("test")
    assert serve == ["scripts/setup.sh", ".venv/bin/comfygen serve"]
    assert test[0] == "scripts/setup.sh"
    assert test[-1] == ".venv/bin/pytest -n 2 --dist loadgroup"  # two xdist workers


def test_readme_tables_are_complete() -> None:
    """The README's docs table links every page of docs/, and tests/README.md names every folder
    of tests/."""
    readme = (ROOT / "README.md").read_text()
    pages = {p.name for p in DOCS.glob("*.md")}
    linked = set(re.findall(r"^\| \[[\w-]+\]\(docs/([\w.-]+\.md)\) \|", readme, re.M))
    assert linked == pages, pages ^ linked
    tests_readme = (ROOT / "tests/README.md").read_text()
    folders = {p.name for p in (ROOT / "tests").iterdir()
               if p.is_dir() and not p.name.startswith((".", "__"))}
    named = set(re.findall(r"`(\w+)/`", tests_readme))
    assert folders <= named, folders - named


@pytest.mark.comfyui
def test_first_endpoint_in_five_minutes(dist: Path, comfyui: ComfyUIProcess, tmp_path: Path
                                        ) -> None:
    """From `pip install` to the saved image, as written; the reader saves the shown files."""
    (wheel,) = dist.glob("*.whl")
    make_venv, install, activate, init, cd, add, listing, check, serve, *calls = commands(
        "getting-started.md")
    assert install == ".venv/bin/pip install comfygen", install
    assert activate.startswith("source ") and cd.startswith("cd "), (activate, cd)
    env = clean_env()
    sh(make_venv, tmp_path, env)
    sh(install.replace(" comfygen", f" {wheel}"), tmp_path, env, timeout=600)
    # the shell state every later command runs in: the virtualenv active, then inside the project
    state = [activate]
    sh(" && ".join([*state, init]), tmp_path, env)
    project = tmp_path / cd.split()[1]
    assert (project / "comfygen.toml").is_file()
    state.append(cd)
    origin = sh(" && ".join([*state, 'python -c "import comfygen; print(comfygen.__file__)"']),
                tmp_path, env).stdout
    assert str(tmp_path / ".venv") in origin and str(ROOT) not in origin
    (tmp_path / "invert.json").write_text(blocks("getting-started.md", "json")[0])
    (tmp_path / "invert.yaml").write_text(blocks("getting-started.md", "yaml")[0])
    (project / "save_images.py").write_text(blocks("getting-started.md", "python")[0])

    sh(" && ".join([*state, add]), tmp_path, env)
    assert (project / "generated/demo/invert.py").exists()
    listed = sh(" && ".join([*state, listing]), tmp_path, env).stdout
    assert "POST /workflow/demo/invert" in listed and "fields: color, size" in listed
    sh(" && ".join([*state, check]), tmp_path, env)
    assert "--comfyui-url http://127.0.0.1:8188" in serve
    port = free_port()
    server_env = {**env, "COMFYGEN_PORT": str(port),
                  "COMFYGEN_COMFYUI_OUTPUT_DIR": str(comfyui.base_dir / "output")}
    command = " && ".join([*state, serve.replace("http://127.0.0.1:8188", comfyui.url)])
    with serving(command, tmp_path, server_env, port) as url:
        for line in calls:
            sh(" && ".join([*state, line.replace("http://127.0.0.1:8000", url)]), tmp_path, env)
        bad = httpx.post(url + "/workflow/demo/invert", json={"input": {"size": 4096}})
        assert bad.status_code == 422 and "size" in bad.text
        paths = httpx.get(url + "/openapi.json").json()["paths"]
        assert "/workflow/demo/invert" in paths
        assert "/workflow/sd3.5-medium/txt2img" not in paths  # the project's, not this repo's
    body = json.loads((project / "response.json").read_text())
    assert body["input"] == {"color": 3368652, "size": 256}
    (png,) = (project / "out").iterdir()
    with Image.open(png) as img:
        assert img.size == (256, 256)
        pixel = img.convert("RGB").getpixel((10, 10))
        assert all(abs(a - b) <= 1 for a, b in zip(pixel, (0xCC, 0x99, 0x33), strict=True))


# -- models-and-custom-nodes.md --------------------------------------------------------------


@pytest.mark.comfyui
def test_models_and_custom_node(scratch: Path, comfyui_home: Path) -> None:
    """Install the example node, launch ComfyUI, add a model file, refresh, add, serve, call."""
    mkdir_models, copy_model, list_models, copy_node, start, refresh, add = commands(
        "models-and-custom-nodes.md")
    (scratch / "my-checkpoint.safetensors").write_bytes(b"not really a model")
    sh(copy_node, scratch)
    assert (scratch / "comfyui-data/custom_nodes/comfygen_example_nodes/__init__.py").exists()
    assert start.startswith("COMFYGEN_COMFYUI_PORT=8188 ")
    comfy_port, port = free_port(), free_port()
    env = {**os.environ, "COMFYGEN_PORT": str(port), "PYTHONPATH": pythonpath(scratch),
           "COMFYGEN_COMFYUI_HOME": str(comfyui_home)}
    with serving(start.replace("8188", str(comfy_port)), scratch, env, port) as url:
        sh(mkdir_models, scratch)
        sh(copy_model, scratch)
        listed = json.loads(sh(list_models.replace("http://127.0.0.1:8000", url), scratch).stdout)
        assert "my-checkpoint.safetensors" in listed["checkpoints"]
        sh(refresh.replace("8188", str(comfy_port)), scratch)
        info = json.loads((scratch / "workflow_templates/object_info.json").read_text())
        assert info["ExampleTint"]["input"]["required"]["mode"][0] == ["mix", "multiply"]
        sh(add, scratch)
    generated = (scratch / "generated/demo/tint.py").read_text()
    assert 'choices={\n        "mode": ChoiceSource("ExampleTint", "mode")' in generated
    (excerpt,) = blocks("models-and-custom-nodes.md", "text")
    for line in excerpt.strip().splitlines():
        assert line.strip() in generated, line
    # "Restart the server": the same command again, which now mounts POST /workflow/demo/tint
    port = free_port()
    env["COMFYGEN_PORT"] = str(port)
    with serving(start.replace("8188", str(free_port())), scratch, env, port) as url:
        r = httpx.post(url + "/workflow/demo/tint", timeout=120,
                       json={"input": {"color": 0x0000FF, "strength": 1.0}})
        assert r.status_code == 200, r.text
        assert r.json()["input"] == {"color": 255, "strength": 1.0, "mode": "mix",
                                     "invert_first": False}
        bad = httpx.post(url + "/workflow/demo/tint", json={"input": {"mode": "screen"}})
        assert bad.status_code == 422, bad.text
        assert "multiply" in bad.text
        enum = httpx.get(url + "/openapi.json").text
        assert '"mix","multiply"' in enum.replace(" ", "")


# -- performance.md ------------------------------------------------------------------------


@pytest.mark.slow
def test_overhead_benchmark_runs_and_prints_the_documented_tables(comfyui_home: Path) -> None:
    """The quick run end to end (it starts its own ComfyUI); the full one differs in counts only."""
    full, quick = commands("performance.md")
    assert full == ".venv/bin/python benchmarks/overhead.py" and quick == f"{full} --quick"
    out = sh(quick, ROOT, timeout=600).stdout
    doc = (DOCS / "performance.md").read_text()
    headers = [line for line in out.splitlines() if line.startswith("| size |")]
    assert len(headers) == 3 and all(h in doc for h in headers), headers
    rows = [line for line in out.splitlines() if re.match(r"\| (512|1024)² \|", line)]
    # latency: 2 sizes x 2 concurrencies x 3 arms; throughput estimators and time breakdown:
    # 2 sizes x 2 comfygen arms each (the noisy 1024² rows are labelled apart)
    assert len(rows) == 12 + 4 + 4
    assert any(line.startswith("| 1024² noisy | 1 | typed |") for line in out.splitlines())
    for label in ("server start to ready", "server RSS", "HTTP floor", "paired differences"):
        assert label in out


# -- deployment.md ---------------------------------------------------------------------------


def test_deployment_settings_are_real_settings() -> None:
    """Every COMFYGEN_* variable the deployment guide sets is a setting that parses."""
    text = (DOCS / "deployment.md").read_text() + (ROOT / "deploy/kubernetes.yaml").read_text()
    names = set(re.findall(r"COMFYGEN_([A-Z_]+)", text))
    fields = {name.upper() for name in Settings.model_fields}
    assert names and names <= fields, names - fields


def test_kubernetes_manifest_probes_the_server() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = container["ports"][0]["containerPort"]
    assert int(env["COMFYGEN_PORT"]) == port and env["COMFYGEN_HOST"] in ("0.0.0.0", "::")
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": port}
    assert deployment["spec"]["replicas"] >= 2
    Settings(**{k.removeprefix("COMFYGEN_").lower(): json.loads(v) if v.startswith("[") else v
                for k, v in env.items() if k.startswith("COMFYGEN_") and v is not None})
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["targetPort"] == port


def test_dockerfile_runs_a_real_command() -> None:
    """No container runtime here: check what the image would run against the project."""
    text = (ROOT / "deploy/Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        assert (ROOT / source).exists(), source
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))
    assert cmd[:2] == ["comfygen", "serve"]
    exposed = re.search(r"^EXPOSE (\d+)$", text, re.M).group(1)
    assert f"COMFYGEN_PORT={exposed}" in text
    help_text = sh(f".venv/bin/comfygen {' '.join(cmd[1:])} --help", ROOT).stdout
    assert "Serve the project's workflows" in help_text


def test_project_image_is_the_base_image_plus_the_project() -> None:
    """Two lines: FROM the tag the base image's build command gives it, COPY the project to the
    folder the base image serves from; built from the project root."""
    base = (ROOT / "deploy/Dockerfile").read_text()
    project = (ROOT / "deploy/project.Dockerfile").read_text()
    tag = re.search(r"^#\s+docker build -f deploy/Dockerfile .* -t (\S+) \.$", base, re.M).group(1)
    workdir = re.findall(r"^WORKDIR (\S+)$", base, re.M)[-1]
    instructions = [line for line in project.splitlines() if line and not line.startswith("#")]
    assert instructions == [f"FROM {tag}", f"COPY . {workdir}"]
    assert re.search(r"root: docker build -f project\.Dockerfile -t \S+ \.$", project, re.M)
    assert re.search(r"^CMD \[\"comfygen\", \"serve\"\]$", base, re.M)  # finds the project in
    # its working directory, as `test_serve_refuses_a_stale_project` (tests/packaging) runs it


def test_gpu_machine_commands() -> None:
    """The GPU guide's command line: its settings parse and its ComfyUI command has no --cpu."""
    (gpu,) = [line for line in commands("deployment.md") if "comfygen serve" in line]
    env = dict(re.findall(r"(COMFYGEN_[A-Z_]+)='([^']*)'", gpu))
    command = json.loads(env["COMFYGEN_COMFYUI_COMMAND"])
    assert "--cpu" not in command and {"{host}", "{port}", "{base_dir}"} <= set(command)
    Settings(comfyui_command=command, comfyui_home=env["COMFYGEN_COMFYUI_HOME"])

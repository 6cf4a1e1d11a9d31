"""The reference pages in docs/ are real: every command and code block of api.md,
configuration.md, sd35-on-cpu.md, workflow-formats.md and architecture.md runs here, or is checked
against the code it describes (security.md has no blocks: its settings tables are checked).

api.md's shell blocks run literally with `bash`, `HOST` set to a live server on the session
ComfyUI. Two stand-ins: the SD3.5 endpoint needs model files the session ComfyUI lacks, so its
commands run once as written (and get the documented 424) and once with the path swapped for
`docs/txt2img`, a model-free stand-in taking the same `prompt` and `steps`; the placeholder
`my-model/upscale` becomes the test registry's `test/scale` (image, width, height). JSON examples
are compared with real answers: same keys, same value types, equal strings except where the doc
writes `...`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Request
from PIL import Image
from pydantic import ConfigDict, Field

from comfygen.comfy.launcher import ComfyUIProcess
from comfygen.config import load_config
from comfygen.registry import load_workflows
from comfygen.runtime import Workflow, WorkflowInput
from comfygen.runtime.input import RANDOM_KEY
from server.app import create_app
from server.media.limits import MediaLimits
from server.security.policy import UrlPolicy
from server.settings import Settings, project_settings
from server.webhooks.deliver import RetryPolicy
from tests.e2e.conftest import sd35_fixture_dir  # noqa: F401  (a fixture)
from tests.jobs_api.live import SECRET, live, settings_for
from tests.server.server_workflows import invert, registry

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
SD35 = "sd3.5-medium/txt2img"
STAND_INS = {SD35: "docs/txt2img", "my-model/upscale": "test/scale"}


def blocks(doc: str, lang: str | None = None) -> list[str]:
    found = BLOCK.findall((DOCS / doc).read_text(encoding="utf-8"))
    return [body for kind, body in found if lang is None or kind == lang]


def commands(body: str) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines removed."""
    joined = re.sub(r"\\\n\s*", "", body)
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def stand_in(text: str) -> str:
    for path, other in STAND_INS.items():
        text = text.replace(path, other)
    return text


async def bash(script: str, cwd: Path, env: dict[str, str], check: bool = True,
               timeout: float = 60) -> tuple[int, str, str]:
    """Run without blocking the event loop the live server shares."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    code = proc.returncode or 0
    assert not check or code == 0, f"{script}\n{out.decode()}\n{err.decode()}"
    return code, out.decode(), err.decode()


def shell_env(url: str, **extra: str) -> dict[str, str]:
    assert shutil.which("jq"), "docs/api.md's examples need jq: apt-get install -y jq"
    path = f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"  # `comfygen` as installed
    return {**os.environ, "HOST": url, "PATH": path, "NO_PROXY": "*", **extra}


def like(doc: Any, real: Any, at: str = "$") -> list[str]:
    """Where `real` differs from the documented `doc`: dict keys (a "..." key allows more),
    list items (a final "..." allows more), value types, strings ("..." matches anything)."""
    if isinstance(doc, dict):
        if not isinstance(real, dict):
            return [f"{at}: {type(real).__name__}, documented an object"]
        keys = set(doc) - {"..."}
        extra = set() if "..." in doc else set(real) - keys
        problems = [f"{at}: keys missing {sorted(keys - set(real))}, undocumented "
                    f"{sorted(extra)}"] if keys - set(real) or extra else []
        return problems + [p for k in sorted(keys & set(real))
                           for p in like(doc[k], real[k], f"{at}.{k}")]
    if isinstance(doc, list):
        if not isinstance(real, list):
            return [f"{at}: {type(real).__name__}, documented a list"]
        more = bool(doc) and doc[-1] == "..."
        items = doc[:-1] if more else doc
        if len(real) < len(items) or (not more and len(real) != len(items)):
            return [f"{at}: {len(real)} items, documented {len(doc)}"]
        return [p for i, (d, r) in enumerate(zip(items, real, strict=False))
                for p in like(d, r, f"{at}[{i}]")]
    if isinstance(doc, str):
        pattern = ".*".join(re.escape(part) for part in doc.split("..."))
        if not isinstance(real, str) or not re.fullmatch(pattern, real, re.S):
            return [f"{at}: {real!r}, documented {doc!r}"]
        return []
    if type(doc) is not type(real):  # numbers and booleans: the type only
        return [f"{at}: {type(real).__name__} {real!r}, documented {type(doc).__name__}"]
    return []


# -- a live server with the test registry and the stand-ins ------------------------------


class TxtInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    prompt: Annotated[str, Field(description="What to draw (ignored: a model-free stand-in)")]
    steps: Annotated[int, Field(ge=1, le=100)] = 20
    seed: Annotated[int | None, Field(ge=0, json_schema_extra={RANDOM_KEY: True})] = None


def _build_txt(data: TxtInput) -> dict[str, Any]:
    return {"1": {"class_type": "EmptyImage", "inputs": {
                "width": 64, "height": 64, "batch_size": 1, "color": (data.seed or 0) % 0xFFFFFF}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                        "filename_prefix": "txt2img"}}}


TXT2IMG = Workflow(
    model="docs", name="txt2img", summary="Stand-in for sd3.5-medium/txt2img",
    description="EmptyImage → SaveImage", input_model=TxtInput, builder=_build_txt,
    graph=_build_txt(TxtInput(prompt="x")), targets={}, outputs=("2",), source="tests/docs")
# the 200 example: a SaveImage into a subfolder and a text output
RESPONSE = invert("docs-response", prefix="sub/x", outputs=("3", "5"), extra={
    "5": {"class_type": "PreviewAny", "inputs": {"source": "hello text"}}})


def docs_registry() -> dict[str, Workflow]:
    return {**registry(), TXT2IMG.path: TXT2IMG, RESPONSE.path: RESPONSE}


@contextlib.asynccontextmanager
async def server(comfyui: ComfyUIProcess, **overrides: Any) -> AsyncIterator[str]:
    async with live(create_app(settings_for(comfyui, **overrides), docs_registry())) as url:
        yield url


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        return img.size


# -- docs/api.md -----------------------------------------------------------------------------

API = "api.md"


@pytest.mark.parametrize(("doc", "kinds"), [
    ("api.md", ["bash", "bash", "json", "json", "json", "json", "json", "bash", "bash", "python"]),
    ("configuration.md", ["toml"]),
    ("sd35-on-cpu.md", ["sh", "sh"]),
    ("workflow-formats.md", ["python", "sh"]),
    ("architecture.md", ["text"]),
    ("security.md", []),
])
def test_every_block_is_accounted_for(doc: str, kinds: list[str]) -> None:
    """A new block needs a test here: these are the blocks the tests below run or check."""
    assert [kind for kind, _ in BLOCK.findall((DOCS / doc).read_text())] == kinds


@pytest.mark.comfyui
async def test_first_curl_and_multipart(comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    (call,) = commands(blocks(API, "bash")[0])
    upload, fields = commands(blocks(API, "bash")[1])
    Image.new("RGB", (40, 30), (200, 100, 50)).save(tmp_path / "photo.png")
    async with server(comfyui) as url:
        env = shell_env(url)
        # as written: the SD3.5 endpoint answers the documented 424 (the curl, without the pipe)
        curl = call.split(" | ")[0]
        _, out, _ = await bash(f"{curl} -s -w '\\n%{{http_code}}'", tmp_path, env)
        body, status = out.rsplit("\n", 1)
        assert status == "424" and json.loads(body)["type"] == "missing_model", out
        # the whole pipeline on the model-free stand-in
        await bash(stand_in(call), tmp_path, env)
        assert png_size((tmp_path / "image.png").read_bytes()) == (64, 64)

        for line, request_id in ((upload, "req-1"), (fields, None)):
            _, out, _ = await bash(stand_in(line), tmp_path, env)
            answer = json.loads(out)
            assert "error" not in answer, answer
            assert request_id is None or answer["id"] == request_id
            assert answer["input"]["width"] == 1024
            assert answer["input"]["image"].startswith("comfygen/")  # the upload's name
            assert png_size(base64.b64decode(answer["images"][0])) == (1024, 24)


@pytest.mark.comfyui
async def test_json_examples_match_real_answers(comfyui: ComfyUIProcess) -> None:
    ok, invalid, rejected, missing, failed = (json.loads(b) for b in blocks(API, "json"))
    (comfyui.base_dir / "input").mkdir(exist_ok=True)
    (comfyui.base_dir / "input" / "docs-not-an-image.png").write_bytes(b"not an image")
    async with server(comfyui) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        # Sync 200: the example's request to a workflow shaped like it
        r = await http.post(f"/workflow/{RESPONSE.path}",
                            json={"id": ok["id"], "input": {"color": 1056816, "size": 8}})
        assert r.status_code == 200, r.text
        assert like(ok, r.json()) == []
        assert png_size(base64.b64decode(r.json()["images"][0])) == (8, 8)

        r = await http.post("/workflow/test/scale", json={"input": {
            "image": base64.b64encode(b"x").decode(), "upscale_method": "magic"}})
        assert r.status_code == 422 and like(invalid, r.json()) == []

        graph = {"1": {"class_type": "EmptyImage", "inputs": {
                     "width": 1000000000, "height": 8, "batch_size": 1, "color": 0}},
                 "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                             "filename_prefix": "docs"}}}
        r = await http.post("/prompt", json={"prompt": graph})
        assert r.status_code == 400
        # everything but the top-level message: see test_validation_error_says_why
        assert [p for p in like(rejected, r.json()) if not p.startswith("$.error:")] == []

        r = await http.post(f"/workflow/{SD35}", json={"input": {"prompt": "a fox"}})
        assert r.status_code == 424 and like(missing, r.json()) == []

        graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "docs-not-an-image.png"}},
                 "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                             "filename_prefix": "docs"}}}
        r = await http.post("/prompt", json={"prompt": graph})
        assert r.status_code == 500 and like(failed, r.json()) == []


@pytest.mark.comfyui
async def test_validation_error_says_why(comfyui: ComfyUIProcess) -> None:
    rejected = json.loads(blocks(API, "json")[2])
    graph = {"1": {"class_type": "EmptyImage", "inputs": {
                 "width": 1000000000, "height": 8, "batch_size": 1, "color": 0}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "docs"}}}
    async with server(comfyui) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/prompt", json={"prompt": graph})
    assert r.json()["error"] == rejected["error"]


JOB_ID = r"^job=(\S+)$"


@pytest.mark.comfyui
async def test_jobs_sequence(comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + blocks(API, "bash")[2] + 'echo; echo "job=$job"\n'
    async with server(comfyui) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        env = shell_env(url)
        _, out, _ = await bash(stand_in(script), tmp_path, env)
        events = re.findall(r"^event: ?(\w+)", out, re.M)
        assert events[0] == "queued" and events[-1] == "succeeded", out
        assert png_size((tmp_path / "fox.png").read_bytes()) == (64, 64)
        job_id = re.search(JOB_ID, out, re.M).group(1)
        # the DELETE came after the end: the documented 409
        cancelled = json.loads(out[out.rindex('{"error"'):].splitlines()[0])
        assert cancelled["type"] == "job_finished" and cancelled["state"] == "succeeded"
        job = (await http.get(f"/jobs/{job_id}")).json()
        assert set(job) == {"id", "request_id", "workflow", "state", "progress", "prompt_id",
                            "created_at", "updated_at", "expires_at", "result", "error",
                            "timings", "status_url", "events_url"}
        assert set(job["progress"]) >= {"value", "max", "node"}

        # as written, on the SD3.5 endpoint: the job fails with the documented 424
        _, out, _ = await bash(script, tmp_path, env)
        assert re.findall(r"^event: ?(\w+)", out, re.M)[-1] == "failed", out
        job = (await http.get(f"/jobs/{re.search(JOB_ID, out, re.M).group(1)}")).json()
        assert job["error"]["status"] == 424 and job["error"]["type"] == "missing_model"

        r = await http.post(f"/workflow/{TXT2IMG.path}", json={"input": {"prompt": "a fox"}},
                            headers={"Prefer": "respond-async"})
        assert r.status_code == 202 and set(r.json()) == {
            "id", "status", "prompt", "input", "job_id", "state", "status_url", "events_url"}
        assert r.headers["location"] == f"/jobs/{r.json()['job_id']}"


@pytest.mark.comfyui
async def test_comfygen_run_lines(comfyui: ComfyUIProcess, tmp_path: Path) -> None:
    first, second = commands(blocks(API, "bash")[3])
    Image.new("RGB", (40, 30), (200, 100, 50)).save(tmp_path / "photo.png")
    async with server(comfyui) as url:
        env = shell_env(url, COMFYGEN_SERVER=url)  # the first line names no --server
        code, _, err = await bash(first, tmp_path, env, check=False)
        assert code == 1 and "lacks the model file(s)" in err, err  # as written: the 424
        await bash(stand_in(first), tmp_path, env)
        (png,) = (tmp_path / "out").iterdir()
        assert png_size(png.read_bytes()) == (64, 64)
    async with server(comfyui, api_key="docs-key", api_key_header="Salad-Api-Key") as url:
        env = shell_env(url, KEY="docs-key")
        line = stand_in(second).replace("https://api.example", url)
        _, out, _ = await bash(line, tmp_path, env)
        result = json.loads(out)
        assert set(result) == {"job_id", "id", "state", "files", "filenames", "input", "stats",
                               "error"}
        assert result["state"] == "succeeded" and result["error"] is None
        assert png_size(Path(tmp_path, result["files"][0]).read_bytes()) == (32, 24)
        code, out, _ = await bash(line.replace('"$KEY"', "wrong"), tmp_path, env, check=False)
        assert code == 1 and json.loads(out)["status"] == 401, out


def receiver(received: asyncio.Queue[tuple[bytes, dict[str, str]]]) -> FastAPI:
    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        await received.put((await request.body(), dict(request.headers)))
        return {}

    return app


@pytest.mark.comfyui
async def test_webhook_verification_snippet(comfyui: ComfyUIProcess) -> None:
    (snippet,) = blocks(API, "python")
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/api.md", "exec"), namespace)
    verify = namespace["verify"]
    received: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    async with live(receiver(received)) as hooks, server(comfyui) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/workflow/test/invert", json={
            "input": {"size": 4}, "webhook_v2": f"{hooks}/hook"})
        assert r.status_code == 202, r.text
        body, headers = await asyncio.wait_for(received.get(), 30)
    event = verify(SECRET, body, headers)
    assert event["type"] == "prompt.complete" and event["id"] == r.json()["id"]
    assert set(event) == {"type", "timestamp", "id", "prompt", "images", "filenames", "stats",
                          "outputs", "input"}
    assert png_size(base64.b64decode(event["images"][0])) == (4, 4)
    for bad_body, bad_secret in ((body.replace(b"prompt.complete", b"prompt.failed"), SECRET),
                                 (body, "whsec_" + base64.b64encode(b"x" * 24).decode())):
        with pytest.raises(Exception, match="(?i)signature"):
            verify(bad_secret, bad_body, headers)


# -- docs/configuration.md -------------------------------------------------------------------

CONFIG = "configuration.md"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("COMFYGEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_pyproject_table_and_priorities(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (table,) = blocks(CONFIG, "toml")
    (tmp_path / "pyproject.toml").write_text(table)
    values = tomllib.loads(table)["tool"]["comfygen"]["server"]
    project = load_config()  # the working directory's project
    settings = project_settings(project.server)
    assert {k: getattr(settings, k) for k in values} == values
    assert settings.comfyui_url is not None  # attached
    clean_env.setenv("COMFYGEN_REQUEST_TIMEOUT", "7")  # the environment beats pyproject.toml
    assert project_settings(project.server).request_timeout == 7
    # and a CLI flag beats both
    assert project_settings(project.server, request_timeout=9).request_timeout == 9


def test_environment_examples_parse(clean_env: pytest.MonkeyPatch) -> None:
    text = (DOCS / CONFIG).read_text()
    found = dict(re.findall(r"`(COMFYGEN_[A-Z_]+)=('[^']*'|[^`\s]+)`", text))
    assert set(found) == {"COMFYGEN_COMFYUI_ARGS", "COMFYGEN_MEDIA_URL_CREDENTIALS",
                          "COMFYGEN_API_KEY", "COMFYGEN_API_KEY_HEADER"}
    for name, value in found.items():
        clean_env.setenv(name, shlex.split(value)[0])
    settings = Settings()
    assert settings.comfyui_args == ["--highvram"]
    assert settings.api_key_header == "Salad-Api-Key"
    assert settings.api_key is not None
    assert "https://bucket.example/*" in repr(settings.media_url_credentials)


def shown(value: Any) -> str:
    """A default as the settings table prints it."""
    if value is None:
        return "—"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value) if value != "" else '""'


def test_settings_table_defaults_and_flags() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `COMFYGEN_\w+` \| (.*?) \| `(.*?)` \|", (DOCS / CONFIG)
                      .read_text(), re.M)
    assert [name for name, *_ in rows] == list(Settings.model_fields)
    help_text = subprocess.run([str(ROOT / ".venv/bin/comfygen"), "serve", "--help"],
                               capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
                               check=True).stdout
    # --root picks the project to serve, --reload watches it; neither is a setting (the page says so)
    flags = set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help", "--root", "--reload"}
    for flag in ("--root", "--reload"):
        assert flag in help_text and f"`{flag}`" in (DOCS / CONFIG).read_text()
    documented = {flag.strip("`") for _, flag, _ in rows if flag != "—"}
    assert documented == flags
    wrong = {name: (default, shown(Settings.model_fields[name].default))
             for name, _, default in rows if default != shown(Settings.model_fields[name].default)}
    assert wrong == {}


# -- docs/security.md (no code blocks: its settings tables) ---------------------------------


def amount(text: str) -> Any:
    text = text.strip().strip("`")
    units = {"s": 1, "MiB": 2**20, "M": 10**6}
    if m := re.fullmatch(r"([\d.]+) (s|MiB|M)", text):
        return float(m[1]) * units[m[2]]
    with contextlib.suppress(ValueError):
        return json.loads(text)
    return {"none": ()}.get(text, text)


@pytest.mark.parametrize("cls", [UrlPolicy, MediaLimits, RetryPolicy])
def test_security_tables_are_the_models(cls: type) -> None:
    text = (DOCS / "security.md").read_text()
    section = text[text.index(f"(`{cls.__name__}`)"):]
    table = section[:section.index("\n\n", section.index("| ---"))]
    for names, default in re.findall(r"^\| (`[^|]+`) \| ([^|]+) \|", table, re.M):
        names = re.findall(r"`(\w+)`", names)
        defaults = [amount(d) for d in default.split(", ")] if len(names) > 1 else [
            amount(default)]
        for name, doc in zip(names, defaults, strict=True):
            real = cls.model_fields[name].default
            if isinstance(doc, str):  # "http,https"
                doc = tuple(doc.split(","))
            assert doc == real or (doc == () and not real), (name, doc, real)


def test_security_settings_are_settings() -> None:
    text = (DOCS / "security.md").read_text()
    table = text[text.index("| Threat |"):text.index("Secrets —")]
    names = {n for cell in re.findall(r"\| ([^|]*) \|\n", table) for n in re.findall(r"`(\w+)`", cell)}
    assert names and names <= set(Settings.model_fields), names - set(Settings.model_fields)


# -- docs/sd35-on-cpu.md ---------------------------------------------------------------------

SD35_DOC = "sd35-on-cpu.md"


def test_sd35_commands_name_the_real_script_and_interpreter(comfyui_home: Path) -> None:
    write, link = commands(blocks(SD35_DOC, "sh")[0])
    python = comfyui_home / "venv/bin/python"
    assert write == f"~/.cache/comfygen/{comfyui_home.name}/venv/bin/python " \
                    "scripts/make_sd35_fixtures.py"
    assert Path(os.path.expanduser(write.split()[0])) == python
    assert link == f"{write} --link-into /path/to/base/models"
    help_text = subprocess.run([str(python), "scripts/make_sd35_fixtures.py", "--help"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    for flag in ("--link-into", "--link-mode", "--force", "--verify", "--out"):
        assert flag in help_text and flag in (DOCS / SD35_DOC).read_text()


@pytest.mark.slow
def test_sd35_fixture_commands(sd35_fixture_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """Once the session fixture has written the files, both lines as written: up to date."""
    write, link = commands(blocks(SD35_DOC, "sh")[0])
    out = subprocess.run(["bash", "-c", write], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert Path(out.strip().splitlines()[-1]) == sd35_fixture_dir
    models = tmp_path / "models"
    subprocess.run(["bash", "-c", link.replace("/path/to/base/models", str(models))], cwd=ROOT,
                   capture_output=True, text=True, check=True, timeout=120)
    for rel in json.loads((sd35_fixture_dir / "fixtures.json").read_text())["files"]:
        assert (models / rel).resolve() == (sd35_fixture_dir / rel).resolve(), rel


def test_sd35_e2e_command_selects_the_e2e_tests() -> None:
    """The command runs the e2e tests (in the slow suite); here: it selects them."""
    (line,) = commands(blocks(SD35_DOC, "sh")[1])
    assert line == "pytest -m slow tests/e2e/test_sd35_cpu.py"
    out = subprocess.run([str(ROOT / ".venv/bin/pytest"), *line.split()[1:], "--collect-only",
                          "-q", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True,
                         text=True).stdout
    assert re.search(r"^([1-9]\d*) tests? collected", out, re.M), out
    conftest = (ROOT / "tests/e2e/conftest.py").read_text()
    for fixture in ("sd35_fixture_dir", "sd35_base_dir", "sd35_comfyui", "sd35_graph"):
        assert f"def {fixture}(" in conftest


# -- docs/workflow-formats.md ----------------------------------------------------------------

FORMATS = "workflow-formats.md"
SD35_TEMPLATE = "workflow_templates/sd3.5-medium/txt2img.json"


@pytest.mark.parametrize("saved", ["tests/workflow/fixtures/sd35_txt2img_ui.json",
                                   "workflow_templates/sd3.5-medium/txt2img.json"])
def test_workflow_formats_snippet(saved: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.generator.helpers import NODEDEFS

    (snippet,) = blocks(FORMATS, "python")
    shutil.copy(ROOT / saved, tmp_path / "x.json")
    monkeypatch.chdir(tmp_path)
    ui_dict = json.loads((ROOT / "tests/workflow/fixtures/sd35_txt2img_ui.json").read_text())
    namespace: dict[str, Any] = {"Path": Path, "nodedefs": NODEDEFS, "ui_dict": ui_dict}
    exec(compile(snippet, "docs/workflow-formats.md", "exec"), namespace)
    graph, problems = namespace["graph"], namespace["problems"]
    assert problems == [] and graph
    assert all({"class_type", "inputs"} <= set(node) for node in graph.values())
    assert namespace["is_ui_format"](ui_dict)
    assert not namespace["is_ui_format"](json.loads((ROOT / SD35_TEMPLATE).read_text()))


def test_corpus_commands() -> None:
    """`counts` runs (from the cache the agreement test fills) and prints the table's counts; the
    frontend script and the browser test are checked for existence here, run by `-m browser`."""
    counts, reference, agreement = commands(blocks(FORMATS, "sh")[0])
    out = subprocess.run(["bash", "-c", counts], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = (DOCS / FORMATS).read_text()
    for total, matching in re.findall(r"(\d+) of (\d+) workflows", out.stdout):
        assert re.search(rf"\| {matching} \| {total} \|", doc), (total, matching)
    assert out.stdout.count(" workflows use only node classes") == 2
    subprocess.run(["bash", "-c", f"{reference} --help"], cwd=ROOT, capture_output=True,
                   check=True)
    collected = subprocess.run(["bash", "-c", f"{agreement} --collect-only -q -p no:cacheprovider"],
                               cwd=ROOT, capture_output=True, text=True).stdout
    assert "test_frontend_agreement.py::" in collected, collected


# -- docs/architecture.md --------------------------------------------------------------------


def test_architecture_diagram_names_real_things() -> None:
    text = (DOCS / "architecture.md").read_text()
    (diagram,) = blocks("architecture.md", "text")
    paths = set(re.findall(r"((?:comfygen|server|generated|workflow_templates|tests)/[\w./*<>]*)",
                           text))
    for path in paths:
        path = re.sub(r"<\w+>", "*", path.rstrip("."))
        assert list(ROOT.glob(path)), path
    client = "".join(p.read_text() for p in (ROOT / "comfygen/comfy").glob("*.py"))
    line = re.search(r"client ─ (.*)\n", diagram).group(1).rstrip(" │")
    for endpoint in line.split(", "):
        assert f'"{endpoint}' in client, endpoint
    from comfygen.generator import generate  # noqa: F401  (the library API it names)
    help_text = subprocess.run([str(ROOT / ".venv/bin/comfygen"), "check", "--help"],
                               capture_output=True, text=True)
    assert help_text.returncode == 0, help_text.stderr


def _modules() -> dict[str, Any]:
    """Every module of comfygen/ and server/, imported."""
    import importlib
    import pkgutil

    import comfygen
    import server
    found: dict[str, Any] = {}
    for package in (comfygen, server):
        found[package.__name__] = package
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):  # `python -m comfygen` runs the CLI
                found[info.name] = importlib.import_module(info.name)
    return found


def test_architecture_names_real_modules_and_classes() -> None:
    """Every `comfygen.x.y` / `server.x.y` it names is a module (or a name in one); every
    `Class` and `Class.member` it names exists in comfygen/ or server/ (or is imported there)."""
    text = (DOCS / "architecture.md").read_text()
    modules = _modules()
    classes: dict[str, list[type]] = {}
    for module in modules.values():
        for value in vars(module).values():
            if isinstance(value, type):  # theirs, or imported there (jinja's `Environment`)
                classes.setdefault(value.__name__, []).append(value)
    names = set(re.findall(r"`([\w.]+)(?:\(\))?`", text))
    dotted = {n for n in names if n.split(".")[0] in ("comfygen", "server")}
    assert {"server.runs.workflows", "server.runs.schemas", "comfygen.runtime.choices",
            "server.media.inputs", "server.runs.answer", "server.execution.runner",
            "server.jobs.manager", "comfygen.registry"} <= dotted
    for name in dotted:
        module, _, attr = name.rpartition(".")
        assert name in modules or (module in modules and hasattr(modules[module], attr)), name
    not_classes = {"Prefer", "Input"}  # a header, the generated model
    named = {n for n in names if re.fullmatch(r"[A-Z]\w+(\.\w+)?", n)
             and not n.split(".")[0].isupper()}  # constants and Redis commands (`XAUTOCLAIM`)
    for name in named - not_classes:
        cls_name, _, member = name.partition(".")
        assert cls_name in classes, name
        if member:
            assert any(hasattr(c, member) or member in getattr(c, "model_fields", {})
                       for c in classes[cls_name]), name


def test_architecture_states_the_import_contracts() -> None:
    """The rules it states are the import-linter contracts, and the picture's server/ boxes are
    the layers contract, top to bottom."""
    text = (DOCS / "architecture.md").read_text()
    (diagram,) = blocks("architecture.md", "text")
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    for contract in contracts:
        assert f"**{contract['name']}**" in text, contract["name"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    positions = []
    for layer in layers:
        label = " │ ".join(m.strip().removeprefix("server.") for m in layer.split("|"))
        assert f"│ {label} " in diagram, label
        positions.append(diagram.index(f"│ {label} "))
    assert positions == sorted(positions)


def test_architecture_names_the_module_of_every_endpoint() -> None:
    """Two hops: each route of the app is a row of the endpoint table naming its module."""
    text = (DOCS / "architecture.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    app = create_app(Settings(), load_workflows(load_config(ROOT)))
    routes = []
    for route in app.routes:
        routes += getattr(getattr(route, "original_router", None), "routes", [route])
    seen = 0
    for route in routes:
        if not getattr(route, "methods", None) or not hasattr(route, "endpoint"):
            continue  # the static files of /docs
        path = re.sub(r"^/workflow/.*", "/workflow/<model>/<name>", route.path)
        for method in route.methods:
            call = f"`{method} {path}`"
            row = next((r for r in rows if call in r), None)
            assert row is not None, call
            assert f"`{route.endpoint.__module__}`" in row, (call, route.endpoint.__module__)
            seen += 1
    assert seen >= 10

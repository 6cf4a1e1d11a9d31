"""`comfygen models pull|status` against a local file server: resume across a cut connection,
a checksum mismatch, two pulls of one file at once (two processes), the status lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from comfygen.cli import app
from tests.models.conftest import env_for, sha, write_manifest
from tests.models.file_server import FileServer, Served

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
DATA = os.urandom(3 * 1024 * 1024 + 12345)


def pull(root: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["models", "pull", *args, "--root", str(root)])
    return result.exit_code, result.output


def test_interrupted_download_resumes_with_range(project: Path, files: FileServer) -> None:
    files.files["/m.safetensors"] = Served(DATA, cut_after=1_000_000)
    write_manifest(project, [{"folder": "checkpoints", "file": "m.safetensors",
                              "url": files.url("/m.safetensors"), "sha256": sha(DATA),
                              "size": len(DATA), "workflows": ["demo/img"]}])
    code, output = pull(project, "demo/img")
    assert code == 0, output
    placed = project / "comfyui-data/models/checkpoints/m.safetensors"
    assert placed.read_bytes() == DATA
    gets = files.files["/m.safetensors"].gets
    assert gets[0] is None and len(gets) == 2, gets
    offset = int(gets[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= 1_000_000, gets  # resumed where the cut left it, not from 0
    assert "1 of 1 model file(s)" in output
    # nothing half-written anywhere: no temporary names beside the file, no .part in the cache
    assert os.listdir(placed.parent) == ["m.safetensors"]
    cache = Path(os.environ["COMFYGEN_MODELS_CACHE_DIR"])
    assert not list(cache.rglob("*.part"))
    # a second pull finds it in place and verified: no new request
    assert pull(project)[0] == 0 and len(gets) == 2


def test_checksum_mismatch_deletes_and_fails(project: Path, files: FileServer) -> None:
    files.files["/bad.safetensors"] = Served(DATA, wrong=True)
    write_manifest(project, [{"folder": "loras", "file": "bad.safetensors",
                              "url": files.url("/bad.safetensors"), "sha256": sha(DATA),
                              "workflows": ["demo/img"]}])
    code, output = pull(project)
    assert code == 1
    assert "loras/bad.safetensors" in output and "sha256 is" in output
    assert f"the manifest says {sha(DATA)}" in output and "deleted" in output
    assert not (project / "comfyui-data/models/loras/bad.safetensors").exists()
    cache = Path(os.environ["COMFYGEN_MODELS_CACHE_DIR"])
    assert [p.name for p in (cache / "blobs").iterdir()] == []
    # status says it is missing (exit 1); fixed at the source, the next pull succeeds
    status = runner.invoke(app, ["models", "status", "--root", str(project)])
    assert status.exit_code == 1 and "missing" in status.output
    files.files["/bad.safetensors"].wrong = False
    assert pull(project)[0] == 0


def test_concurrent_pulls_download_once(project: Path, files: FileServer,
                                        tmp_path: Path) -> None:
    files.files["/slow.safetensors"] = Served(DATA, delay=0.02)  # about one second
    write_manifest(project, [{"folder": "vae", "file": "slow.safetensors",
                              "url": files.url("/slow.safetensors"), "sha256": sha(DATA),
                              "workflows": ["demo/img"]}])
    env = {**env_for(tmp_path), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "comfygen", "models", "pull", "--root", str(project)]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert files.files["/slow.safetensors"].gets == [None]  # served once
    assert (project / "comfyui-data/models/vae/slow.safetensors").read_bytes() == DATA


def test_status_per_workflow(project: Path, files: FileServer) -> None:
    good, other = b"good model bytes", b"other"
    files.files["/good.safetensors"] = Served(good)
    write_manifest(project, [
        {"folder": "checkpoints", "file": "good.safetensors", "url": files.url("/good.safetensors"),
         "sha256": sha(good), "workflows": ["demo/img"]},
        {"folder": "loras", "file": "changed.safetensors", "url": files.url("/none"),
         "sha256": sha(b"expected"), "workflows": ["demo/img"]},
        {"folder": "vae", "file": "absent.safetensors", "url": files.url("/none"),
         "workflows": ["demo/img"]},
    ])
    assert pull(project, "demo/img")[0] == 1  # two of three sources are 404
    changed = project / "comfyui-data/models/loras/changed.safetensors"
    changed.parent.mkdir(parents=True)
    changed.write_bytes(other)
    result = runner.invoke(app, ["models", "status", "--root", str(project)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1
    lines = [line.split() for line in result.output.splitlines()]
    assert lines[0] == ["demo/img:"]
    assert lines[1] == ["present", "checkpoints/good.safetensors"]
    assert lines[2][:3] == ["wrong", "checksum", "loras/changed.safetensors"]
    assert lines[2][4] == sha(other) + ")"
    assert lines[3] == ["missing", "vae/absent.safetensors"]


def test_pull_names_an_unknown_workflow_and_a_bad_manifest(project: Path) -> None:
    code, output = pull(project, "demo/nope")
    assert code == 1 and "demo/nope" in output and "no such workflow" in output
    (project / "workflow_templates/models.yaml").write_text(
        "models:\n  - folder: ../etc\n    file: x.safetensors\n    sha256: abc\n    colour: 1\n")
    code, output = pull(project)
    assert code == 1
    assert "workflow_templates/models.yaml" in output
    assert "entry 1 (../etc/x.safetensors): folder: folder must be a relative path" in output
    assert "sha256: must be 64 hexadecimal digits" in output
    assert "colour: unknown key" in output

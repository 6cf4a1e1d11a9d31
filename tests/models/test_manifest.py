"""The manifest: add-workflow adds entries from the loader nodes (keeping the author's text),
`--builtin` brings the SD3.5 sources, hf:// URLs and the Hub token, the shipped copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.models import sources
from comfygen.models.manifest import load_manifest
from tests.models.conftest import checkpoint_graph
from tests.models.file_server import FileServer, Served

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_add_workflow_drafts_entries_from_loaders(project: Path, tmp_path: Path) -> None:
    manifest = project / "workflow_templates/models.yaml"
    manifest.write_text("# my models\nmodels:\n- folder: loras  # kept\n  file: a.safetensors\n"
                        "  url: https://example.com/a.safetensors\n")
    (tmp_path / "ckpt.json").write_text(json.dumps(checkpoint_graph("sub/x.safetensors")))
    result = runner.invoke(app, ["add-workflow", "demo/ckpt", str(tmp_path / "ckpt.json"),
                                 "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert ("model files added to workflow_templates/models.yaml: checkpoints/sub/x.safetensors "
            "(fill in their url and sha256)") in result.output
    text = manifest.read_text()
    assert text.startswith("# my models\nmodels:\n- folder: loras  # kept\n")
    assert "# added by `comfygen add-workflow demo/ckpt`: fill in url" in text
    entries = load_manifest(manifest).models
    assert [(e.folder, e.file, e.url, e.sha256) for e in entries][1] == (
        "checkpoints", "sub/x.safetensors", None, None)
    # adding it again (--force) drafts nothing new
    again = runner.invoke(app, ["add-workflow", "demo/ckpt", str(tmp_path / "ckpt.json"),
                                "--force", "--root", str(project)])
    assert again.exit_code == 0 and manifest.read_text() == text
    # and pull says what is missing instead of guessing
    pulled = runner.invoke(app, ["models", "pull", "demo/ckpt", "--root", str(project)])
    assert pulled.exit_code == 1
    assert "checkpoints/sub/x.safetensors: the manifest gives no url; fill it in" in pulled.output


def test_builtin_brings_its_model_sources(project: Path) -> None:
    result = runner.invoke(app, ["add-workflow", "sd3.5-medium/txt2img", "--builtin",
                                 "--root", str(project)])
    assert result.exit_code == 0, result.output
    entries = load_manifest(project / "workflow_templates/models.yaml").models
    assert [(e.folder, e.file) for e in entries] == [
        ("checkpoints", "sd3.5_medium.safetensors"), ("text_encoders", "clip_g.safetensors"),
        ("text_encoders", "clip_l.safetensors"), ("text_encoders", "t5xxl_fp8_e4m3fn.safetensors")]
    assert all(e.url and e.url.startswith("https://huggingface.co/stabilityai/") for e in entries)
    status = runner.invoke(app, ["models", "status", "sd3.5-medium/txt2img",
                                 "--root", str(project)])
    assert status.exit_code == 1 and status.output.count("missing") == 4


def test_shipped_manifest_is_the_repository_projects() -> None:
    shipped = ROOT / "comfygen/builtins/sd3.5-medium/models.yaml"
    assert shipped.read_bytes() == (ROOT / "workflow_templates/models.yaml").read_bytes()
    assert yaml.safe_load(shipped.read_text())["models"]


def test_hf_urls_and_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert sources.resolve_url("hf://org/repo/a/b.safetensors") == \
        "https://huggingface.co/org/repo/resolve/main/a/b.safetensors"
    assert sources.resolve_url("hf://org/repo@v1.0/b.safetensors") == \
        "https://huggingface.co/org/repo/resolve/v1.0/b.safetensors"
    with pytest.raises(sources.SourceError, match="hf://<owner>/<repo>"):
        sources.resolve_url("hf://org/repo")
    with pytest.raises(sources.SourceError, match="unsupported source"), \
            sources.open_source("ftp://bucket/key"):
        pass  # s3:// and az:// are read by comfygen.storage: tests/storage/test_model_sources.py


def test_hub_token_goes_to_the_hub_only(monkeypatch: pytest.MonkeyPatch,
                                         files: FileServer) -> None:
    """hf:// through HF_ENDPOINT (a local stand-in for the Hub): the token is sent there, and
    not to another host."""
    files.files["/org/repo/resolve/main/w.safetensors"] = Served(b"weights")
    files.files["/plain.safetensors"] = Served(b"plain")
    monkeypatch.setenv("HF_ENDPOINT", files.url(""))
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    with sources.open_source("hf://org/repo/w.safetensors") as stream:
        assert b"".join(stream.chunks) == b"weights"
    other = files.url("/plain.safetensors").replace("127.0.0.1", "localhost")
    with sources.open_source(other) as stream:
        assert b"".join(stream.chunks) == b"plain"
    assert files.headers[0].get("Authorization") == "Bearer hf_secret"
    assert "Authorization" not in files.headers[1]

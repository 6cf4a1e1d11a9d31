"""`add-workflow` of a file ComfyUI saved: the workflow embedded in it gives the same endpoint as
the JSON export.

The images and videos are made by the test ComfyUI itself: one run of `fixtures/savers_ui.json`
(EmptyImage → ImageInvert → SaveImage, SaveAnimatedPNG, SaveAnimatedWEBP, SaveWEBM,
CreateVideo → SaveVideo) with
the UI workflow as `extra_pnginfo`, as the frontend queues it, and one run without it (the file
then carries only the API-format `prompt`). The test ComfyUI 0.3.75 does not load its audio savers
(comfy_extras/nodes_audio.py needs torchaudio, which it does not install), so the FLAC, MP3 and
Opus files are written by the same PyAV calls `save_audio` makes, run in the test ComfyUI's own
environment (its PyAV and ffmpeg).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from comfygen.cli import app
from comfygen.comfy.client import ComfyClient
from comfygen.comfy.launcher import ComfyUIProcess
from comfygen.nodedefs import NodeDefs
from comfygen.workflow.load import load_workflow
from tests.workflow.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.comfyui

UI = FIXTURES / "savers_ui.json"
runner = CliRunner()

# The PyAV calls of ComfyUI 0.3.75's comfy_extras/nodes_audio.py `save_audio`, one per format.
AUDIO_SAVER = """
import io, json, sys
import av, numpy as np
meta, folder = json.loads(sys.stdin.read()), sys.argv[1]
for fmt, codec in (("flac", "flac"), ("mp3", "libmp3lame"), ("opus", "libopus")):
    buffer = io.BytesIO()
    out = av.open(buffer, mode="w", format=fmt)
    for key, value in meta.items():
        out.metadata[key] = json.dumps(value)
    rate = 48000 if fmt == "opus" else 44100
    stream = out.add_stream(codec, rate=rate, layout="mono")
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), dtype=np.float32), format="flt",
                                       layout="mono")
    frame.sample_rate, frame.pts = rate, 0
    out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    open(f"{folder}/saved.{fmt}", "wb").write(buffer.getvalue())
"""


def nodedefs_() -> NodeDefs:
    return NodeDefs.load(ROOT / "workflow_templates" / "object_info.json")


async def run_savers(url: str, graph: dict, extra: dict | None) -> dict[str, list[str]]:
    async with ComfyClient(url) as client:
        prompt_id = await client.submit(graph, extra_data=extra)
        result = await client.wait(prompt_id, timeout=120)
    return {node: [f"{i['subfolder']}/{i['filename']}" for i in out.get("images", [])]
            for node, out in result.outputs.items()}


@pytest.fixture(scope="module")
def saved(comfyui: ComfyUIProcess, comfyui_home: Path, tmp_path_factory) -> dict[str, Path]:
    """The files ComfyUI saved, by kind: png, apng, webp, webm, mp4, api_png, flac, mp3, opus."""
    ui = json.loads(UI.read_text("utf-8"))
    graph, problems = load_workflow(UI, nodedefs_())
    assert not problems
    out = comfyui.base_dir / "output"
    with_ui = asyncio.run(run_savers(comfyui.url, graph, {"extra_pnginfo": {"workflow": ui}}))
    api_only = asyncio.run(run_savers(comfyui.url, api_graph(graph), None))
    files = {"png": out / with_ui["3"][0], "webp": out / with_ui["4"][0],
             "webm": out / with_ui["5"][0], "mp4": out / with_ui["7"][0],
             "apng": out / with_ui["8"][0],
             "api_png": out / api_only["3"][0]}
    folder = tmp_path_factory.mktemp("audio")
    subprocess.run([str(comfyui_home / "venv" / "bin" / "python"), "-c", AUDIO_SAVER,
                    str(folder)], input=json.dumps({"prompt": graph, "workflow": ui}), text=True,
                   check=True, timeout=120)
    files.update({fmt: folder / f"saved.{fmt}" for fmt in ("flac", "mp3", "opus")})
    return files


def api_graph(graph: dict) -> dict:
    """The PNG branch of the savers' graph with a prefix of its own (so ComfyUI does not answer
    from its cache with the first run's file)."""
    saver = {**graph["3"], "inputs": {**graph["3"]["inputs"], "filename_prefix": "cg/saved/api"}}
    return {"1": graph["1"], "2": graph["2"], "3": saver}


def new_project(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.comfygen]\ntemplates_dir = "workflow_templates"\noutput_dir = "generated"\n'
        'object_info = "workflow_templates/object_info.json"\n')
    (root / "workflow_templates").mkdir()
    shutil.copy(ROOT / "workflow_templates/object_info.json", root / "workflow_templates")
    return root


def add(tmp_path: Path, name: str, source: Path) -> tuple[str, str]:
    """`comfygen add-workflow demo/savers <source>` in a new project -> (generated code, output)."""
    project = new_project(tmp_path / name)
    result = runner.invoke(app, ["add-workflow", "demo/savers", str(source), "--root",
                                 str(project)])
    assert result.exit_code == 0, result.output
    return (project / "generated/demo/savers.py").read_text("utf-8"), result.output


@pytest.mark.parametrize("kind", ["png", "apng", "webp", "webm", "mp4", "flac", "mp3", "opus"])
def test_saved_file_gives_the_same_endpoint_as_the_json_export(kind, saved, tmp_path):
    expected, _ = add(tmp_path, "from-json", UI)
    code, output = add(tmp_path, f"from-{kind}", saved[kind])
    assert code == expected
    assert "UI-format 'workflow'" in output
    kept = tmp_path / f"from-{kind}" / "workflow_templates/demo/savers.json"
    assert json.loads(kept.read_text("utf-8")) == json.loads(UI.read_text("utf-8"))


def test_a_file_with_only_the_api_prompt_falls_back_to_it(saved, tmp_path):
    graph, _ = load_workflow(UI, nodedefs_())
    api = tmp_path / "api.json"
    api.write_text(json.dumps(api_graph(graph)), "utf-8")
    expected, _ = add(tmp_path, "from-api-json", api)
    code, output = add(tmp_path, "from-api-png", saved["api_png"])
    assert code == expected
    assert "API-format 'prompt' of this PNG file" in output


def test_png_without_metadata_is_a_clear_error(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    project = new_project(tmp_path / "p")
    result = runner.invoke(app, ["add-workflow", "demo/x", str(plain), "--root", str(project)])
    assert result.exit_code == 1
    assert f"error: {plain}: this PNG file carries no ComfyUI workflow" in result.output
    assert "nothing was written" in result.output
    assert not (project / "workflow_templates/demo").exists()


def test_other_binary_files_are_named_as_neither_json_nor_a_saved_file(tmp_path):
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (4, 4)).save(jpeg)
    _, problems = load_workflow(jpeg, nodedefs_())
    assert [p.file for p in problems] == [str(jpeg)]
    assert "not valid JSON" in problems[0].message
    assert "PNG, WebP, FLAC, MP3, Opus, MP4, WebM" in problems[0].message


def test_truncated_file_is_an_error_not_a_crash(saved, tmp_path):
    for kind in ("png", "mp4", "flac", "opus", "webm"):
        broken = tmp_path / f"broken.{kind}"
        broken.write_bytes(saved[kind].read_bytes()[:200])
        graph, problems = load_workflow(broken, nodedefs_())
        assert graph == {} and problems and problems[0].file == str(broken), (kind, problems)

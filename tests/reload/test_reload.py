"""`comfygen serve --reload` on a throw-away project against the real ComfyUI: a spec edited
while a request runs, a broken edit, its revert."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess
from comfygen.config import load_config
from comfygen.reload import regenerate
from server.app import create_app
from server.reload import Reloader, install
from tests.jobs_api.live import live, settings_for

from .conftest import SPEC

pytestmark = pytest.mark.comfyui


async def reloaded(reloader: Reloader, after: int) -> None:
    async with asyncio.timeout(60), reloader.reloaded:
        await reloader.reloaded.wait_for(lambda: reloader.generation > after)


async def comfyui_running(comfyui: ComfyUIProcess) -> None:
    async with httpx.AsyncClient(base_url=comfyui.url) as http, asyncio.timeout(60):
        while not (await http.get("/queue")).json()["queue_running"]:
            await asyncio.sleep(0.05)


async def test_edit_while_a_request_runs_then_break_then_revert(
        project: Path, comfyui: ComfyUIProcess, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(project)
    first = regenerate(config)
    assert first.workflows is not None, first.problems
    app = create_app(settings_for(comfyui), first.workflows)
    reloader = install(app, config)
    spec = project / "workflow_templates/demo/slow.yaml"
    async with live(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as http:
        # a request in flight under the old schema (`color`)...
        running = asyncio.create_task(
            http.post("/workflow/demo/slow", json={"input": {"color": 0x123456}}))
        await comfyui_running(comfyui)
        # ...while the field is renamed and its default changed
        spec.write_text(SPEC.format(name="fill", default=7))
        await reloaded(reloader, 0)
        assert not running.done()  # the reload did not wait for it, nor drop it
        old = await running
        assert old.status_code == 200, old.text
        assert old.json()["input"] == {"color": 0x123456}
        # the next request sees the new schema, and so do /openapi.json and /docs' source
        r = await http.post("/workflow/demo/slow/validate", json={"input": {"color": 1}})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "input", "color"]
        r = await http.post("/workflow/demo/slow/validate", json={"input": {}})
        assert r.status_code == 200 and r.json()["input"] == {"fill": 7}
        doc = (await http.get("/openapi.json")).json()
        props = doc["components"]["schemas"]["DemoSlowInput"]["properties"]
        assert set(props) == {"fill"} and props["fill"]["default"] == 7
        assert (await http.get("/health")).json()["reload"] == {"generation": 1, "stale": {}}

        # a broken edit: the last good endpoint stays, the problem is printed and in /health
        capsys.readouterr()
        spec.write_text(SPEC.format(name="fill", default=7).replace("1.color", "1.nope"))
        await reloaded(reloader, 1)
        printed = capsys.readouterr().err
        assert "workflow_templates/demo/slow.yaml" in printed and "node 1" in printed
        assert "'nope'" in printed, printed
        health = (await http.get("/health")).json()["reload"]
        assert health["generation"] == 2 and list(health["stale"]) == ["demo/slow"]
        assert "'nope'" in health["stale"]["demo/slow"][0]
        r = await http.post("/workflow/demo/slow/validate", json={"input": {"fill": 3}})
        assert r.status_code == 200, r.text

        # reverting fixes it
        spec.write_text(SPEC.format(name="fill", default=9))
        await reloaded(reloader, 2)
        assert (await http.get("/health")).json()["reload"] == {"generation": 3, "stale": {}}
        r = await http.post("/workflow/demo/slow/validate", json={"input": {}})
        assert r.json()["input"] == {"fill": 9}

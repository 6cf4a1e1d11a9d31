"""`comfygen serve --reload` as a user runs it: a child process on a project that was never
generated; an edit and a broken edit seen over HTTP."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from tests.serving import serving

from .conftest import ROOT, SPEC

pytestmark = pytest.mark.comfyui


def until(check: Callable[[], bool], timeout: float = 60) -> None:
    """Another process reloads: poll what it serves."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "no reload"
        time.sleep(0.2)


def test_serve_reload_follows_the_sources(project: Path, comfyui: ComfyUIProcess) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "comfygen", "serve", "--reload", "--comfyui-url", comfyui.url,
            "--port", str(port), "--root", str(project)]
    with serving(argv, project, env, port) as url:
        assert (project / "generated/demo/slow.py").exists()  # generated at start
        assert httpx.get(url + "/health").json()["reload"] == {"generation": 0, "stale": {}}

        def props() -> set[str]:
            doc = httpx.get(url + "/openapi.json", timeout=10).json()
            return set(doc["components"]["schemas"]["DemoSlowInput"]["properties"])

        assert props() == {"color"}
        spec = project / "workflow_templates/demo/slow.yaml"
        spec.write_text(SPEC.format(name="fill", default=7))
        until(lambda: props() == {"fill"})
        r = httpx.post(url + "/workflow/demo/slow/validate", json={"input": {}})
        assert r.status_code == 200 and r.json()["input"] == {"fill": 7}

        spec.write_text(SPEC.format(name="fill", default=7).replace("1.color", "1.nope"))
        until(lambda: bool(httpx.get(url + "/health").json()["reload"]["stale"]))
        assert props() == {"fill"}  # the last good endpoint stays
        log = (project / f"serve-{port}.log").read_text()
        assert "workflow_templates/demo/slow.yaml" in log and "'nope'" in log, log

"""Swagger UI in a real browser: /docs, "Try it out" on a model-free workflow, a 200 with an image.

Runs Debian's chromium headless through Playwright (no browser download) against a comfygen server
on loopback, attached to the session's real ComfyUI. The page may reach loopback only: every other
request is aborted, so the test never depends on the internet.
"""

from __future__ import annotations

import base64
import copy
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from pydantic import ConfigDict, Field

from comfygen.comfy.launcher import ComfyUIProcess, free_port
from comfygen.runtime import Target, Workflow, WorkflowInput
from server.app import create_app
from server.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]

CHROMIUM = Path(os.environ.get("COMFYGEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PNG_BASE64 = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()[:10]  # "iVBORw0KGg"


class InvertInput(WorkflowInput):
    model_config = ConfigDict(extra="forbid")
    color: Annotated[int, Field(ge=0, le=0xFFFFFF, description="Fill colour, 0xRRGGBB",
                                examples=[0x3366CC])] = 0
    size: Annotated[int, Field(ge=16, le=256, description="Side in pixels", examples=[64])] = 64


GRAPH = {
    "1": {"class_type": "EmptyImage",
          "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "docs"}},
}


def _build(data: InvertInput) -> dict[str, Any]:
    graph = copy.deepcopy(GRAPH)
    graph["1"]["inputs"].update(color=data.color, width=data.size, height=data.size)
    return graph


INVERT = Workflow(
    model="browser", name="invert", summary="Invert a solid image",
    description="EmptyImage → ImageInvert → SaveImage: model-free, fast on CPU",
    input_model=InvertInput, builder=_build, graph=GRAPH,
    targets={"color": (Target("1", "color"),), "size": (Target("1", "width"),
                                                        Target("1", "height"))},
    outputs=("3",), source="tests/browser/test_swagger_ui.py",
)


@pytest.fixture(scope="module")
def server_url(comfyui: ComfyUIProcess, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    """A comfygen server (uvicorn on loopback, in a thread) with the model-free workflow."""
    settings = Settings(comfyui_url=comfyui.url, comfyui_output_dir=comfyui.base_dir / "output",
                        comfyui_temp_dir=comfyui.base_dir / "temp",
                        jobs_db=tmp_path_factory.mktemp("browser") / "jobs.sqlite3")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings, {INVERT.path: INVERT}), host="127.0.0.1", port=port,
        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="comfygen-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/ready", timeout=2, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert thread.is_alive(), "the server thread died"
        assert time.monotonic() < deadline, "the server was not ready after 60 s"
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Fail, never skip: without chromium this test proves nothing.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install "
                    "chromium`; scripts/setup.sh does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _loopback_only(page: Any, external: list[str]) -> None:
    """Let the page reach loopback only; record and abort anything else (a CDN, say)."""

    def handle(route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if host in ("127.0.0.1", "localhost") or url.startswith("data:"):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    page.route("**/*", handle)


def test_try_it_out_returns_an_image(server_url: str, browser: Any) -> None:
    page = browser.new_page()
    external: list[str] = []
    _loopback_only(page, external)
    page.goto(server_url + "/docs")
    operation = page.locator("#operations-browser-browser_invert")
    operation.wait_for(timeout=20_000)
    assert external == [], f"/docs must work offline, yet it asked for {external}"
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    body = operation.locator("textarea.body-param__text")
    assert '"color": 3368652' in body.input_value()  # the documented example is pre-filled
    operation.get_by_role("button", name="Execute").click()

    status = operation.locator(".live-responses-table .response .response-col_status")
    status.wait_for(timeout=60_000)
    prefer = operation.locator('tr[data-param-name="Prefer"] input')
    sent = prefer.input_value() if prefer.count() else None
    assert status.inner_text().strip() == "200", (
        f"Execute answered {status.inner_text().strip()}; the form sent Prefer: {sent!r} (a "
        "parameter's `example` pre-fills its field in Try it out)")
    shown = operation.locator(".live-responses-table .response-col_description pre").first
    text = shown.inner_text()
    assert '"images"' in text
    assert f'"{PNG_BASE64}' in text, text[:2000]
    page.close()

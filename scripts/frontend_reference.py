#!/usr/bin/env python3
"""Convert UI-format workflows to API format with ComfyUI's own frontend, in headless Chromium.

The page that a running ComfyUI serves is opened in Debian's chromium (driven by PyPI `playwright`,
no browser download); for each workflow it runs `await app.loadGraphData(wf)` then
`(await app.graphToPrompt()).output` - the frontend's own "Export (API)". Every non-GET request the
page makes is aborted, so nothing is written to the server.

Results are cached per frontend version and workflow content:
`$COMFYGEN_FRONTEND_REFERENCE_DIR` or `~/.cache/comfygen/frontend-reference/<version>/<corpus>/`.

    python scripts/frontend_reference.py                      # both corpora, start a ComfyUI
    python scripts/frontend_reference.py --url http://127.0.0.1:8188 --corpus 0.7.25
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "scripts"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import corpus as corpus_mod  # noqa: E402

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home  # noqa: E402
from comfygen.nodedefs import NodeDefs  # noqa: E402

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# Runs in the page: load one workflow, export it the way "Export (API)" does.
CONVERT_JS = """
async (wf) => {
  const errors = [];
  const onError = (e) => errors.push(String(e?.reason ?? e?.message ?? e));
  const origError = console.error;
  console.error = (...args) => { errors.push(args.map(String).join(' ')); };
  try {
    await window.app.loadGraphData(wf, true, false, null,
      {showMissingNodesDialog: false, showMissingModelsDialog: false});
    const prompt = await window.app.graphToPrompt();
    return {output: prompt.output, errors};
  } catch (e) {
    return {output: null, errors: [...errors, String(e && e.stack || e)]};
  } finally {
    console.error = origError;
  }
}
"""


def find_chromium(install: bool = True) -> str:
    """Path of a chromium binary: $COMFYGEN_CHROMIUM, Debian's, or apt-get install it (as root)."""
    candidates = [os.environ.get("COMFYGEN_CHROMIUM", ""), *CHROMIUM_CANDIDATES,
                  shutil.which("chromium") or ""]
    for c in candidates:
        if c and Path(c).exists():
            return c
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False, env=env,
                       capture_output=True)
        return find_chromium(install=False)
    raise RuntimeError(
        "no chromium found: install Debian's `chromium` (apt-get install -y chromium) or set "
        "COMFYGEN_CHROMIUM to a chromium binary; playwright's own browser download is not used"
    )


def frontend_version(home: Path | None = None) -> str:
    """Version of `comfyui-frontend-package` in the test ComfyUI's venv ("unknown" if not found)."""
    home = home or default_comfyui_home()
    for dist in sorted((home / "venv").glob("lib/python*/site-packages/comfyui_frontend_package-*")):
        return dist.name.split("-")[1].removesuffix(".dist-info")
    return "unknown"


def default_cache(version: str) -> Path:
    if os.environ.get("COMFYGEN_FRONTEND_REFERENCE_DIR"):
        return Path(os.environ["COMFYGEN_FRONTEND_REFERENCE_DIR"]) / version
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "comfygen" / "frontend-reference" / version


class Frontend:
    """One headless page on a running ComfyUI's frontend."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def convert(self, workflow: Mapping[str, Any]) -> dict[str, Any]:
        """`{"output": API graph or None, "errors": [console errors]}` for one UI workflow."""
        return self.page.evaluate(CONVERT_JS, workflow)


@contextmanager
def open_frontend(url: str, timeout_ms: float = 60_000) -> Iterator[Frontend]:
    """Open ComfyUI's page at `url` in headless chromium; abort every non-GET request."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()

            def guard(route: Any) -> None:
                # Answered here, never forwarded: the page writes nothing to the server. (Aborting
                # instead stalls the page's start-up, which awaits a settings POST.)
                if route.request.method != "GET":
                    route.fulfill(status=200, content_type="application/json", body="{}")
                else:
                    route.continue_()

            page.route("**/*", guard)
            page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
            page.wait_for_function(
                "() => window.app && window.app.graph && window.LiteGraph"
                " && window.LiteGraph.registered_node_types['KSampler']",
                timeout=timeout_ms,
            )
            yield Frontend(page)
        finally:
            browser.close()


@contextmanager
def comfyui_url(url: str | None) -> Iterator[str]:
    """Attach to `url`, or start the test ComfyUI in a throw-away base directory."""
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="comfygen-frontend-") as base:
        proc = ComfyUIProcess.from_home(default_comfyui_home(), Path(base))
        proc.start()
        try:
            proc.wait_ready()
            yield proc.url
        finally:
            proc.stop()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reference_outputs(
    paths: list[Path], corpus: str, url: str | None = None, cache: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Frontend conversion of every workflow in `paths`, keyed by file stem; cached on disk."""
    folder = (cache or default_cache(frontend_version())) / corpus
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Path, str]] = []
    for path in paths:
        text = path.read_text("utf-8")
        cached = folder / f"{path.stem}.json"
        if cached.exists():
            entry = json.loads(cached.read_text("utf-8"))
            if entry.get("sha256") == _digest(text):
                results[path.stem] = entry
                continue
        todo.append((path, text))
    if todo:
        with comfyui_url(url) as live, open_frontend(live) as frontend:
            for path, text in todo:
                entry = {"sha256": _digest(text), **frontend.convert(json.loads(text))}
                (folder / f"{path.stem}.json").write_text(
                    json.dumps(entry, indent=1, sort_keys=True) + "\n", "utf-8")
                results[path.stem] = entry
    return results


def node_titles(classes: list[str], url: str | None = None,
                cache: Path | None = None) -> dict[str, str]:
    """The title the frontend gives a new node of each class (its bundled English display name)."""
    path = (cache or default_cache(frontend_version())) / "titles.json"
    known: dict[str, str] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    missing = sorted(set(classes) - set(known))
    if missing:
        with comfyui_url(url) as live, open_frontend(live) as frontend:
            found = frontend.page.evaluate(
                "(ts) => Object.fromEntries(ts.map(t => [t, window.LiteGraph.createNode(t)?.title"
                " ?? null]))", missing)
        known.update({k: v for k, v in found.items() if isinstance(v, str)})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n", "utf-8")
    return {k: known[k] for k in classes if k in known}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="attach to this running ComfyUI instead of starting one")
    parser.add_argument("--corpus", choices=sorted(corpus_mod.CORPORA), action="append")
    parser.add_argument("--cache", type=Path, help="reference cache folder")
    parser.add_argument("--all", action="store_true", help="also non-matching workflows")
    args = parser.parse_args(argv)
    nodedefs = NodeDefs.load(corpus_mod.DEFAULT_OBJECT_INFO)
    for name in args.corpus or list(corpus_mod.CORPORA):
        paths = corpus_mod.templates(name)
        if not args.all:
            paths = corpus_mod.matching(paths, nodedefs)
        results = reference_outputs(paths, name, args.url, args.cache)
        failed = [k for k, v in results.items() if v.get("output") is None]
        node_titles(sorted(nodedefs), args.url, args.cache)
        print(f"{name}: {len(results)} converted by the frontend, {len(failed)} failed {failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

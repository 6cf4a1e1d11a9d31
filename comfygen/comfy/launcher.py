"""Start a ComfyUI as a child process and wait until its web API answers."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_HOME_ENV = "COMFYGEN_COMFYUI_HOME"


def default_comfyui_home() -> Path:
    """Where `scripts/install_comfyui.py` puts the test ComfyUI unless told otherwise."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get(DEFAULT_HOME_ENV, cache / "comfygen" / "comfyui-0.3.75"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ComfyUIProcess:
    """A ComfyUI child process with its own base directory (models, input, output, temp, user)."""

    comfyui_dir: Path
    python: Path
    base_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    extra_args: tuple[str, ...] = ()
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    custom_command: tuple[str, ...] | None = None
    """Run this instead of `python main.py ...`; `{host}`, `{port}` and `{base_dir}` are
    substituted in each argument. It runs in `comfyui_dir`."""
    die_with_parent: bool = True
    """Ask Linux to SIGKILL the child when the thread that started it dies (no orphans even if
    the parent is killed hard). Start it from a long-lived thread, e.g. the event loop's."""

    @classmethod
    def from_home(cls, home: Path, base_dir: Path, **kwargs: object) -> ComfyUIProcess:
        """Use an install made by `scripts/install_comfyui.py` (tree in ComfyUI/, venv in venv/)."""
        return cls(comfyui_dir=home / "ComfyUI", python=home / "venv" / "bin" / "python",
                   base_dir=base_dir, **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        if self.custom_command:
            values = {"host": self.host, "port": self.port, "base_dir": self.base_dir}
            return [arg.format(**values) for arg in self.custom_command]
        return [
            str(self.python), "main.py", "--cpu", "--listen", self.host, "--port", str(self.port),
            "--disable-auto-launch", "--base-directory", str(self.base_dir),
            "--database-url", "sqlite:///:memory:", *self.extra_args,
        ]

    def start(self) -> None:
        if not (self.comfyui_dir / "main.py").exists():
            raise FileNotFoundError(
                f"no ComfyUI at {self.comfyui_dir}: run `python scripts/install_comfyui.py` first"
            )
        for sub in ("models", "input", "output", "temp", "user", "custom_nodes"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or self.base_dir / "comfyui.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            self.command(), cwd=self.comfyui_dir, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_set_parent_death_signal if self.die_with_parent else None,
        )
        log.close()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until GET /system_stats answers; raise with the log tail if the child died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"ComfyUI exited with {code}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/system_stats", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"ComfyUI not ready after {timeout}s:\n{self.log_tail()}")

    def __enter__(self) -> ComfyUIProcess:
        """Start and wait until ready (stopping the child again if it never gets there)."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_path or self.base_dir / "comfyui.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def _set_parent_death_signal() -> None:
    """In the forked child: get SIGKILL when the parent goes away (Linux only; else a no-op)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass

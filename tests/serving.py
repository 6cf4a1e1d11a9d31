"""A `comfygen serve` (or any server command) run as a child process for the length of a test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def serving(argv: list[str], cwd: Path, env: dict[str, str], port: int,
            timeout: float = 120, until: str = "/ready") -> Iterator[str]:
    """Start `argv` in its own process group; yield its URL once `until` (/ready) answers 200
    (the log when it exits or never gets there); SIGTERM it after, SIGKILL if it lingers."""
    log = cwd / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"{argv} exited:\n{log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + until, timeout=2, trust_env=False).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"not ready after {timeout:g} s:\n{log.read_text()}"
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

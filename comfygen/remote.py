"""A client of a running comfygen server: submit a workflow as a job, follow it, save its files."""

from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

FINAL_EVENTS = frozenset({"succeeded", "failed", "cancelled"})


class RemoteError(Exception):
    """The server could not be reached or refused the request; `message` says which."""

    def __init__(self, message: str, status: int | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.message, self.status, self.body = message, status, body


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event of a job, as the server sent it."""

    type: str
    data: dict[str, Any]


def parse_inputs(pairs: list[str], base: Path | None = None) -> dict[str, Any]:
    """`key=value` pairs as an input object: JSON values when they parse (`steps=20`,
    `flag=true`), text otherwise; `key=@file` sends a file's contents as a data URI."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RemoteError(f"--input {pair!r}: expected key=value (or key=@file)")
        if value.startswith("@"):
            path = (base or Path.cwd()) / value[1:]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise RemoteError(f"--input {key}: cannot read {path}: {exc.strerror}") from None
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            found[key] = f"data:{mime};base64,{base64.b64encode(data).decode()}"
            continue
        try:
            found[key] = json.loads(value)
        except ValueError:
            found[key] = value
    return found


class Remote:
    """Talks to one comfygen server."""

    def __init__(self, server: str, *, api_key: str | None = None,
                 api_key_header: str = "X-API-Key", timeout: float = 30.0) -> None:
        headers = {api_key_header: api_key} if api_key else {}
        self.server = server.rstrip("/")
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout,
                                 trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise RemoteError(f"cannot reach the comfygen server at {self.server}; is "
                              "`comfygen serve` running there? (--server URL)") from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"request to {self.server}{path} failed: "
                              f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            message = body.get("error") if isinstance(body, dict) else None
            raise RemoteError(f"HTTP {response.status_code}: {message or body}",
                              response.status_code, body)
        return response

    def submit(self, workflow: str, inputs: dict[str, Any], *,
               request_id: str | None = None) -> dict[str, Any]:
        """POST /workflow/<workflow> with `Prefer: respond-async`; return the 202 body."""
        body: dict[str, Any] = {"input": inputs}
        if request_id:
            body["id"] = request_id
        response = self._call("POST", f"/workflow/{workflow.strip('/')}", json=body,
                              headers={"Prefer": "respond-async"})
        if response.status_code != 202:
            raise RemoteError(f"expected 202 from the server, got {response.status_code}",
                              response.status_code, response.text)
        return response.json()

    def validate(self, workflow: str, inputs: dict[str, Any], *,
                 request_id: str | None = None) -> dict[str, Any]:
        """POST /workflow/<workflow>/validate: the dry run's 200 body (resolved input, graph);
        a request that would fail raises RemoteError with the real call's answer."""
        body: dict[str, Any] = {"input": inputs}
        if request_id:
            body["id"] = request_id
        return self._call("POST", f"/workflow/{workflow.strip('/')}/validate", json=body).json()

    def events(self, job_id: str) -> Iterator[ServerEvent]:
        """The job's server-sent events until its final one."""
        kind, data = "message", ""
        try:
            with self.http.stream("GET", f"/jobs/{job_id}/events",
                                  timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise RemoteError(f"HTTP {response.status_code}: {response.text}",
                                      response.status_code)
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif not line and data:
                        event = ServerEvent(kind, json.loads(data))
                        kind, data = "message", ""
                        yield event
                        if event.type in FINAL_EVENTS:
                            return
        except httpx.HTTPError as exc:
            raise RemoteError(f"the event stream broke: {type(exc).__name__}: {exc}") from None

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/<id>."""
        return self._call("GET", f"/jobs/{job_id}").json()


def save_files(result: dict[str, Any], out: Path) -> list[Path]:
    """Write every output file of a result into `out`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for data, name in zip(result.get("images") or [], result.get("filenames") or [],
                          strict=True):
        path = out / Path(name).name  # never a path from the server
        path.write_bytes(base64.b64decode(data))
        written.append(path)
    return written

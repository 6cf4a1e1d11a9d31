"""A local stand-in for the Hugging Face Hub's HTTP API, as much as `huggingface_hub` uses to
commit small ("regular") files and as a download of `resolve/` URLs (with Range) needs.

No Hub is reachable from these machines, so this is what `hf_upload` and `hf://` are tested
against: `huggingface_hub`'s real client code talks to it over HTTP. What it does not cover:
LFS/Xet uploads (files the Hub asks to be stored as LFS, i.e. large ones) and the Hub's own
authorisation rules beyond "a wrong token is refused with 401".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "hf_localtesttoken0123456789abcdef"


class Hub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}  # (repo path, revision, path) -> bytes
        self.commits: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, value: object) -> None:
                self._reply(status, json.dumps(value).encode(),
                            {"Content-Type": "application/json"})

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                    return True
                self._json(401, {"error": "Invalid credentials in Authorization header"})
                return False

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)/(preupload|commit)/(.+)",
                                 self.path)
                if m is None:
                    return self._json(404, {"error": "not found"})
                if not self._authorised():
                    return None
                kind, repo, action, revision = m.groups()
                prefix = "" if kind == "models" else "datasets/"
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files]})
                lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
                for line in lines:
                    if line["key"] == "file":
                        value = line["value"]
                        owner.files[(prefix + repo, revision, value["path"])] = \
                            base64.b64decode(value["content"])
                owner.commits.append({"repo": prefix + repo, "revision": revision,
                                      "lines": lines})
                oid = hashlib.sha1(body).hexdigest()
                return self._json(200, {"commitUrl": f"{owner.url}/{prefix}{repo}/commit/{oid}",
                                        "commitOid": oid})

            def do_GET(self) -> None:  # noqa: N802
                m = re.fullmatch(r"/((?:datasets/)?[^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
                if m is None:
                    return self._json(404, {"error": "not found"})
                if not self._authorised():
                    return None
                from urllib.parse import unquote

                key = (m.group(1), unquote(m.group(2)), unquote(m.group(3)))
                data = owner.files.get(key)
                if data is None:
                    return self._json(404, {"error": "Entry not found"})
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if rng is None:
                    return self._reply(200, data)
                start = int(rng.group(1))
                if start >= len(data):
                    return self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return self._reply(206, data[start:], {
                    "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

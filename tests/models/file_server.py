"""A local HTTP file server for model download tests: serves files with Range, and can be told
to cut the connection midway, to serve wrong bytes, or to be slow (or hold until released)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """One file and how to misbehave serving it."""

    data: bytes
    cut_after: int | None = None  # close the connection after this many body bytes, once
    wrong: bool = False  # serve other bytes of the same length
    delay: float = 0.0  # seconds per 64 KiB chunk
    hold: threading.Event | None = None  # send the first half, then wait for it
    gets: list[str | None] = field(default_factory=list)  # the Range header of each GET


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.headers: list[dict[str, str]] = []  # of every request, in order
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def start(self) -> FileServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                owner.headers.append(dict(self.headers.items()))
                served = owner.files.get(self.path.split("?", 1)[0])
                if served is None:
                    self.send_error(404)
                    return
                served.gets.append(self.headers.get("Range"))
                data = bytes(b ^ 0xFF for b in served.data) if served.wrong else served.data
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                cut, served.cut_after = served.cut_after, None
                sent = 0
                for i in range(0, len(body), 65536):
                    chunk = body[i:i + 65536]
                    if cut is not None and sent + len(chunk) > cut:
                        self.wfile.write(chunk[:cut - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if served.hold is not None and sent >= len(body) // 2:
                        served.hold.wait(60)
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if served.delay:
                        time.sleep(served.delay)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

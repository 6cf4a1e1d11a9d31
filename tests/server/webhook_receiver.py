"""A tiny HTTP receiver on loopback for webhook tests: records bodies and headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from comfygen.comfy.launcher import free_port


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0
        self.attempted: list[tuple[dict[str, str], bytes]] = []  # every request, any status
        self.status_for: Callable[[bytes], int] = lambda body: 200
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    async def wait_for(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")[1:]
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines if ":" in line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.attempts += 1
            self.attempted.append((headers, body))
            status = self.status_for(body)
            if status == 200:
                self.received.append((headers, body))
                self.arrived.set()
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                         .encode())
            await writer.drain()
        finally:
            writer.close()

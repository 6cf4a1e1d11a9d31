"""Helpers for tests against a real ComfyUI: model-free graphs and a TCP proxy that can cut."""

from __future__ import annotations

import asyncio
import contextlib

from comfygen.runtime.workflow import Graph


def invert_graph(color: int = 0x102030, size: int = 16, prefix: str = "cg/test") -> Graph:
    """EmptyImage(color) → ImageInvert → SaveImage(prefix): the saved pixel is 0xFFFFFF - color."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def slow_graph(blurs: int = 3, color: int = 0x405060, size: int = 512) -> Graph:
    """EmptyImage → `blurs` × ImageBlur(radius 31) → PreviewImage; about 0.5-1 s per blur on CPU.

    ComfyUI checks for interrupts between nodes, so a chain can be interrupted mid-run.
    """
    graph: Graph = {"1": {"class_type": "EmptyImage",
                          "inputs": {"width": size, "height": size, "batch_size": 1,
                                     "color": color}}}
    prev = "1"
    for i in range(blurs):
        node = str(10 + i)
        graph[node] = {"class_type": "ImageBlur",
                       "inputs": {"image": [prev, 0], "blur_radius": 31, "sigma": 5.0}}
        prev = node
    graph["99"] = {"class_type": "PreviewImage", "inputs": {"images": [prev, 0]}}
    return graph


def rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF


class TcpProxy:
    """A loopback TCP relay in front of ComfyUI that a test can cut on demand.

    `cut()` drops every open connection; `block_websocket` makes it refuse new websocket upgrades
    (requests whose first line asks for `/ws`) while plain HTTP keeps flowing.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.block_websocket = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.websocket_refusals = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def cut(self) -> None:
        """Abort every relayed connection now."""
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.read(65536)
        except ConnectionError:
            writer.close()
            return
        if self.block_websocket and first.split(b"\r\n", 1)[0].startswith(b"GET /ws"):
            self.websocket_refusals += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        up_writer.write(first)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.discard(writer)
            self._writers.discard(up_writer)

"""The serving transport: a response's head and body leave in one write, nothing is lost or
reordered, and a close sends what is pending first. Pure logic on a recording transport; every
test that serves through `tests.jobs_api.live` (and `comfygen serve`) runs it on real sockets."""

from __future__ import annotations

import asyncio

from server.main import CoalescingTransport


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[bytes]] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.calls.append([bytes(data)])

    def writelines(self, list_of_data: list[bytes]) -> None:  # type: ignore[override]
        self.calls.append([bytes(d) for d in list_of_data])

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 8188) if name == "peername" else default


async def test_one_turns_writes_leave_together_in_order() -> None:
    real = Recording()
    transport = CoalescingTransport(real)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"ok")
    assert real.calls == []  # not yet: the turn is not over
    await asyncio.sleep(0)
    assert real.calls == [[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"ok"]]
    transport.write(b"next")  # a later turn: a write of its own
    await asyncio.sleep(0)
    assert real.calls[1:] == [[b"next"]]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 8188)  # the rest passes through


async def test_close_sends_what_is_pending_first() -> None:
    real = Recording()
    transport = CoalescingTransport(real)
    transport.write(b"head")
    transport.write(b"body")
    transport.close()
    assert real.calls == [[b"head", b"body"]] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert real.calls == [[b"head", b"body"]]
    transport.write(b"late")  # after close: dropped, as the real transport would
    await asyncio.sleep(0)
    assert real.calls == [[b"head", b"body"]]


async def test_a_large_write_goes_out_at_once_with_what_is_pending() -> None:
    """Past `LIMIT` bytes nothing waits for the end of the turn: the transport's own flow
    control (pause_writing) sees a large body as it is written."""
    real = Recording()
    transport = CoalescingTransport(real)
    body = b"x" * CoalescingTransport.LIMIT
    transport.write(b"head")
    transport.write(body)
    assert real.calls == [[b"head", body]]  # head and body together, without waiting
    transport.write(b"tail")
    await asyncio.sleep(0)
    assert real.calls == [[b"head", body], [b"tail"]]

"""A real DNS server on loopback (dnslib) that rebinds: each name has a list of answers given
in turn (the last one repeats), and a `Resolver` for the URL guard that asks it over UDP."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Mapping, Sequence

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from server.security.addresses import IPAddress


class _Quiet:
    """dnslib's logger interface, saying nothing (its default prints every packet)."""

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None


class RebindingDns(BaseResolver):
    """Answers `name` with `answers[name][0]` the first time, `[1]` the next, and so on."""

    def __init__(self, answers: Mapping[str, Sequence[str]]) -> None:
        self.answers = {name.lower().rstrip("."): list(ips) for name, ips in answers.items()}
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._server = DNSServer(self, address="127.0.0.1", port=0, logger=_Quiet(),
                                 handler=DNSHandler)

    @property
    def port(self) -> int:
        return int(self._server.server.server_address[1])

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        with self._lock:
            self.queries.append(name)
            queue = self.answers.get(name)
            if not queue:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(answer), ttl=0))
        return reply

    def __enter__(self) -> RebindingDns:
        self._server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._server.server.server_close()


class DnsResolver:
    """The URL guard's `Resolver`, asking one DNS server (A records) instead of the system's."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        del port
        question = DNSRecord.question(host, "A")
        packet = await asyncio.to_thread(question.send, self.host, self.port, timeout=5)
        reply = DNSRecord.parse(packet)
        if reply.header.rcode != RCODE.NOERROR:
            raise OSError(f"{host}: {RCODE.get(reply.header.rcode)}")
        return [ipaddress.ip_address(str(rr.rdata)) for rr in reply.rr if rr.rtype == QTYPE.A]


"""Host name resolution, injectable so tests map names to chosen addresses without real DNS."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from typing import Protocol

from server.security.addresses import IPAddress


class Resolver(Protocol):
    """Turns a host name into the addresses a connection could go to."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """The operating system's resolver (`getaddrinfo`), run off the event loop."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every distinct address `host` resolves to, in the resolver's order."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in found:
                found.append(ip)
        return found


class StaticResolver:
    """A fixed table of host -> addresses; unknown hosts fail like NXDOMAIN. For tests."""

    def __init__(self, table: Mapping[str, str | Iterable[str]]) -> None:
        self.table = {
            host.lower(): [ipaddress.ip_address(a) for a in ([v] if isinstance(v, str) else v)]
            for host, v in table.items()
        }
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses listed for `host`."""
        self.calls.append(host)
        try:
            return list(self.table[host.lower()])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

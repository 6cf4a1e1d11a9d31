"""Reuse the loopback server fixtures of the guard tests."""

from ..security.conftest import no_connections, server

__all__ = ["no_connections", "server"]

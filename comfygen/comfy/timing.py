"""Where a prompt's time went: execution start and end, and each node's share, taken from
ComfyUI's websocket messages on arrival (monotonic clock)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENDINGS = frozenset({"execution_success", "execution_error", "execution_interrupted"})


@dataclass
class NodeTiming:
    """One node's run: `cached` nodes were served from ComfyUI's cache and took no time."""

    node: str
    started: float | None = None
    seconds: float = 0.0
    cached: bool = False

    @property
    def ms(self) -> int:
        return round(self.seconds * 1000)


@dataclass
class PromptTiming:
    """Fed with every websocket message of one prompt by `PromptWatcher.dispatch`."""

    started_at: float | None = None  # `execution_start` arrived
    ended_at: float | None = None  # success, error, interruption or the closing `executing`
    nodes: dict[str, NodeTiming] = field(default_factory=dict)
    _current: NodeTiming | None = None

    def observe(self, kind: str | None, data: Mapping[str, Any], now: float) -> None:
        if kind == "execution_start":
            self.started_at = now
        elif kind == "execution_cached":
            for node in data.get("nodes") or []:
                self.nodes.setdefault(str(node), NodeTiming(str(node), cached=True))
        elif kind == "executing":
            self._close(now)
            node = data.get("node")
            if node is None:
                self._end(now)
            else:
                timing = self.nodes.setdefault(str(node), NodeTiming(str(node)))
                timing.cached = False
                timing.started = now
                self._current = timing
        elif kind in ENDINGS:
            self._close(now)
            self._end(now)

    @property
    def execution_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def _close(self, now: float) -> None:
        current, self._current = self._current, None
        if current is not None and current.started is not None:
            current.seconds += max(0.0, now - current.started)
            current.started = None

    def _end(self, now: float) -> None:
        if self.ended_at is None and self.started_at is not None:
            self.ended_at = now

"""Plain values the ComfyUI client returns."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from comfygen.comfy.timing import PromptTiming


@dataclass(frozen=True)
class ProgressEvent:
    """One websocket message about a prompt (`executing`, `progress`, `executed`, ...)."""

    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class WebsocketImage:
    """An image a node sent over the websocket instead of saving a file: `SaveImageWebsocket`
    and nodes like it (outputs), or a sampler's previews."""

    node: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class QueueInfo:
    running: list[str]
    pending: list[str]

    @property
    def size(self) -> int:
        return len(self.running) + len(self.pending)


@dataclass(frozen=True)
class OutputFile:
    """A file a node produced, addressed the way /view wants it."""

    node: str
    kind: str  # the key it came under: images, gifs, videos, audio, ...
    filename: str
    subfolder: str = ""
    type: str = "output"  # output | temp | input

    @property
    def content_type(self) -> str:
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


@dataclass(frozen=True)
class PromptResult:
    """A finished prompt: every output of every node, as ComfyUI's history lists it."""

    prompt_id: str
    outputs: Mapping[str, Mapping[str, Any]]
    status: Mapping[str, Any] = field(default_factory=dict)
    timing: PromptTiming | None = field(default=None, compare=False)
    """Start, end and per-node times seen on the websocket (None when only /history saw it)."""
    ws_images: tuple[WebsocketImage, ...] = field(default=(), compare=False)
    """Images the prompt's nodes sent over the websocket, in the order they came."""
    ws_whole: bool = field(default=False, compare=False)
    """True when one websocket connection saw the prompt from its start to its end, so
    `ws_images` holds every image sent."""

    @classmethod
    def from_history(cls, prompt_id: str, entry: Mapping[str, Any]) -> PromptResult:
        return cls(prompt_id, entry.get("outputs") or {}, entry.get("status") or {})

    def files(self, nodes: tuple[str, ...] | None = None) -> list[OutputFile]:
        """Every file output (any key whose items carry a filename), in node order."""
        found = []
        for node in _ordered(self.outputs, nodes):
            for kind, items in self.outputs[node].items():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, Mapping) and "filename" in item:
                        found.append(OutputFile(
                            node=node, kind=kind, filename=str(item["filename"]),
                            subfolder=str(item.get("subfolder") or ""),
                            type=str(item.get("type") or "output"),
                        ))
        return found

    def values(self, nodes: tuple[str, ...] | None = None) -> list[tuple[str, str, Any]]:
        """Every non-file output as (node, key, value): text, flags such as `animated`, ..."""
        found = []
        for node in _ordered(self.outputs, nodes):
            for kind, items in self.outputs[node].items():
                if isinstance(items, list) and any(
                    isinstance(i, Mapping) and "filename" in i for i in items
                ):
                    continue
                found.append((node, kind, items))
        return found

    @property
    def execution_ms(self) -> int | None:
        """Milliseconds from execution_start to the final message, from ComfyUI's timestamps."""
        stamps = [
            data.get("timestamp") for _event, data in self.status.get("messages") or []
            if isinstance(data, Mapping) and isinstance(data.get("timestamp"), int | float)
        ]
        return int(max(stamps) - min(stamps)) if len(stamps) >= 2 else None


def _ordered(outputs: Mapping[str, Any], nodes: tuple[str, ...] | None) -> list[str]:
    keys = [str(k) for k in outputs]
    if nodes:
        return [n for n in nodes if n in outputs]
    return sorted(keys, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))

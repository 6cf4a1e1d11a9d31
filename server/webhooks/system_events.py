"""System events: ComfyUI's websocket events and comfygen's file events, forwarded to one
operator webhook, named and shaped as comfyui-api 1.18 does (`src/event-emitters.ts`).

Each event is one signed Standard Webhooks message (the `webhook_secret`; unsigned without one)
whose body is `{"event": "comfy.<type>" | "storage.<type>", "data": ..., "metadata": {...}}`:
for ComfyUI's events `data` is the websocket message itself (`{"type", "data"}`), with a
prompt's id replaced by the request's `id` as comfyui-api does; for file events it is
`{"url", "size", ...}` with the URL's query and credentials redacted. `metadata` is
`system_webhook_meta` (`SYSTEM_META_*`).

Events are sent from background tasks through the same retried, URL-guarded delivery as job
webhooks, never awaited by a request and never by ComfyUI's websocket reader; past
`MAX_PENDING` undelivered events new ones are dropped and counted in one log line each.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from server.security import UrlGuard, UrlPolicy
from server.settings import Settings
from server.webhooks.deliver import RetryPolicy, WebhookDeliverer

log = logging.getLogger("comfygen.server")

COMFY_EVENTS = ("status", "progress", "progress_state", "executing", "execution_start",
                "execution_cached", "executed", "execution_success", "execution_interrupted",
                "execution_error")
FILE_EVENTS = ("file_downloaded", "file_uploaded", "file_deleted")
ALL_EVENTS = COMFY_EVENTS + FILE_EVENTS
MAX_PENDING = 1000
CONCURRENCY = 4


def parse_events(text: str) -> frozenset[str]:
    """`all` or a comma-separated list of ALL_EVENTS; ValueError naming unknown ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return frozenset(ALL_EVENTS)
    unknown = sorted(set(names) - set(ALL_EVENTS))
    if unknown:
        raise ValueError(f"system_webhook_events (SYSTEM_WEBHOOK_EVENTS): unknown event(s) "
                         f"{', '.join(unknown)}; supported: all, {', '.join(ALL_EVENTS)}")
    return frozenset(names)


def trusted(url: str, policy: UrlPolicy) -> UrlPolicy:
    """`policy` that also reaches the operator's own webhook host (it is configuration, not
    caller input): by name, or by address for an IP literal."""
    host = (urllib.parse.urlsplit(url).hostname or "").strip("[]")
    if not host:
        raise ValueError("system_webhook_url (SYSTEM_WEBHOOK_URL) has no host")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return policy.model_copy(update={"allow_hosts": (*policy.allow_hosts, host.lower())})
    return policy.model_copy(update={"allow_cidrs": (*policy.allow_cidrs,
                                                     ipaddress.ip_network(ip))})


class SystemEvents:
    """Forwards the chosen events; `enabled` is False when no URL or no event is configured."""

    def __init__(self, url: str | None, events: frozenset[str], metadata: Mapping[str, str],
                 deliverer: WebhookDeliverer | None, secret: SecretStr | None) -> None:
        self.url = url
        self.events = events if url else frozenset()
        self.metadata = dict(metadata)
        self.deliverer = deliverer
        self._secret = secret
        self.request_ids: Callable[[str], str | None] = lambda prompt_id: None
        """The request id of a ComfyUI prompt id (set by the runner)."""
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dropped = 0
        self._slots = asyncio.Semaphore(CONCURRENCY)

    @classmethod
    def from_settings(cls, settings: Settings) -> SystemEvents:
        url = settings.system_webhook_url or None
        events = parse_events(settings.system_webhook_events)
        if url is None or not events:
            return cls(None, frozenset(), {}, None, None)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("system_webhook_url (SYSTEM_WEBHOOK_URL) must be an http(s) URL")
        policy = trusted(url, UrlPolicy(allow_cidrs=settings.webhook_allow_cidrs,
                                        allow_hosts=settings.webhook_allow_hosts,
                                        timeout=settings.webhook_timeout))
        retry = RetryPolicy(max_attempts=settings.webhook_max_attempts,
                            initial_delay=settings.webhook_backoff,
                            max_delay=settings.webhook_backoff_max,
                            attempt_timeout=settings.webhook_timeout)
        deliverer = WebhookDeliverer(UrlGuard(policy), retry, user_agent="comfygen-system-events")
        return cls(url, events, settings.system_webhook_meta, deliverer, settings.webhook_secret)

    @property
    def enabled(self) -> bool:
        return bool(self.events)

    def __repr__(self) -> str:
        return f"SystemEvents(events={sorted(self.events)}, signed={self._secret is not None})"

    def comfy_message(self, kind: str, data: dict[str, Any]) -> None:
        """A websocket message from ComfyUI (called by its reader: must not block)."""
        if kind not in self.events:
            return
        data = dict(data)
        if isinstance(data.get("prompt_id"), str):
            data["prompt_id"] = self.request_ids(data["prompt_id"]) or data["prompt_id"]
        if kind == "progress_state" and isinstance(data.get("nodes"), dict):
            data["nodes"] = {k: self._with_request_id(v) for k, v in data["nodes"].items()}
        self._send(f"comfy.{kind}", {"type": kind, "data": data})

    def file_event(self, kind: str, data: dict[str, Any]) -> None:
        """`file_downloaded`, `file_uploaded` or `file_deleted` (URLs already redacted)."""
        if kind in self.events:
            self._send(f"storage.{kind}", data)

    def _with_request_id(self, node: Any) -> Any:
        if isinstance(node, dict) and isinstance(node.get("prompt_id"), str):
            return {**node, "prompt_id": self.request_ids(node["prompt_id"]) or node["prompt_id"]}
        return node

    def _send(self, event: str, data: dict[str, Any]) -> None:
        if self.deliverer is None or self.url is None:
            return
        if len(self.tasks) >= MAX_PENDING:
            self.dropped += 1
            log.warning("system event %s dropped: %d events are waiting for delivery "
                        "(%d dropped so far)", event, len(self.tasks), self.dropped)
            return
        body = json.dumps({"event": event, "data": data, "metadata": self.metadata},
                          separators=(",", ":"), ensure_ascii=False, default=str).encode()
        task = asyncio.get_running_loop().create_task(self._deliver(body), name="system-event")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, body: bytes) -> None:
        assert self.deliverer is not None and self.url is not None
        async with self._slots:
            await self.deliverer.deliver(self.url, body, self._secret)

    async def drain(self, timeout: float) -> None:
        """Let queued events go out (up to `timeout`), then drop the rest."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout or None)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task

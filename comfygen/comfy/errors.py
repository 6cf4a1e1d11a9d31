"""Typed failures of a ComfyUI call; the server maps each to an HTTP answer."""

from __future__ import annotations

from typing import Any


class ComfyError(Exception):
    """Base of every error raised by the ComfyUI client."""


class ComfyUnavailableError(ComfyError):
    """ComfyUI cannot be reached, exited, or lost the prompt (for example after a restart)."""


class ComfyHTTPError(ComfyError):
    """ComfyUI answered an unexpected HTTP status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.method, self.path, self.status, self.body = method, path, status, body
        super().__init__(f"ComfyUI answered {status} to {method} {path}: {body[:300]}")


class ComfyValidationError(ComfyError):
    """ComfyUI refused the graph (HTTP 400 from POST /prompt)."""

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]) -> None:
        self.error = error if isinstance(error, dict) else {"type": "error", "message": str(error)}
        self.node_errors = node_errors or {}
        reasons = []
        for node, entry in self.node_errors.items():
            for err in (entry or {}).get("errors", []) if isinstance(entry, dict) else []:
                name = (err.get("extra_info") or {}).get("input_name")
                where = f"node {node} ({entry.get('class_type', '?')})"
                where += f" input {name!r}" if name else ""
                reasons.append(f"{where}: {err.get('message') or err.get('type')}")
        head = self.error.get("message") or "ComfyUI rejected the prompt"
        super().__init__(f"{head}: {'; '.join(reasons[:5])}" if reasons else head)


class ComfyExecutionError(ComfyError):
    """A node raised while ComfyUI ran the prompt (`execution_error`)."""

    def __init__(self, prompt_id: str, data: dict[str, Any]) -> None:
        self.prompt_id = prompt_id
        self.data = data
        self.node_id = str(data.get("node_id", ""))
        self.node_type = str(data.get("node_type", ""))
        self.exception_type = str(data.get("exception_type", ""))
        self.exception_message = str(data.get("exception_message", "")).strip()
        super().__init__(
            f"node {self.node_id} ({self.node_type}) failed: "
            f"{self.exception_type}: {self.exception_message}"
        )


class ComfyInterruptedError(ComfyError):
    """The prompt was interrupted (`execution_interrupted`) or removed from the queue."""

    def __init__(self, prompt_id: str, data: dict[str, Any] | None = None) -> None:
        self.prompt_id = prompt_id
        self.data = data or {}
        super().__init__(f"prompt {prompt_id} was interrupted")


class ComfyTimeoutError(ComfyError):
    """A wait ran out of time; `cancelled` says what was done about the prompt."""

    def __init__(self, prompt_id: str, timeout: float, cancelled: str | None = None) -> None:
        self.prompt_id, self.timeout, self.cancelled = prompt_id, timeout, cancelled
        super().__init__(f"prompt {prompt_id} did not finish within {timeout:g}s")

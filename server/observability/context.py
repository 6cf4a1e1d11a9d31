"""The ids every log line of a request or job carries, as context variables.

A job's task is created inside its request, so it starts with the request's values; the job then
binds its own `job_id` and `prompt_id` in its task's context (never seen by other requests).
"""

from __future__ import annotations

from contextvars import ContextVar

FIELDS = ("request_id", "job_id", "prompt_id", "workflow")

_vars: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"comfygen_{name}", default=None) for name in FIELDS
}
request_id = _vars["request_id"]


def bind(**values: str | None) -> None:
    """Set ids for the rest of the current context (a request or a job's task)."""
    for name, value in values.items():
        _vars[name].set(value)


def current() -> dict[str, str | None]:
    """The ids in force here, every field present (None when unknown)."""
    return {name: var.get() for name, var in _vars.items()}

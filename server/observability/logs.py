"""Logging: plain lines by default, JSON lines with `COMFYGEN_LOG_FORMAT=json`; in both, the
request/job ids from `context` on every record and secrets scrubbed from every message.

`log_config(...)` is a `logging.config.dictConfig` dict that `serve` hands to uvicorn, so
uvicorn's own and access logs go through the same formatter and filters as comfygen's.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from server.observability import context

_secrets: set[str] = set()

# scheme://user:pass@host -> scheme://***@host ; ?query -> ?*** (signed URLs, tokens)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")
_URL_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#'\"]*)\?[^\s#'\"]*")
_KEY_VALUE = re.compile(
    r"(?i)((?:api[_-]?key|secret|token|password|passwd|authorization|signature|"
    r"x-amz-signature|sig)[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"',;&}]+")

_KEY_HINT = re.compile(r"(?i)key|secret|token|pass|auth|sig")


def register_secrets(settings: Any) -> None:
    """Remember the values that must never be logged: the API key, the webhook secret, the
    headers of media URL credentials."""
    for value in (settings.api_key, settings.webhook_secret):
        if value is not None and value.get_secret_value():
            _secrets.add(value.get_secret_value())
    for headers in (settings.media_url_credentials or {}).values():
        for value in headers.values():
            secret = value.get_secret_value()
            _secrets.add(secret)
            if secret.lower().startswith("bearer "):
                _secrets.add(secret[7:])
    if settings.webhook_secret is not None:
        raw = settings.webhook_secret.get_secret_value()
        if raw.startswith("whsec_"):
            _secrets.add(raw[6:])


def redact(text: str) -> str:
    """`text` with known secrets, URL credentials and queries, and key=value secrets masked."""
    for secret in _secrets:
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    if "://" in text:
        text = _URL_USERINFO.sub(r"\1***@", text)
        text = _URL_QUERY.sub(r"\1?***", text)
    if ("=" in text or ":" in text) and _KEY_HINT.search(text):
        text = _KEY_VALUE.sub(r"\1***", text)
    return text


def _redact_path(path: str) -> str:
    parts = urlsplit(path)
    return f"{parts.path}?***" if parts.query else path


class ContextFilter(logging.Filter):
    """Puts `request_id`, `job_id`, `prompt_id` and `workflow` on the record, and scrubs its
    message (the access log's path loses its query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if (record.name == "uvicorn.access" and isinstance(record.args, tuple)
                and len(record.args) == 5):
            client, method, path, version, status = record.args
            path = _redact_path(str(path))
            record.args = (client, method, path, version, status)
            record.http_method, record.path, record.status_code = method, path, status
        record.__dict__.pop("color_message", None)  # uvicorn's unscrubbed copy of the message
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's problem, not ours
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # formatters use exc_text when exc_info is gone (JSON's would re-format exc_info)
            record.exc_text, record.exc_info = redact(record.exc_text), None
        return True


class PlainFormatter(logging.Formatter):
    """`time level logger [request_id job_id] message`."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k in ("request_id", "job_id")
                       if (v := getattr(record, k, None)))
        record.ids = f" [{ids}]" if ids else ""
        return super().format(record)


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s "
        "%(prompt_id)s %(workflow)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        timestamp=False,
    )


def log_config(fmt: str = "plain", level: str = "info",
               stream: Any = "ext://sys.stderr") -> dict[str, Any]:
    """The dictConfig for uvicorn's `log_config`: one stderr handler for uvicorn, its access log
    and comfygen, with the context and redaction filter."""
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {"()": json_formatter}
    else:
        formatter = {"()": PlainFormatter,
                     "format": "%(asctime)s %(levelname)-7s %(name)s%(ids)s %(message)s"}
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"main": formatter},
        "handlers": {"main": {"class": "logging.StreamHandler", "formatter": "main",
                              "filters": ["context"], "stream": stream}},
        "loggers": {
            "uvicorn": {"handlers": ["main"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": ["main"], "level": upper, "propagate": False},
            "comfygen": {"handlers": ["main"], "level": upper, "propagate": False},
            "server": {"handlers": ["main"], "level": upper, "propagate": False},
            "httpx": {"handlers": ["main"], "level": "WARNING", "propagate": False},
        },
    }

"""comfyui-api's environment variable names, read as aliases of comfygen's settings.

A container definition written for SaladTechnologies/comfyui-api 1.18 (its `src/config.ts`) runs
unchanged. Plain renames are `AliasChoices` on the settings fields (`COMFYGEN_<NAME>` is listed
first, so it wins); the names whose value needs converting (megabytes to bytes, retries to
attempts, a check interval times a count to a timeout, 0 meaning "no limit", `SYSTEM_META_*`)
are read by `ComfyuiApiSource`, which sits just below the `COMFYGEN_*` environment. Names
comfygen has no meaning for are reported once, at start (`unsupported`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

META_PREFIX = "SYSTEM_META_"

RENAMED: dict[str, str] = {
    "host": "HOST",
    "port": "PORT",
    "log_level": "LOG_LEVEL",
    "webhook_secret": "WEBHOOK_SECRET",
    "warmup_workflow": "WARMUP_PROMPT_FILE",
    "restart_comfyui": "ALWAYS_RESTART_COMFYUI",
    "comfyui_port": "COMFYUI_PORT_HOST",
    "comfyui_input_dir": "INPUT_DIR",
    "comfyui_output_dir": "OUTPUT_DIR",
    "system_webhook_url": "SYSTEM_WEBHOOK_URL",
    "system_webhook_events": "SYSTEM_WEBHOOK_EVENTS",
}
"""Setting -> the comfyui-api name that means the same (same unit)."""


def alias(name: str) -> AliasChoices:
    """`COMFYGEN_<NAME>` first (it wins), then comfyui-api's name for setting `name`."""
    return AliasChoices(f"COMFYGEN_{name.upper()}", RENAMED[name])


def _mb(value: str) -> int:
    return int(float(value) * 1024 * 1024)


def _retries(value: str) -> int:
    return int(value) + 1


def _gb(value: str) -> int | None:
    return int(float(value) * 1024**3) or None  # 0: no limit


def _depth(value: str) -> int:
    return int(value) or 2**31 - 1  # 0: no limit


CONVERTED: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MAX_BODY_SIZE_MB": ("max_body_size", _mb),
    "PROMPT_WEBHOOK_RETRIES": ("webhook_max_attempts", _retries),
    "MAX_QUEUE_DEPTH": ("max_queue_size", _depth),
    "LRU_CACHE_SIZE_GB": ("models_cache_max_bytes", _gb),
}
"""comfyui-api name -> (setting, conversion of its value)."""

STARTUP_CHECKS = ("STARTUP_CHECK_INTERVAL_S", "STARTUP_CHECK_MAX_TRIES")
"""Their product (defaults 1 s and 20) is `startup_timeout`."""

KNOWN = frozenset({
    "ALWAYS_RESTART_COMFYUI", "AWS_DEFAULT_REGION", "AWS_REGION", "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "BASE",
    "CACHE_DIR", "CMD", "COMFY_HOME", "COMFYUI_PORT_HOST", "DIRECT_ADDRESS", "HOST",
    "HTTP_AUTH_HEADER_NAME", "HTTP_AUTH_HEADER_VALUE", "INPUT_DIR", "LOG_LEVEL",
    "LRU_CACHE_SIZE_GB", "MANIFEST_JSON", "MANIFEST", "MARKDOWN_SCHEMA_DESCRIPTIONS",
    "MAX_BODY_SIZE_MB", "MAX_QUEUE_DEPTH", "MODEL_DIR", "OUTPUT_DIR", "PORT",
    "PREPEND_FILENAMES", "PROMPT_WEBHOOK_RETRIES", "STARTUP_CHECK_INTERVAL_S",
    "STARTUP_CHECK_MAX_TRIES", "SYSTEM_WEBHOOK_EVENTS", "SYSTEM_WEBHOOK_URL",
    "WARMUP_PROMPT_FILE", "WARMUP_PROMPT_URL", "WEBHOOK_SECRET", "WORKFLOW_DIR",
})
"""Every variable comfyui-api 1.18 reads (`src/config.ts`), but `SYSTEM_META_*` and the
`SALAD_*` platform variables (sent as metadata with system events)."""

OTHER_READERS = frozenset({"AWS_DEFAULT_REGION", "AWS_REGION", "AZURE_STORAGE_ACCOUNT",
                           "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY",
                           "AZURE_STORAGE_SAS_TOKEN"})
"""Read by the cloud SDKs themselves (storage), not by the settings: never reported."""

SUPPORTED = frozenset(RENAMED.values()) | frozenset(CONVERTED) | frozenset(STARTUP_CHECKS)


def unsupported(environ: Mapping[str, str] | None = None) -> list[str]:
    """comfyui-api variables set in `environ` that comfygen ignores, sorted."""
    environ = os.environ if environ is None else environ
    return sorted(n for n in KNOWN - SUPPORTED - OTHER_READERS if n in environ)


SALAD_METADATA = ("SALAD_ORGANIZATION_NAME", "SALAD_ORGANIZATION_ID", "SALAD_PROJECT_NAME",
                  "SALAD_PROJECT_ID", "SALAD_CONTAINER_GROUP_NAME", "SALAD_CONTAINER_GROUP_ID",
                  "SALAD_INSTANCE_ID", "SALAD_MACHINE_ID")
"""SaladCloud's default variables, sent as `salad_<name>` metadata when set (as comfyui-api)."""


def system_meta(environ: Mapping[str, str]) -> dict[str, str]:
    """`SYSTEM_META_<key>=value` as `{key: value}` (the key's case kept, as comfyui-api does),
    and SaladCloud's SALAD_METADATA as `{"salad_machine_id": ...}`."""
    meta = {k[len(META_PREFIX):]: v for k, v in environ.items()
            if k.startswith(META_PREFIX) and len(k) > len(META_PREFIX)}
    meta.update({name.lower(): environ[name] for name in SALAD_METADATA if environ.get(name)})
    return meta


class ComfyuiApiSource(PydanticBaseSettingsSource):
    """The comfyui-api variables whose values are converted (see the module docstring)."""

    def __init__(self, settings_cls: type[Any], environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self.environ = dict(os.environ if environ is None else environ)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # values come from __call__

    def __call__(self) -> dict[str, Any]:
        env = self.environ
        values: dict[str, Any] = {}
        for name, (setting, convert) in CONVERTED.items():
            if env.get(name, "").strip():
                try:
                    values[setting] = convert(env[name].strip())
                except ValueError:
                    values[setting] = env[name]  # the setting's own validation names it
        if any(env.get(n, "").strip() for n in STARTUP_CHECKS):
            try:
                values["startup_timeout"] = (float(env.get(STARTUP_CHECKS[0]) or 1)
                                             * float(env.get(STARTUP_CHECKS[1]) or 20))
            except ValueError:
                values["startup_timeout"] = env.get(STARTUP_CHECKS[0])
        meta = system_meta(env)
        if meta:
            values["system_webhook_meta"] = meta
        return values


def warn_unsupported(logger: logging.Logger, environ: Mapping[str, str] | None = None) -> None:
    """One warning line naming the comfyui-api variables that are set but ignored."""
    names = unsupported(environ)
    if names:
        logger.warning("ignoring comfyui-api environment variables comfygen has no meaning for: "
                       "%s (docs/migrating-from-comfyui-api.md)", ", ".join(names))

"""Server settings: init arguments (CLI flags) > COMFYGEN_* environment > `[tool.comfygen.server]`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)


class Settings(BaseSettings):
    """Every knob of `comfygen serve`; docs/configuration.md lists them in one table."""

    model_config = SettingsConfigDict(
        env_prefix="COMFYGEN_",
        extra="ignore",
        pyproject_toml_table_header=("tool", "comfygen", "server"),
        use_attribute_docstrings=True,
    )

    # HTTP server
    host: str = "127.0.0.1"
    """Address the HTTP server listens on."""
    port: int = Field(default=8000, ge=0, le=65535)
    """Port the HTTP server listens on."""
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """uvicorn and comfygen log level."""

    # ComfyUI: attach to a URL, or launch a child
    comfyui_url: str | None = None
    """Attach to this ComfyUI (e.g. http://127.0.0.1:8188) instead of launching one."""
    comfyui_home: Path | None = None
    """Install to launch (ComfyUI/ and venv/ inside); default: the test install's location."""
    comfyui_command: list[str] | None = None
    """Launch this command instead (`{host}`, `{port}`, `{base_dir}` are substituted)."""
    comfyui_base_dir: Path = Path("comfyui-data")
    """The launched ComfyUI's base directory (models/, input/, output/, temp/, user/)."""
    comfyui_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the launched ComfyUI; default: a free one."""
    comfyui_args: list[str] = []
    """Extra arguments for the launched ComfyUI (e.g. ["--highvram"])."""
    comfyui_output_dir: Path | None = None
    """When attached: ComfyUI's output folder as seen from here, to delete delivered files."""
    comfyui_temp_dir: Path | None = None
    """When attached: ComfyUI's temp folder as seen from here, to delete delivered files."""
    restart_comfyui: bool = True
    """Restart a launched ComfyUI that exits (with backoff)."""
    startup_timeout: float = Field(default=180.0, gt=0)
    """Seconds ComfyUI may take to come up (and run the warmup)."""
    warmup_workflow: Path | None = None
    """An API-format graph run once before the server reports ready."""

    # requests
    request_timeout: float = Field(default=600.0, gt=0)
    """Seconds a request may take in ComfyUI; then its job is cancelled and 504 returned."""
    max_queue_size: int = Field(default=100, ge=1)
    """/ready answers 503 while ComfyUI's queue holds this many prompts or more."""
    keep_outputs: bool = False
    """Keep output files in ComfyUI after delivery (deletion needs local access to them)."""
    retry_after: int = Field(default=5, ge=0)
    """Seconds in the Retry-After header of 503 answers."""
    drain_timeout: float = Field(default=60.0, ge=0)
    """On SIGTERM, how long in-flight requests and webhook jobs may take to finish."""

    # connection to ComfyUI
    heartbeat: float = Field(default=10.0, gt=0)
    """Websocket ping interval (and pong timeout), seconds."""
    poll_interval: float = Field(default=3.0, gt=0)
    """/history polling while the websocket is up (a safety net)."""
    fast_poll_interval: float = Field(default=0.5, gt=0)
    """/history polling while the websocket is down."""
    unavailable_grace: float = Field(default=5.0, ge=0)
    """Seconds ComfyUI may stay unreachable before waiting requests fail with 503."""
    object_info_ttl: float = Field(default=10.0, ge=0)
    """Seconds /object_info is cached (choices, OpenAPI enums); a miss refreshes it at once."""

    # webhooks
    webhook_secret: SecretStr | None = None
    """Standard Webhooks signing secret (`whsec_` + base64) for `webhook_v2`."""
    webhook_timeout: float = Field(default=10.0, gt=0)
    """Seconds per webhook delivery attempt."""
    webhook_max_attempts: int = Field(default=8, ge=1)
    """Delivery attempts per event before giving up (then `prompt.failed` is sent)."""
    webhook_backoff: float = Field(default=1.0, gt=0)
    """First retry delay in seconds; doubles per attempt."""
    webhook_backoff_max: float = Field(default=60.0, gt=0)
    """Longest delay between two delivery attempts, seconds."""
    webhook_allow_cidrs: str = ""
    """Private networks webhooks may reach, comma-separated (e.g. 10.0.0.0/8); none by default."""

    media_allow_cidrs: str = ""
    """Private networks that media input URLs may be fetched from, comma-separated."""

    @property
    def attached(self) -> bool:
        return self.comfyui_url is not None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (built on first use, never at import time)."""
    return Settings()

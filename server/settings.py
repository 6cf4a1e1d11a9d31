"""Server settings: init arguments (CLI flags) > COMFYGEN_* environment > the project's own
settings table (`[server]` of comfygen.toml, or `[tool.comfygen.server]` of pyproject.toml)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from server.compat_env import ComfyuiApiSource, alias


class Settings(BaseSettings):
    """Every knob of `comfygen serve`; docs/configuration.md lists them in one table."""

    model_config = SettingsConfigDict(
        env_prefix="COMFYGEN_",
        extra="ignore",
        use_attribute_docstrings=True,
        populate_by_name=True,  # settings with a comfyui-api alias keep their own name
    )

    # HTTP server
    host: str = Field(default="127.0.0.1", validation_alias=alias("host"))
    """Address the HTTP server listens on."""
    port: int = Field(default=8000, ge=0, le=65535, validation_alias=alias("port"))
    """Port the HTTP server listens on."""
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", validation_alias=alias("log_level"))
    """uvicorn and comfygen log level."""
    log_format: Literal["plain", "json"] = "plain"
    """`json`: one JSON object per log line (uvicorn's access log too), with request_id,
    job_id, prompt_id and workflow; `plain`: readable lines."""

    # ComfyUI: attach to a URL, or launch a child
    comfyui_url: str | None = None
    """Attach to this ComfyUI (e.g. http://127.0.0.1:8188) instead of launching one."""
    comfyui_home: Path | None = None
    """Install to launch (ComfyUI/ and venv/ inside); default: the test install's location."""
    comfyui_command: list[str] | None = None
    """Launch this command instead (`{host}`, `{port}`, `{base_dir}` are substituted)."""
    comfyui_base_dir: Path = Path("comfyui-data")
    """The launched ComfyUI's base directory (models/, input/, output/, temp/, user/)."""
    comfyui_port: int | None = Field(default=None, ge=1, le=65535,
                                     validation_alias=alias("comfyui_port"))
    """Port of the launched ComfyUI; default: a free one."""
    comfyui_args: list[str] = []
    """Extra arguments for the launched ComfyUI (e.g. ["--highvram"])."""
    comfyui_output_dir: Path | None = Field(default=None, validation_alias=alias("comfyui_output_dir"))
    """When attached: ComfyUI's output folder as seen from here, to read outputs from disk
    (instead of through /view) and delete delivered files."""
    comfyui_temp_dir: Path | None = None
    """When attached: ComfyUI's temp folder as seen from here, to read temp outputs from disk
    and delete delivered files."""
    comfyui_input_dir: Path | None = Field(default=None, validation_alias=alias("comfyui_input_dir"))
    """When attached: ComfyUI's input folder as seen from here, to delete uploaded media after
    each run (launched: its base directory's input/)."""
    restart_comfyui: bool = Field(default=True, validation_alias=alias("restart_comfyui"))
    """Restart a launched ComfyUI that exits (with backoff)."""
    startup_timeout: float = Field(default=180.0, gt=0)
    """Seconds ComfyUI may take to come up (and run the warmup)."""
    warmup_workflow: Path | None = Field(default=None, validation_alias=alias("warmup_workflow"))
    """An API-format graph run once before the server reports ready."""

    # requests
    request_timeout: float = Field(default=600.0, gt=0)
    """Seconds a request may take in ComfyUI; then its job is cancelled and 504 returned."""
    max_queue_size: int = Field(default=100, ge=1)
    """/ready answers 503 while ComfyUI's queue holds this many prompts or more."""
    keep_outputs: bool = False
    """Keep output files in ComfyUI after delivery (deletion needs local access to them)."""
    retry_after: int = Field(default=5, ge=0)
    """Seconds in the Retry-After header of 503 and 429 answers."""
    drain_timeout: float = Field(default=60.0, ge=0)
    """On SIGTERM, how long in-flight requests and webhook jobs may take to finish."""
    keep_alive_timeout: float = Field(default=5.0, gt=0)
    """Seconds an idle client connection stays open. Behind a load balancer, set it above the
    balancer's idle timeout (60 s on AWS ALB), so the balancer closes idle connections first:
    a request it sends just as comfygen closes one fails with a 502."""

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
    """Seconds between cheap checks of ComfyUI's model lists: /object_info (choices, OpenAPI
    enums) is fetched again only when they changed, on a reconnect, or on a miss (0: no checks)."""

    # webhooks
    webhook_secret: SecretStr | None = Field(default=None, validation_alias=alias("webhook_secret"))
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

    webhook_allow_hosts: str = ""
    """Host names webhooks may reach whatever they resolve to, comma-separated (`*.corp` ok)."""

    # system events: ComfyUI's websocket events and file events to one operator webhook
    system_webhook_url: str | None = Field(default=None,
                                           validation_alias=alias("system_webhook_url"))
    """Send the chosen system events here, signed like `webhook_v2` (comfyui-api's
    `SYSTEM_WEBHOOK_URL`); unset: none are sent."""
    system_webhook_events: str = Field(default="", validation_alias=alias("system_webhook_events"))
    """Events to send, comma-separated (`status`, `progress`, `progress_state`, `executing`,
    `execution_start`, `execution_cached`, `executed`, `execution_success`,
    `execution_interrupted`, `execution_error`, `file_downloaded`, `file_uploaded`,
    `file_deleted`), or `all`."""
    system_webhook_meta: dict[str, str] = {}
    """`metadata` sent with every system event; `SYSTEM_META_<key>=value` variables (and
    SaladCloud's `SALAD_*` ones, as `salad_<name>`) add to it."""

    # media inputs
    media_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """Largest media file (decoded base64, upload or URL body), bytes."""
    media_max_pixels: int = Field(default=40_000_000, gt=0)
    """Largest width x height of one image frame."""
    media_max_frames: int = Field(default=1000, gt=0)
    """Most frames in an animated image."""
    media_allow_urls: bool = True
    """Fetch http(s) URLs given as media values (through the URL guard); false refuses them."""
    media_allow_cidrs: str = ""
    """Private networks that media input URLs may be fetched from, comma-separated."""
    media_allow_hosts: str = ""
    """Host names media URLs may be fetched from whatever they resolve to, comma-separated."""
    media_fetch_timeout: float = Field(default=30.0, gt=0)
    """Seconds for one media URL fetch, redirects and body included."""
    media_max_redirects: int = Field(default=5, ge=0)
    """Redirects followed per media URL (each target is checked again)."""
    media_url_credentials: dict[str, dict[str, SecretStr]] = {}
    """Headers sent with media fetches whose URL matches a pattern, e.g.
    {"https://bucket.example/*": {"Authorization": "Bearer ..."}}; never echoed or logged."""
    hf_token_repos: str = ""
    """Hugging Face repos whose files a caller's `hf://` (or Hub) media or model URL may read
    with the server's `HF_TOKEN`, comma-separated globs of `owner/repo` (`myorg/*`,
    `datasets/myorg/faces`); other Hub URLs get the request's own credentials or none."""
    storage_read_allow: str = ""
    """Objects a caller's `s3://`, `az://` or Azure blob URL media input may name, read with the
    server's own AWS_*/AZURE_STORAGE_* credentials: comma-separated globs of
    `s3://bucket/key` and `az://container/blob` (`s3://my-inputs/*`). Empty: none (422)."""

    # jobs
    jobs_db: Path = Path("comfygen-jobs.sqlite3")
    """SQLite file holding async jobs (state, progress, result); survives restarts."""
    job_ttl: float = Field(default=24 * 3600.0, gt=0)
    """Seconds a finished job (and its result) is kept before it expires."""
    queue_limit: int = Field(default=500, ge=0)
    """New runs get 429 with Retry-After while ComfyUI's queue (or this server's runs in flight)
    holds this many prompts; 0 turns admission control off."""

    # shared jobs (many replicas): docs/deployment.md "From one machine to many"
    role: Literal["all", "api", "worker"] = "all"
    """`all`: serve HTTP and run jobs; `api`: serve HTTP only (no ComfyUI, needs `redis_url`);
    `worker`: run jobs from Redis on its own ComfyUI and answer /health and /ready only."""
    redis_url: str | None = None
    """Redis >= 7 or Valkey (e.g. redis://10.0.0.5:6379/0): jobs, queue, events, idempotency and
    admission are shared there; unset: SQLite and in-process events (one machine)."""
    redis_prefix: str = "comfygen"
    """Prefix of every Redis key, so several deployments can share one server."""
    redis_timeout: float = Field(default=2.0, gt=0)
    """Seconds a Redis call may take; past it the request answers 503 and /ready is false."""
    job_claim_timeout: float = Field(default=30.0, gt=0)
    """Seconds without a heartbeat after which a worker's job is taken over by another worker
    (its worker is presumed dead) and run again from the start."""
    job_max_attempts: int = Field(default=3, ge=1)
    """Deliveries of one job to workers; past it the job fails with `dead_letter`."""
    job_events_max: int = Field(default=1000, ge=10)
    """Events kept per job in Redis (a capped stream; SSE resumes within it)."""
    asset_ttl: float = Field(default=24 * 3600.0, gt=0)
    """With shared jobs: seconds a `/api/v2/assets` upload is kept in Redis (its record and
    bytes; an upload of the same bytes keeps them longer). One machine keeps them on disk."""
    shared_media_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Media bytes one shared job may carry in Redis (its files, decoded, in all; each file
    is also held to `media_max_bytes`); past it the request gets 413."""

    # access
    api_key: SecretStr | None = None
    """When set, every endpoint except /health and /ready (and the docs, see below) needs it."""
    api_key_header: str = "X-API-Key"
    """Header carrying the API key (e.g. Salad-Api-Key); `Authorization: Bearer` works too."""
    api_key_protect_docs: bool = False
    """Also require the API key for /docs and /openapi.json."""
    metrics_public: bool = False
    """Serve /metrics without the API key (e.g. to a Prometheus on a private network)."""
    max_body_size: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest request body in bytes (JSON or multipart); larger bodies get 413."""
    cors_allow_origins: list[str] = []
    """Origins allowed to call the API from a browser (e.g. ["https://app.example"], or ["*"]);
    empty: no CORS headers."""
    cors_allow_methods: list[str] = ["GET", "POST", "DELETE", "OPTIONS"]
    """Methods allowed in CORS requests."""
    cors_allow_headers: list[str] = ["*"]
    """Request headers allowed in CORS requests."""
    cors_allow_credentials: bool = False
    """Let browsers send cookies/credentials with CORS requests."""
    cors_max_age: int = Field(default=600, ge=0)
    """Seconds browsers may cache a CORS preflight answer."""

    # model files (docs/models-and-custom-nodes.md)
    models_pull: Literal["before_start", "background", "off"] = "off"
    """Download the manifest's files the served workflows need at start: `before_start` (/ready
    waits for them), `background` (a request needing a file still downloading gets 503), `off`."""
    models_manifest: Path | None = None
    """The model manifest; `comfygen serve` sets the project's workflow_templates/models.yaml."""
    models_dir: Path | None = None
    """ComfyUI's models folder as seen from here, where pulled files go; default: the launched
    ComfyUI's <comfyui_base_dir>/models (needed when attached)."""
    models_cache_dir: Path | None = None
    """The download cache, shared by pulls and processes; default: ~/.cache/comfygen/models."""
    models_cache_max_bytes: int | None = Field(default=None, gt=0)
    """Size limit of the download cache: least recently used files are evicted past it."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_names(cls, value: Any) -> Any:
        """Any case, and comfyui-api's (pino's) names: trace, warn, fatal."""
        if isinstance(value, str):
            value = value.strip().lower()
            return {"trace": "debug", "warn": "warning", "fatal": "critical"}.get(value, value)
        return value

    @field_validator("webhook_secret", "system_webhook_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """An empty value is no value (comfyui-api's `WEBHOOK_SECRET` defaults to "")."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' own order, with comfyui-api's converted variables just below
        the environment (COMFYGEN_* and the renamed comfyui-api names)."""
        return (init_settings, env_settings, ComfyuiApiSource(settings_cls), dotenv_settings,
                file_secret_settings)


def project_settings(table: Mapping[str, Any], **flags: Any) -> Settings:
    """Settings for a project: `flags` (CLI flags) over COMFYGEN_* over the project's `table`."""

    class ProjectSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, ComfyuiApiSource(settings_cls),
                    InitSettingsSource(settings_cls, dict(table)))

    return ProjectSettings(**flags)

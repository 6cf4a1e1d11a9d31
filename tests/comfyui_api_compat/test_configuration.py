"""comfyui-api README "API Configuration Guide": its environment variable names configure comfygen
(server/compat_env.py); comfygen's own `COMFYGEN_*` names win when both are set; names comfygen
has no meaning for are reported in one warning line. Unit tests of the settings, each in an
environment of its own (no ComfyUI needed); the served process is in test_probes.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.compat_env import KNOWN, unsupported, warn_unsupported
from server.settings import Settings, project_settings
from server.webhooks.system_events import SystemEvents, parse_events

RENAMED = [  # comfyui-api name, setting, its value, comfygen's value, as read: theirs, ours
    ("HOST", "host", "::", "0.0.0.0", "::", "0.0.0.0"),
    ("PORT", "port", "3000", "8001", 3000, 8001),
    ("WEBHOOK_SECRET", "webhook_secret", "dGVzdA==", "whsec_b3du", "dGVzdA==", "whsec_b3du"),
    ("WARMUP_PROMPT_FILE", "warmup_workflow", "/w/a.json", "/w/b.json", Path("/w/a.json"),
     Path("/w/b.json")),
    ("ALWAYS_RESTART_COMFYUI", "restart_comfyui", "false", "true", False, True),
    ("COMFYUI_PORT_HOST", "comfyui_port", "8189", "8190", 8189, 8190),
    ("INPUT_DIR", "comfyui_input_dir", "/in/a", "/in/b", Path("/in/a"), Path("/in/b")),
    ("OUTPUT_DIR", "comfyui_output_dir", "/out/a", "/out/b", Path("/out/a"), Path("/out/b")),
    ("SYSTEM_WEBHOOK_URL", "system_webhook_url", "https://a.example/h", "https://b.example/h",
     "https://a.example/h", "https://b.example/h"),
    ("SYSTEM_WEBHOOK_EVENTS", "system_webhook_events", "progress", "status", "progress",
     "status"),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("COMFYGEN_", "SYSTEM_META_", "SALAD_")) or name in KNOWN:
            monkeypatch.delenv(name)


def value_of(settings: Settings, setting: str) -> object:
    value = getattr(settings, setting)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize(("name", "setting", "theirs", "ours", "read_theirs", "read_ours"),
                         RENAMED)
def test_renamed_variable_is_read_and_comfygen_name_wins(
        monkeypatch: pytest.MonkeyPatch, name: str, setting: str, theirs: str, ours: str,
        read_theirs: object, read_ours: object) -> None:
    monkeypatch.setenv(name, theirs)
    assert value_of(Settings(), setting) == read_theirs
    monkeypatch.setenv(f"COMFYGEN_{setting.upper()}", ours)
    assert value_of(Settings(), setting) == read_ours


@pytest.mark.parametrize(("env", "setting", "expected"), [
    ({"MAX_BODY_SIZE_MB": "10"}, "max_body_size", 10 * 1024 * 1024),
    ({"PROMPT_WEBHOOK_RETRIES": "3"}, "webhook_max_attempts", 4),
    ({"MAX_QUEUE_DEPTH": "5"}, "max_queue_size", 5),
    ({"MAX_QUEUE_DEPTH": "0"}, "max_queue_size", 2**31 - 1),  # no limit
    ({"LRU_CACHE_SIZE_GB": "1.5"}, "models_cache_max_bytes", 3 * 2**29),
    ({"LRU_CACHE_SIZE_GB": "0"}, "models_cache_max_bytes", None),  # no limit
    ({"STARTUP_CHECK_INTERVAL_S": "2", "STARTUP_CHECK_MAX_TRIES": "30"}, "startup_timeout", 60),
    ({"STARTUP_CHECK_MAX_TRIES": "30"}, "startup_timeout", 30),
    ({"LOG_LEVEL": "WARN"}, "log_level", "warning"),
    ({"LOG_LEVEL": "trace"}, "log_level", "debug"),
])
def test_converted_variables(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str,
                             expected: object) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert getattr(Settings(), setting) == expected


@pytest.mark.parametrize(("name", "value", "setting", "ours"), [
    ("MAX_BODY_SIZE_MB", "10", "max_body_size", "1234"),
    ("PROMPT_WEBHOOK_RETRIES", "3", "webhook_max_attempts", "2"),
    ("MAX_QUEUE_DEPTH", "0", "max_queue_size", "7"),
    ("STARTUP_CHECK_MAX_TRIES", "99", "startup_timeout", "5"),
])
def test_comfygen_name_wins_over_a_converted_one(monkeypatch: pytest.MonkeyPatch, name: str,
                                                 value: str, setting: str, ours: str) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv(f"COMFYGEN_{setting.upper()}", ours)
    assert getattr(Settings(), setting) == float(ours)


def test_environment_over_project_table_and_flags_over_both(
        monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"port": 7000, "max_body_size": 5}
    assert project_settings(table).port == 7000
    monkeypatch.setenv("PORT", "3000")
    monkeypatch.setenv("MAX_BODY_SIZE_MB", "1")
    settings = project_settings(table)
    assert settings.port == 3000 and settings.max_body_size == 1024 * 1024
    assert project_settings(table, port=9).port == 9
    assert Settings(port=9).port == 9  # the field's own name still works (CLI flags, tests)


def test_empty_secret_and_url_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "")  # comfyui-api's default, written out
    monkeypatch.setenv("SYSTEM_WEBHOOK_URL", " ")
    settings = Settings()
    assert settings.webhook_secret is None and settings.system_webhook_url is None


def test_a_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_SIZE_MB", "lots")
    with pytest.raises(ValueError, match="max_body_size"):
        Settings()


def test_system_meta_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEM_META_batch", "abc")
    monkeypatch.setenv("SYSTEM_META_purpose", "testing")
    assert Settings().system_webhook_meta == {"batch": "abc", "purpose": "testing"}
    monkeypatch.setenv("SALAD_MACHINE_ID", "m-1")  # SaladCloud's own variables, as comfyui-api
    monkeypatch.setenv("SALAD_CONTAINER_GROUP_NAME", "")
    assert Settings().system_webhook_meta == {"batch": "abc", "purpose": "testing",
                                              "salad_machine_id": "m-1"}
    monkeypatch.delenv("SALAD_MACHINE_ID")
    monkeypatch.setenv("COMFYGEN_SYSTEM_WEBHOOK_META", '{"purpose": "ours", "team": "x"}')
    assert Settings().system_webhook_meta == {"batch": "abc", "purpose": "ours", "team": "x"}


def test_system_events_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_events("all") >= {"status", "progress_state", "file_deleted"}
    assert parse_events(" progress, status ") == {"progress", "status"}
    with pytest.raises(ValueError, match="unknown event.*progres\\b"):
        parse_events("progres")
    monkeypatch.setenv("SYSTEM_WEBHOOK_URL", "ftp://hooks.example/x")
    monkeypatch.setenv("SYSTEM_WEBHOOK_EVENTS", "status")
    with pytest.raises(ValueError, match="http"):
        SystemEvents.from_settings(Settings())
    monkeypatch.delenv("SYSTEM_WEBHOOK_URL")
    assert not SystemEvents.from_settings(Settings()).enabled  # events without a URL: none


def test_unsupported_variables_in_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    env = {"CMD": "init.sh", "MANIFEST": "/m.yml", "PORT": "3000", "AWS_REGION": "us-east-1",
           "PATH": "/bin"}
    assert unsupported(env) == ["CMD", "MANIFEST"]
    logger = logging.getLogger("compat-test")
    with caplog.at_level(logging.WARNING, "compat-test"):
        warn_unsupported(logger, env)
        warn_unsupported(logger, {"PORT": "1"})
    (record,) = caplog.records
    assert "CMD, MANIFEST" in record.getMessage() and "PORT" not in record.getMessage()

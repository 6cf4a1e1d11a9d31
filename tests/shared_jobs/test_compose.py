"""deploy/compose.yaml: valkey + api + worker, wired with real settings."""

from __future__ import annotations

import re

import yaml

from server.settings import Settings
from tests.conftest import ROOT


def test_compose_file_runs_the_roles_on_valkey() -> None:
    text = (ROOT / "deploy/compose.yaml").read_text()
    services = yaml.safe_load(text)["services"]
    assert set(services) == {"valkey", "api", "worker"}
    assert "--appendonly" in services["valkey"]["command"]
    for role in ("api", "worker"):
        assert services[role]["command"][-2:] == ["--role", role]
        env = services[role]["environment"]
        assert env["COMFYGEN_REDIS_URL"].startswith("redis://valkey:")
        settings = Settings(**{k.removeprefix("COMFYGEN_").lower(): v for k, v in env.items()})
        assert settings.redis_url
    names = set(re.findall(r"COMFYGEN_([A-Z_]+)", text))
    assert names <= {name.upper() for name in Settings.model_fields}, names

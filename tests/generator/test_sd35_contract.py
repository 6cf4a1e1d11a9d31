"""The built-in SD3.5 endpoint keeps comfyui-api's input contract, field for field.

The reference is the OpenAPI document the existing deployment publishes (tests/data/). Deliberate
differences, each asserted below: the seed is drawn per request (comfyui-api freezes one random
default at start-up) and carries ComfyUI's own seed range; enum values come from the live ComfyUI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfygen.runtime import ChoiceSource
from comfygen.runtime.choices import live_choices
from tests.repo_project import WORKFLOWS

from .helpers import NODEDEFS

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "data" / "comfyui-api-openapi.json").read_text()
)
SEED_SCHEMA = REFERENCE["paths"]["/workflow/sd3.5-medium/txt2img"]["post"]["requestBody"][
    "content"
]["application/json"]["schema"]["properties"]["input"]
WORKFLOW = WORKFLOWS["sd3.5-medium/txt2img"]
OURS = WORKFLOW.input_model.model_json_schema()
LIVE_ENUMS = {"sampler_name", "scheduler", "checkpoint"}


def test_same_field_names_required_and_no_extra_fields() -> None:
    assert list(OURS["properties"]) == list(SEED_SCHEMA["properties"])
    assert OURS["required"] == SEED_SCHEMA["required"] == ["prompt"]
    assert OURS["additionalProperties"] is False


@pytest.mark.parametrize("name", list(SEED_SCHEMA["properties"]))
def test_field_type_range_default(name: str) -> None:
    theirs, ours = SEED_SCHEMA["properties"][name], OURS["properties"][name]
    assert ours["type"] == theirs["type"]
    if name == "seed":
        assert "default" not in ours and ours["x-comfygen-random"] is True
        assert (ours["minimum"], ours["maximum"]) == (0, 2**64 - 1)  # KSampler's own range
        return
    assert ours.get("default") == theirs.get("default")
    assert ours.get("minimum") == theirs.get("minimum")
    assert ours.get("maximum") == theirs.get("maximum")
    if "description" in theirs:
        assert ours["description"] == theirs["description"]
    if name in LIVE_ENUMS:
        assert "enum" not in ours  # filled in from the live ComfyUI, never frozen here
    else:
        assert "enum" not in theirs


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("sampler_name", ChoiceSource("KSampler", "sampler_name")),
        ("scheduler", ChoiceSource("KSampler", "scheduler")),
        ("checkpoint", ChoiceSource("CheckpointLoaderSimple", "ckpt_name")),
    ],
)
def test_enum_fields_are_checked_against_the_live_node(name: str, source: ChoiceSource) -> None:
    assert WORKFLOW.choices[name] == source
    offered = live_choices(NODEDEFS, source)
    assert offered is not None
    if name != "checkpoint":  # no model files in the snapshot's ComfyUI
        assert set(SEED_SCHEMA["properties"][name]["enum"]) <= set(offered)


def test_seed_is_random_per_request_and_in_range() -> None:
    seeds = {WORKFLOW.input_model(prompt="x").seed for _ in range(20)}
    assert len(seeds) == 20
    assert all(0 <= s < 2**53 for s in seeds)
    assert WORKFLOW.input_model(prompt="x", seed=7).seed == 7
    assert WORKFLOW.input_model(prompt="x", seed=None).seed is not None

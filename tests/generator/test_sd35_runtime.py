"""Import the generated SD3.5 module and run it: defaults, bad inputs, exact prompt round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from comfygen.runtime.choices import check_choices
from tests.repo_project import WORKFLOWS

from .helpers import NODEDEFS

ROOT = Path(__file__).parents[2]
SEED_GRAPH = json.loads((ROOT / "workflow_templates/sd3.5-medium/txt2img.json").read_text())
WORKFLOW = WORKFLOWS["sd3.5-medium/txt2img"]


def diff_paths(a: dict, b: dict) -> set[tuple[str, str]]:
    out = set()
    assert a.keys() == b.keys()
    for node in a:
        assert a[node]["class_type"] == b[node]["class_type"]
        keys = a[node]["inputs"].keys() | b[node]["inputs"].keys()
        out |= {(node, k) for k in keys if a[node]["inputs"].get(k) != b[node]["inputs"].get(k)}
    return out


def test_default_request_changes_only_public_inputs() -> None:
    graph = WORKFLOW.build({"prompt": "a leafy green spaceship from the distant future"})
    assert diff_paths(graph, SEED_GRAPH) == {("6", "text"), ("294", "seed")}
    assert graph["6"]["inputs"]["text"] == "a leafy green spaceship from the distant future"


def test_every_field_lands_on_its_target() -> None:
    data = {
        "prompt": "p",
        "width": 512,
        "height": 768,
        "seed": 42,
        "steps": 3,
        "cfg_scale": 2.5,
        "sampler_name": "euler",
        "scheduler": "karras",
        "denoise": 0.5,
        "checkpoint": "other.safetensors",
    }
    graph = WORKFLOW.build(data)
    assert graph["135"]["inputs"] | {} == {"width": 512, "height": 768, "batch_size": 1}
    ks = graph["294"]["inputs"]
    assert (
        ks["seed"],
        ks["steps"],
        ks["cfg"],
        ks["sampler_name"],
        ks["scheduler"],
        ks["denoise"],
    ) == (42, 3, 2.5, "euler", "karras", 0.5)
    assert graph["4"]["inputs"]["ckpt_name"] == "other.safetensors"
    assert WORKFLOW.graph["294"]["inputs"]["steps"] == 20  # the base graph is never mutated


@pytest.mark.parametrize(
    ("data", "loc", "kind"),
    [
        ({"prompt": "x", "width": 100}, ("width",), "greater_than_equal"),
        ({"prompt": "x", "height": 4096}, ("height",), "less_than_equal"),
        ({"prompt": "x", "steps": 0}, ("steps",), "greater_than_equal"),
        ({"prompt": "x", "cfg_scale": 21}, ("cfg_scale",), "less_than_equal"),
        ({}, ("prompt",), "missing"),
        ({"prompt": "x", "negative": "y"}, ("negative",), "extra_forbidden"),
        ({"prompt": "x", "steps": "many"}, ("steps",), "int_parsing"),
    ],
)
def test_bad_inputs_are_rejected_per_field(data: dict, loc: tuple, kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        WORKFLOW.input_model.model_validate(data)
    errors = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, kind)]


def test_unknown_sampler_is_rejected_against_live_choices() -> None:
    data = WORKFLOW.input_model(prompt="x", sampler_name="warp_drive")
    errors = check_choices(WORKFLOW, data, NODEDEFS)
    fields = [e.field for e in errors]
    assert "sampler_name" in fields
    assert "warp_drive" in next(e.message for e in errors if e.field == "sampler_name")
    ok = WORKFLOW.input_model(prompt="x", sampler_name="euler", scheduler="karras")
    assert "sampler_name" not in [e.field for e in check_choices(WORKFLOW, ok, NODEDEFS)]


TRICKY = 'He said "hi" \\ back\\slash\nnew line\t{{ user }} {% if x %}{# c #} \'\'\' """ 🚀 é'


def test_prompt_text_round_trips_exactly() -> None:
    graph = WORKFLOW.build({"prompt": TRICKY})
    assert graph["6"]["inputs"]["text"] == TRICKY
    assert json.loads(json.dumps(graph))["6"]["inputs"]["text"] == TRICKY

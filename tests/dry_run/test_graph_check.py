"""comfygen.graph_check on its own: ComfyUI's rules that the live tests do not reach."""

from __future__ import annotations

import copy

from comfygen.graph_check import check_graph
from tests.comfyui_testing import invert_graph
from tests.generator.helpers import NODEDEFS


def test_a_good_graph_passes() -> None:
    assert check_graph(invert_graph(), NODEDEFS).ok


def test_unknown_class_and_no_outputs_are_top_level_errors() -> None:
    graph = invert_graph()
    graph["2"]["class_type"] = "NoSuchNode"
    result = check_graph(graph, NODEDEFS)
    assert result.error is not None and result.error["type"] == "invalid_prompt"
    assert "NoSuchNode does not exist" in result.error["message"] and not result.node_errors
    graph = invert_graph()
    del graph["3"]
    assert check_graph(graph, NODEDEFS).error["type"] == "prompt_no_outputs"  # type: ignore[index]


def test_refused_only_when_no_output_validates() -> None:
    """ComfyUI queues a prompt when one output node validates, and ignores nodes no output
    needs."""
    graph = invert_graph()
    graph["4"] = {"class_type": "PreviewImage", "inputs": {}}  # a broken second output
    graph["5"] = {"class_type": "ImageInvert", "inputs": {}}  # needed by nothing
    assert check_graph(graph, NODEDEFS).ok
    graph["3"]["inputs"]["images"] = ["5", 0]
    result = check_graph(graph, NODEDEFS)
    assert result.error["type"] == "prompt_outputs_failed_validation"  # type: ignore[index]
    assert {n: [e["type"] for e in v["errors"]] for n, v in result.node_errors.items()} == {
        "4": ["required_input_missing"], "5": ["required_input_missing"]}
    # ComfyUI's quirk, kept: each failing output is added to every failed node seen so far
    assert result.node_errors["5"]["dependent_outputs"] == ["3", "4"]


def test_links_and_values() -> None:
    graph = invert_graph()
    graph["2"]["inputs"]["image"] = ["9", 0]  # no node 9
    assert check_graph(graph, NODEDEFS).error["details"]  # type: ignore[index]
    assert check_graph(graph, NODEDEFS).error["type"] == (  # type: ignore[index]
        "prompt_outputs_failed_validation")
    graph = invert_graph()
    graph["2"]["inputs"]["image"] = ["1", 0, 1]
    (err,) = check_graph(graph, NODEDEFS).node_errors["2"]["errors"]
    assert err["type"] == "bad_linked_input"
    graph = copy.deepcopy(invert_graph())
    graph["1"]["inputs"].update(width="wide", height=0)
    errors = check_graph(graph, NODEDEFS).node_errors["1"]["errors"]
    assert sorted(e["type"] for e in errors) == ["invalid_input_type", "value_smaller_than_min"]
    graph = invert_graph()
    graph["1"]["inputs"]["width"] = {"__value__": 8}  # ComfyUI unwraps list-widget values
    assert check_graph(graph, NODEDEFS).ok

"""UI-format -> API-format conversion, one small hand-written workflow per construct."""

from __future__ import annotations

import json
from typing import Any

from comfygen.errors import Severity
from comfygen.workflow import convert_ui_workflow
from comfygen.workflow.dynamic_prompts import resolve_dynamic_prompt
from comfygen.workflow.load import is_ui_format, load_workflow
from tests.workflow.conftest import FIXTURES, ROOT


def node(id: int, type: str, widgets: Any = None, inputs: list | None = None,
         outputs: list | None = None, mode: int = 0, **extra: Any) -> dict:
    return {"id": id, "type": type, "mode": mode, "inputs": inputs or [],
            "outputs": outputs or [], "widgets_values": widgets, **extra}


def inp(name: str, type: str, link: int | None, widget: bool = False) -> dict:
    return {"name": name, "type": type, "link": link, **({"widget": {"name": name}} if widget else {})}


def out(type: str, links: list[int]) -> dict:
    return {"name": type, "type": type, "links": links}


def wf(nodes: list, links: list, **extra: Any) -> dict:
    return {"nodes": nodes, "links": links, **extra}


def convert(data: dict, nodedefs) -> tuple[dict, list]:
    return convert_ui_workflow(data, nodedefs, file="t.json", seed=0)


def empty_image_to_save(save_id: int = 2, **save: Any) -> list[dict]:
    return [
        node(1, "EmptyImage", [64, 32, 1, 0], outputs=[out("IMAGE", [1])]),
        node(save_id, "SaveImage", ["pre"], inputs=[inp("images", "IMAGE", 1)], **save),
    ]


def test_widget_values_by_input_order_links_and_titles(nodedefs):
    graph, problems = convert(wf(empty_image_to_save(title="My save"), [[1, 1, 0, 2, 0, "IMAGE"]]),
                              nodedefs)
    assert problems == []
    assert graph == {
        "1": {"inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 0},
              "class_type": "EmptyImage", "_meta": {"title": "EmptyImage"}},
        "2": {"inputs": {"filename_prefix": "pre", "images": ["1", 0]},
              "class_type": "SaveImage", "_meta": {"title": "My save"}},
    }


def test_dict_form_widgets_values(nodedefs):
    nodes = empty_image_to_save()
    nodes[0]["widgets_values"] = {"height": 48, "width": 16}
    graph, _ = convert(wf(nodes, [[1, 1, 0, 2, 0, "IMAGE"]]), nodedefs)
    assert graph["1"]["inputs"] == {"width": 16, "height": 48, "batch_size": 1, "color": 0}


def test_control_after_generate_value_is_skipped(nodedefs):
    ks = node(3, "KSampler", [42, "randomize", 7, 3.5, "euler", "normal", 0.5])
    graph, _ = convert(wf([ks], []), nodedefs)
    assert graph["3"]["inputs"] == {"seed": 42, "steps": 7, "cfg": 3.5, "sampler_name": "euler",
                                    "scheduler": "normal", "denoise": 0.5}


def test_image_upload_widget_value_is_skipped(nodedefs):
    graph, _ = convert(wf([node(1, "LoadImage", ["cat.png", "image"])], []), nodedefs)
    assert graph["1"]["inputs"] == {"image": "cat.png"}


def test_widget_converted_to_input_takes_the_link(nodedefs):
    nodes = [
        node(1, "PrimitiveInt", [640], outputs=[out("INT", [5])]),
        node(2, "EmptyImage", [64, 32, 1, 0], outputs=[out("IMAGE", [])],
             inputs=[inp("width", "INT", 5, widget=True)]),
    ]
    graph, _ = convert(wf(nodes, [[5, 1, 0, 2, 0, "INT"]]), nodedefs)
    assert graph["2"]["inputs"]["width"] == ["1", 0]
    assert graph["2"]["inputs"]["height"] == 32


def test_reroute_is_transparent(nodedefs):
    nodes = [
        node(1, "EmptyImage", [64, 32, 1, 0], outputs=[out("IMAGE", [1])]),
        node(7, "Reroute", None, inputs=[inp("", "*", 1)], outputs=[out("IMAGE", [2])]),
        node(2, "SaveImage", ["pre"], inputs=[inp("images", "IMAGE", 2)]),
    ]
    graph, _ = convert(wf(nodes, [[1, 1, 0, 7, 0, "IMAGE"], [2, 7, 0, 2, 0, "IMAGE"]]),
                       nodedefs)
    assert set(graph) == {"1", "2"}
    assert graph["2"]["inputs"]["images"] == ["1", 0]


def test_primitive_node_value_goes_to_every_target_widget(nodedefs):
    nodes = [
        node(9, "PrimitiveNode", [200, "fixed"], outputs=[out("INT", [3, 4])]),
        node(1, "EmptyImage", [64, 32, 1, 0], inputs=[inp("width", "INT", 3, True),
                                                      inp("height", "INT", 4, True)]),
    ]
    graph, _ = convert(wf(nodes, [[3, 9, 0, 1, 0, "INT"], [4, 9, 0, 1, 1, "INT"]]), nodedefs)
    assert set(graph) == {"1"}
    assert graph["1"]["inputs"] == {"width": 200, "height": 200, "batch_size": 1, "color": 0}


def test_notes_are_dropped(nodedefs):
    nodes = [node(5, "Note", ["hello"]), node(6, "MarkdownNote", ["# hi"]),
             node(1, "EmptyImage", [64, 32, 1, 0])]
    graph, problems = convert(wf(nodes, []), nodedefs)
    assert set(graph) == {"1"} and problems == []


def test_muted_node_is_dropped_with_its_links(nodedefs):
    nodes = empty_image_to_save()
    nodes[0]["mode"] = 2
    graph, _ = convert(wf(nodes, [[1, 1, 0, 2, 0, "IMAGE"]]), nodedefs)
    assert set(graph) == {"2"}
    assert "images" not in graph["2"]["inputs"]


def test_bypassed_node_forwards_its_matching_input(nodedefs):
    nodes = [
        node(1, "EmptyImage", [64, 32, 1, 0], outputs=[out("IMAGE", [1])]),
        node(3, "ImageInvert", None, mode=4, inputs=[inp("image", "IMAGE", 1)],
             outputs=[out("IMAGE", [2])]),
        node(2, "SaveImage", ["pre"], inputs=[inp("images", "IMAGE", 2)]),
    ]
    graph, _ = convert(wf(nodes, [[1, 1, 0, 3, 0, "IMAGE"], [2, 3, 0, 2, 0, "IMAGE"]]),
                       nodedefs)
    assert set(graph) == {"1", "2"}
    assert graph["2"]["inputs"]["images"] == ["1", 0]


SUB = "8b2c3d4e-0000-4000-8000-000000000001"


def subgraph_workflow(instance_widgets: list | None, outer_width_link: int | None = None) -> dict:
    """Root: [1 PrimitiveInt] -> [10 subgraph: EmptyImage(width promoted) -> ImageInvert] -> 2."""
    definition = {
        "id": SUB, "name": "invert",
        "inputs": [{"name": "width", "type": "INT", "linkIds": [101]}],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [103]}],
        "nodes": [
            node(5, "EmptyImage", [64, 32, 1, 0], inputs=[inp("width", "INT", 101, True)],
                 outputs=[out("IMAGE", [102])]),
            node(6, "ImageInvert", None, inputs=[inp("image", "IMAGE", 102)],
                 outputs=[out("IMAGE", [103])]),
        ],
        "links": [
            {"id": 101, "origin_id": -10, "origin_slot": 0, "target_id": 5, "target_slot": 0,
             "type": "INT"},
            {"id": 102, "origin_id": 5, "origin_slot": 0, "target_id": 6, "target_slot": 0,
             "type": "IMAGE"},
            {"id": 103, "origin_id": 6, "origin_slot": 0, "target_id": -20, "target_slot": 0,
             "type": "IMAGE"},
        ],
    }
    nodes = [
        node(1, "PrimitiveInt", [512], outputs=[out("INT", [7] if outer_width_link else [])]),
        node(10, SUB, instance_widgets, inputs=[inp("width", "INT", outer_width_link, True)],
             outputs=[out("IMAGE", [8])]),
        node(2, "SaveImage", ["pre"], inputs=[inp("images", "IMAGE", 8)]),
    ]
    links = [[8, 10, 0, 2, 0, "IMAGE"]]
    if outer_width_link:
        links.append([7, 1, 0, 10, 0, "INT"])
    return wf(nodes, links, definitions={"subgraphs": [definition]})


def test_subgraph_nodes_get_outer_inner_ids_and_promoted_widget_values(nodedefs):
    graph, problems = convert(subgraph_workflow([320]), nodedefs)
    assert problems == []
    assert set(graph) == {"1", "10:5", "10:6", "2"}
    assert graph["10:5"]["inputs"]["width"] == 320
    assert graph["10:6"]["inputs"]["image"] == ["10:5", 0]
    assert graph["2"]["inputs"]["images"] == ["10:6", 0]


def test_subgraph_input_fed_from_outside(nodedefs):
    graph, _ = convert(subgraph_workflow([320], outer_width_link=7), nodedefs)
    assert graph["10:5"]["inputs"]["width"] == ["1", 0]


def test_unknown_class_is_a_problem_naming_file_and_node(nodedefs):
    graph, problems = convert(wf([node(4, "NoSuchNode", [1])], []), nodedefs)
    assert graph == {}
    assert [(p.file, p.node, p.severity) for p in problems] == [("t.json", "4", Severity.ERROR)]
    assert "NoSuchNode" in problems[0].message


def test_legacy_group_node_without_definition_is_reported(nodedefs):
    data = wf([node(3, "workflow>mine", [1])], [], extra={"groupNodes": {"other": {"nodes": []}}})
    _, problems = convert(data, nodedefs)
    assert len(problems) == 1 and "extra.groupNodes" in problems[0].message
    assert problems[0].node == "3"


def test_legacy_group_node_expands_into_its_inner_nodes(nodedefs):
    """tests/workflow/fixtures/group_node_ui.json: ImageInvert → ImageBlur → ImageScale grouped,
    ImageScale's width converted to an input fed by a PrimitiveNode outside the group; the
    frontend's own conversion of it is compared in test_frontend_agreement.py."""
    data = json.loads((FIXTURES / "group_node_ui.json").read_text("utf-8"))
    graph, problems = convert(data, nodedefs)
    assert problems == []
    assert sorted(graph) == ["1", "3:0", "3:1", "3:2", "4", "5"]
    assert graph["3:0"]["inputs"] == {"image": ["1", 0]}
    # The instance's widget values, in the group's order, reach the inner widgets.
    assert graph["3:1"]["inputs"] == {"blur_radius": 3, "sigma": 0.5, "image": ["3:0", 0]}
    assert graph["3:2"]["inputs"] == {"upscale_method": "bilinear", "width": 24, "height": 18,
                                      "crop": "center", "image": ["3:1", 0]}
    # Outputs: ImageInvert's (marked external) then ImageScale's; ImageBlur's is internal.
    assert graph["4"]["inputs"]["images"] == ["3:0", 0]
    assert graph["5"]["inputs"]["images"] == ["3:2", 0]
    assert graph["3:2"]["_meta"]["title"] == "Scale (inner)"


def test_group_node_with_a_primitive_inside_is_reported(nodedefs):
    data = json.loads((FIXTURES / "group_node_ui.json").read_text("utf-8"))
    data["extra"]["groupNodes"]["InvertBlurScale"]["nodes"][1]["type"] = "PrimitiveNode"
    _, problems = convert(data, nodedefs)
    assert [(p.node, p.severity) for p in problems] == [("3", Severity.ERROR)]
    assert "PrimitiveNode inside the group node" in problems[0].message


def test_dynamic_prompts_strip_comments_and_pick_choices():
    import random

    assert resolve_dynamic_prompt("a cat // comment\n/* x */b", random.Random(0)) == ("a cat \nb", 0)
    assert resolve_dynamic_prompt("{red|red} \\{x\\}", random.Random(0)) == ("red {x}", 1)


def test_dynamic_prompt_choices_are_fixed_and_reported(nodedefs):
    text = "a {cat|dog|fox} // comment"
    nodes = [node(6, "CLIPTextEncode", [text]), node(7, "CLIPTextEncode", ["no // choices"])]
    runs = [convert_ui_workflow(wf(nodes, []), nodedefs, file="t.json") for _ in range(3)]
    assert all(run == runs[0] for run in runs)  # no seed given: still the same choice every run
    graph, problems = runs[0]
    chosen = graph["6"]["inputs"]["text"]
    assert chosen in ("a cat ", "a dog ", "a fox ") and graph["7"]["inputs"]["text"] == "no "
    [warning] = problems
    assert (warning.file, warning.node, warning.input, warning.severity) == (
        "t.json", "6", "text", Severity.WARNING)
    assert f"resolved once, at generation time (to {chosen!r})" in warning.message
    assert "public field" in warning.message


def test_ui_and_api_exports_of_sd35_give_the_same_graph(nodedefs):
    """The UI version was saved by ComfyUI's frontend after loading the API export."""
    api_path = ROOT / "workflow_templates" / "sd3.5-medium" / "txt2img.json"
    ui_path = FIXTURES / "sd35_txt2img_ui.json"
    assert is_ui_format(json.loads(ui_path.read_text())) and not is_ui_format(
        json.loads(api_path.read_text()))
    from_api, p1 = load_workflow(api_path, nodedefs)
    from_ui, p2 = load_workflow(ui_path, nodedefs)
    assert p1 == [] and p2 == []
    assert from_ui == from_api


def test_load_rejects_malformed_api_graphs(nodedefs, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"1": {"inputs": {}}, "2": {"class_type": "SaveImage",
                                                             "inputs": {"images": ["9", 0]}}}))
    _, problems = load_workflow(path, nodedefs)
    messages = sorted((p.node, p.input) for p in problems)
    assert messages == [("1", None), ("2", "images")]
    path.write_text("{not json")
    _, problems = load_workflow(path, nodedefs)
    assert "not valid JSON" in problems[0].message


def test_malformed_group_node_definition_is_an_error_not_a_crash(nodedefs):
    data = json.loads((FIXTURES / "group_node_ui.json").read_text("utf-8"))
    data["extra"]["groupNodes"]["InvertBlurScale"]["links"].append(["x", 0, 1, 0, 1, "IMAGE"])
    _, problems = convert(data, nodedefs)
    assert [(p.node, p.severity) for p in problems] == [("3", Severity.ERROR)]
    assert "malformed definition of group node 'InvertBlurScale'" in problems[0].message

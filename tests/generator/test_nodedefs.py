"""The node-definitions vocabulary from `/object_info`: combo choices, seed rule, media kinds."""

from __future__ import annotations

from comfygen.nodedefs import MediaKind, NodeDefs, parse_input
from comfygen.runtime.choices import check_choices, live_choices
from comfygen.runtime.workflow import ChoiceSource

NODEDEFS = NodeDefs({
    "Pick": {
        "input": {
            "required": {
                "old_style": [["a", "b", 3]],
                "new_style": ["COMBO", {"options": ["x", "y"]}],
                "steps": ["INT", {"default": 20}],
                "model": ["MODEL"],
            },
            "optional": {"extra": [["p", "q"]]},
            "hidden": {"prompt": "PROMPT"},
        },
        "output": [],
    },
})


def test_choices_of_both_combo_forms_as_strings() -> None:
    assert NODEDEFS.choices("Pick", "old_style") == ("a", "b", "3")
    assert NODEDEFS.choices("Pick", "new_style") == ("x", "y")
    assert NODEDEFS.choices("Pick", "extra") == ("p", "q")


def test_no_choices_when_the_node_or_input_is_gone_or_not_a_combo() -> None:
    assert NODEDEFS.choices("Gone", "old_style") is None
    assert NODEDEFS.choices("Pick", "gone") is None
    assert NODEDEFS.choices("Pick", "steps") is None
    assert NODEDEFS.choices("Pick", "model") is None
    assert NODEDEFS.choices("Pick", "prompt") is None


def test_live_choices_and_check_choices_read_nodedefs() -> None:
    source = ChoiceSource("Pick", "new_style")
    assert live_choices(NODEDEFS, source) == ("x", "y")

    class Wf:
        choices = {"style": source, "gone": ChoiceSource("Gone", "x")}

    class Data:
        style = "z"
        gone = "anything"

    [error] = check_choices(Wf(), Data(), NODEDEFS)  # type: ignore[arg-type]
    assert (error.field, error.value, error.allowed) == ("style", "z", ("x", "y"))


def test_seed_rule() -> None:
    def seedlike(name: str, raw: list) -> bool:
        return parse_input(name, raw, "required").control_after_generate

    assert seedlike("seed", ["INT", {}]) and seedlike("noise_seed", ["INT", {}])
    assert not seedlike("seed", ["INT", {"control_after_generate": False}])
    assert seedlike("value", ["INT", {"control_after_generate": True}])
    assert seedlike("pick", [["a"], {"control_after_generate": True}])
    assert not seedlike("seed", [["a"], {}])
    assert not seedlike("seed", ["FLOAT", {"control_after_generate": True}])


def test_media_kinds_from_upload_options() -> None:
    def idef(options: dict):
        return parse_input("file", [["a.png"], options], "required")

    assert idef({"image_upload": True}).media_kind is MediaKind.IMAGE
    assert idef({"video_upload": True}).media_kind is MediaKind.VIDEO
    assert idef({"audio_upload": True}).media_kind is MediaKind.AUDIO
    animated = idef({"animated_image_upload": True})
    assert animated.uploads and animated.media_kind is None
    assert not idef({}).uploads and idef({}).media_kind is None
    assert MediaKind("mask").content_type == "image/*"
    assert [k.content_type for k in MediaKind] == ["image/*", "image/*", "video/*", "audio/*"]

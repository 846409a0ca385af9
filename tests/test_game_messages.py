"""The game's debugger messages, read from bodies captured off a real Godot 4.6.3
(tests/fixtures/game_messages/, written by tools/capture_game_messages.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.godot.game import messages
from sidecar.godot.game.messages import MalformedMessage

FIXTURES = Path(__file__).parent / "fixtures" / "game_messages"


def fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return body


def data(name: str) -> Any:
    return fixture(name)["data"]


def test_fixtures_are_the_messages_they_are_named_after() -> None:
    assert fixture("scene_tree")["message"] == messages.SCENE_TREE
    assert fixture("inspect_objects_one")["message"] == messages.INSPECT_OBJECTS
    assert fixture("inspect_object_legacy")["message"] == messages.INSPECT_OBJECT
    assert fixture("error_push_error")["message"] == messages.ERROR
    assert fixture("performance_profile_frame")["message"] == messages.PROFILE_FRAME


# --- scene tree --------------------------------------------------------------------------


def test_scene_tree_nests_the_capture_scene_under_the_root_window() -> None:
    root = messages.parse_scene_tree(data("scene_tree"))
    assert (root.name, root.type_name, root.path) == ("root", "Window", "/root")
    assert [n.path for n in root.walk()] == [
        "/root",
        "/root/Capture",
        "/root/Capture/Mover",
        "/root/Capture/Mover/Label",
        "/root/Capture/Box",
    ]
    capture = root.children[0]
    assert capture.scene_file == "res://demo/capture.tscn"
    assert capture.script == "res://demo/capture.gd" and capture.class_name is None
    label = root.find("/root/Capture/Mover/Label")
    assert label is not None and label.class_name == "Label" and label.script is None
    assert label.scene_file is None


def test_scene_tree_object_ids_are_the_ones_inspect_answers_with() -> None:
    root = messages.parse_scene_tree(data("scene_tree"))
    inspected = messages.parse_inspect_objects(data("inspect_objects_one"))[0]
    capture = root.find("/root/Capture")
    assert capture is not None and capture.object_id == inspected.object_id
    assert inspected.node_path == capture.path  # our path = Godot's own Node/path


def test_scene_tree_view_flags_say_visibility() -> None:
    root = messages.parse_scene_tree(data("scene_tree"))
    assert root.visible is None  # the root window: Godot sends no flags for it
    box = root.find("/root/Capture/Box")  # visible = false in the scene
    mover = root.find("/root/Capture/Mover")
    assert box is not None and (box.visible, box.visible_in_tree) == (False, False)
    assert mover is not None and (mover.visible, mover.visible_in_tree) == (True, True)


def test_scene_tree_before_4_5_has_five_fields_a_node() -> None:
    flat = data("scene_tree")
    old = [item for i, item in enumerate(flat) if i % 6 != 5]  # drop view_flags
    root = messages.parse_scene_tree(old)
    assert [n.path for n in root.walk()][-1] == "/root/Capture/Box"
    assert root.find("/root/Capture/Box").visible is None  # type: ignore[union-attr]
    with pytest.raises(MalformedMessage):
        messages.parse_scene_tree(old, view_flags=True)


def test_a_deep_tree_does_not_recurse() -> None:
    depth = 5000
    flat: list[Any] = []
    for i in range(depth):
        flat += [0 if i == depth - 1 else 1, f"n{i}", "Node", i + 1, "", 0]
    leaf = messages.parse_scene_tree(flat).walk()
    assert len(leaf) == depth


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.__setitem__(1, 7), "data[1]"),  # name not a string
        (lambda d: d.__setitem__(0, 3), "data["),  # more children than sent
        (lambda d: d.append(0), "data[30]"),  # trailing items
        (lambda d: d.__setitem__(9, "26524779959"), "data[9]"),  # id as text
    ],
)
def test_malformed_scene_tree_names_the_place(mutate: Any, where: str) -> None:
    flat = copy.deepcopy(data("scene_tree"))
    mutate(flat)
    with pytest.raises(MalformedMessage) as err:
        messages.parse_scene_tree(flat, view_flags=True)
    assert where in err.value.message and "scene:scene_tree" in err.value.message
    assert err.value.status == 502


def test_an_empty_or_non_array_tree_is_malformed() -> None:
    for bad in ([], {"a": 1}, None):
        with pytest.raises(MalformedMessage):
            messages.parse_scene_tree(bad)


# --- inspected objects -------------------------------------------------------------------


def capture_object() -> messages.InspectedObject:
    return messages.parse_inspect_objects(data("inspect_objects_one"))[0]


def value(obj: messages.InspectedObject, name: str) -> Any:
    prop = obj.get(name)
    assert prop is not None, name
    return prop.value


def test_inspected_object_has_engine_class_script_and_sections() -> None:
    obj = capture_object()
    assert obj.class_name == "Node2D"
    assert obj.script == "res://demo/capture.gd"
    assert obj.categories[:2] == ("capture.gd", "Node2D")
    assert obj.get("speed").category == "capture.gd"  # type: ignore[union-attr]
    assert obj.get("position").category == "Node2D"  # type: ignore[union-attr]
    assert all(not p.usage & messages.USAGE_CATEGORY for p in obj.properties)


def test_inspected_values_arrive_as_text_and_decode_to_structures() -> None:
    obj = capture_object()
    assert obj.get("target").raw == "(3.0, 4.0)"  # type: ignore[union-attr]
    assert value(obj, "target") == {"x": 3.0, "y": 4.0}
    assert value(obj, "grid") == {"x": 7, "y": 8}
    assert value(obj, "spot") == {"x": 1.0, "y": 2.0, "z": 3.0}
    assert value(obj, "tint") == {"r": 0.25, "g": 0.5, "b": 0.75, "a": 1.0}
    assert value(obj, "area") == {"position": {"x": 1.0, "y": 2.0}, "size": {"x": 3.0, "y": 4.0}}
    assert value(obj, "Members/basis_3d")["origin"] == {"x": 0.0, "y": 0.0, "z": 0.0}
    assert value(obj, "speed") == 2.5
    assert value(obj, "names") == ["a", "b"]
    assert value(obj, "numbers") == [1, 2, 3]
    # Dictionary values carry no types: they stay as Godot wrote them.
    assert value(obj, "table") == {"k": 1, "v": "(5.0, 6.0)"}
    assert value(obj, "Node/path") == "/root/Capture"


def test_object_properties_lose_their_id_on_the_way() -> None:
    obj = capture_object()
    link = obj.get("link")
    assert link is not None and link.type_name == "Object"
    assert messages.ENCODED_OBJECT.match(link.raw)
    mover = messages.parse_scene_tree(data("scene_tree")).find("/root/Capture/Mover")
    assert mover is not None and str(mover.object_id) not in link.raw
    assert link.value == {"object": True}


def test_a_resource_with_a_file_arrives_as_its_path() -> None:
    assert messages.decode_value(24, "res://icon.svg") == {"resource": "res://icon.svg"}
    assert messages.decode_value(24, None) is None


def test_inspect_objects_answers_every_id_asked() -> None:
    two = messages.parse_inspect_objects(data("inspect_objects_two"))
    assert [o.node_path for o in two] == ["/root/Capture/Mover", "/root/Capture/Box"]
    assert two[1].class_name == "ColorRect"
    assert value(two[1], "color") == {"r": 1.0, "g": 0.0, "b": 0.0, "a": 1.0}
    assert value(two[1], "visible") is False
    position = value(two[0], "position")
    assert position["y"] == 20.0 and position["x"] > 10.0  # it moved since the scene loaded


def test_the_pre_4_5_inspect_object_answer_is_one_object() -> None:
    label = messages.parse_inspect_object(data("inspect_object_legacy"))
    assert label is not None and label.class_name == "Label"
    assert label.node_path == "/root/Capture/Mover/Label"
    assert value(label, "text") == "hello"
    assert messages.parse_inspect_object([]) is None  # Godot's answer for an unknown id


def test_groups_cover_the_properties_with_their_prefix() -> None:
    rows = [
        ["Node2D", 0, 0, "Node2D", 128, None],
        ["Transform", 0, 0, "", 64, None],
        ["position", 5, 0, "", 6, "(1.0, 2.0)"],
        ["Ordering", 0, 0, "z_", 64, None],
        ["z_index", 2, 0, "", 6, 0],
        ["texture_filter", 2, 0, "", 6, 0],
    ]
    obj = messages.parse_inspect_objects([[1, "Node2D", rows]])[0]
    assert [(p.name, p.group) for p in obj.properties] == [
        ("position", "Transform"),
        ("z_index", "Ordering"),
        ("texture_filter", None),
    ]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ([[1, "Node"]], "data[0]"),
        ([[1, "Node", [["x", 2, 0, "", 6]]]], "data[0][2][0]"),
        ([[1, "Node", [["x", "int", 0, "", 6, 1]]]], "data[0][2][0][1]"),
        ([["1", "Node", []]], "data[0][0]"),
        ({"id": 1}, "data"),
    ],
)
def test_malformed_inspect_objects_names_the_place(raw: Any, where: str) -> None:
    with pytest.raises(MalformedMessage) as err:
        messages.parse_inspect_objects(raw)
    assert f"at {where}:" in err.value.message


def test_values_of_other_math_types_decode() -> None:
    t2 = "[X: (1.0, 0.0), Y: (0.0, 1.0), O: (5.0, -6.5)]"
    assert messages.decode_value(11, t2)["origin"] == {"x": 5.0, "y": -6.5}
    assert messages.decode_value(15, "(0.0, 0.0, 0.0, 1.0)")["w"] == 1.0
    assert messages.decode_value(35, ["(1.0, 2.0)"]) == [{"x": 1.0, "y": 2.0}]
    assert messages.decode_value(5, "(inf, -inf)")["x"] == float("inf")
    # A shape this reader does not know stays as sent.
    assert messages.decode_value(5, "(1.0, 2.0, 3.0)") == "(1.0, 2.0, 3.0)"
    assert messages.decode_value(23, "RID(0)") == "RID(0)"


# --- errors ------------------------------------------------------------------------------


def test_push_error_carries_the_script_line_in_its_stack() -> None:
    err = messages.parse_error(data("error_push_error"))
    assert (err.message, err.is_warning) == ("capture: a pushed error", False)
    assert err.source_file == "core/variant/variant_utility.cpp"  # where Godot raised it
    assert err.stack == (messages.StackFrame("res://demo/capture.gd", "_process", 28),)
    assert err.script_location == err.stack[0]
    assert 0 < err.uptime_ms < 60_000


def test_push_warning_is_a_warning() -> None:
    warning = messages.parse_error(data("error_push_warning"))
    assert warning.is_warning and warning.script_location is not None
    assert warning.script_location.line == 29


def test_engine_error_has_message_and_description() -> None:
    err = messages.parse_error(data("error_engine"))
    assert err.function == "get_node" and "Missing" in err.description
    assert err.script_location == messages.StackFrame("res://demo/capture.gd", "_process", 30)


def test_a_script_error_names_the_script_itself() -> None:
    err = messages.parse_error(data("error_script"))
    assert (err.source_file, err.function, err.line) == ("res://demo/capture.gd", "_process", 33)
    assert "get_name" in err.message and not err.is_warning
    assert err.script_location == messages.StackFrame("res://demo/capture.gd", "_process", 33)


def test_an_error_outside_scripts_has_no_stack() -> None:
    err = messages.parse_error(data("error_no_stack"))
    assert err.stack == () and err.script_location is None


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.__setitem__(10, 6), "data[10]"),  # says two frames, sends one
        (lambda d: d.__setitem__(9, 0), "data[9]"),  # is_warning not a bool
        (lambda d: d.__setitem__(13, "28"), "data[13]"),  # line as text
        (lambda d: d.__delitem__(slice(5, None)), "data"),  # cut short
    ],
)
def test_malformed_error_names_the_place(mutate: Any, where: str) -> None:
    raw = copy.deepcopy(data("error_push_error"))
    mutate(raw)
    with pytest.raises(MalformedMessage) as err:
        messages.parse_error(raw)
    assert f"at {where}:" in err.value.message


# --- performance -------------------------------------------------------------------------


def test_profile_frame_has_one_value_per_4_6_monitor() -> None:
    frame = messages.parse_profile_frame(data("performance_profile_frame"))
    assert len(frame.values) == len(messages.MONITORS_4_6) == 59
    named = frame.named()
    assert named["time_fps"] is not None and named["time_fps"] > 0
    assert named["object_node_count"] == 5.0  # root, Capture, Mover, Label, Box


def test_custom_monitors_follow_the_builtin_ones() -> None:
    frame = messages.parse_profile_frame([*data("performance_profile_frame"), 3, None])
    named = frame.named(custom=messages.parse_profile_names([["game/enemies"], [0]]))
    assert named["game/enemies"] == 3.0
    assert named["monitor_60"] is None  # a custom monitor that was not a number


def test_malformed_profile_frame() -> None:
    with pytest.raises(MalformedMessage, match=r"at data\[1\]"):
        messages.parse_profile_frame([1.0, "fast"])
    with pytest.raises(MalformedMessage):
        messages.parse_profile_names([["ok"], 3])


# --- screenshots -------------------------------------------------------------------------


def test_screenshot_answer_names_the_png_the_game_wrote() -> None:
    shot = messages.parse_screenshot(data("game_view_get_screenshot"))
    assert shot.request_id == 7  # sent as 7, back as 7.0
    assert (shot.width, shot.height) == (1152, 648)  # the demo's default window
    assert shot.png_path.endswith(".png") and "/scr-" in shot.png_path


@pytest.mark.parametrize(
    "raw", [[7, 1152, 648], [7.5, 1, 1, "/tmp/x.png"], [7, "1152", 648, "/tmp/x.png"]]
)
def test_malformed_screenshot(raw: Any) -> None:
    with pytest.raises(MalformedMessage):
        messages.parse_screenshot(raw)

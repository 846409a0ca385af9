"""/game/input, /game/evaluate and /game/set_property (issue 14) against a real headless
editor, its sidecar and the launched demo game: `Main/Controlled` (demo/controlled.gd) moves
with ui_left/ui_right and records what `_input`, `_unhandled_input` and the `Input` singleton
saw, so the tests read back what the game saw of the injected input.

The bridge puts its game-side hands into the game with Godot's live-edit messages
(sidecar/godot/game/hands.py); nothing of it is in the project.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import psutil
import pytest
from harness import (
    Editor,
    call_json,
    end_game,
    latest_event,
    make_demo_project,
    needs_xvfb,
    ok_json,
    wait_connected,
    wait_event,
    wait_for_main,
)
from PIL import Image

from sidecar.api.game_hands import GAME_INPUT, GAME_SET_PROPERTY, MAX_STEPS, InputArguments
from sidecar.errors import PeerTimeout, RequestError
from sidecar.godot.game.hands import HANDS_SCENE, READY, REPLY, GameHands, scene_files
from sidecar.godot.game.messages import parse_scene_tree

CONTROLLED = "/root/Main/Controlled"
MARKER = (100, 120, 200, 80)  # x, y, width, height of demo/main.tscn's Marker (a ColorRect)


@pytest.fixture
def game(editor: Editor) -> Iterator[Editor]:
    """The demo game, launched through the bridge, ended afterwards."""
    wait_connected(editor)
    ok_json(editor, "POST", "/debug/launch", {})
    try:
        wait_for_main(editor)
        yield editor
    finally:
        end_game(editor)


def evaluate(editor: Editor, expression: str, path: str = CONTROLLED) -> Any:
    answer = ok_json(editor, "POST", "/game/evaluate", {"expression": expression, "path": path})
    return answer["value"]


def seen(editor: Editor) -> dict[str, Any]:
    """What Controlled recorded, read with /game/node (its exported variables)."""
    answer = ok_json(editor, "POST", "/game/node", {"path": CONTROLLED})
    values: dict[str, Any] = {}
    for section in answer["sections"]:
        for name, value in section["properties"].items():
            values[name] = value["value"]
    return values


def inject(editor: Editor, *steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return dict(ok_json(editor, "POST", "/game/input", {"steps": list(steps), **extra}))


def reset(editor: Editor) -> None:
    assert evaluate(editor, "reset()") is True


# -- with the game -------------------------------------------------------------------


def test_issue_14_no_game_is_409(editor: Editor) -> None:
    wait_connected(editor)
    for path, body in (
        ("/game/input", {"steps": [{"type": "action", "action": "ui_right"}]}),
        ("/game/evaluate", {"expression": "1 + 1"}),
        ("/game/set_property", {"path": "Main", "property": "name", "value": "x"}),
    ):
        status, answer = call_json(editor, "POST", path, body)
        assert (status, answer["error"]["code"]) == (409, "not_running"), (path, answer)


def test_issue_14_bad_fields_are_400_naming_the_field(editor: Editor) -> None:
    # Checked before anything reaches a game: the same with or without one.
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"steps": []}, "steps", "invalid_field"),
        ({"steps": [{"type": "jump"}]}, "steps[0].type", "invalid_field"),
        ({"steps": [{"type": "action"}]}, "steps[0].action", "missing_field"),
        ({"steps": [{"type": "key", "key": "A", "frames": 0}]}, "steps[0].frames", "invalid_field"),
        (
            {"steps": [{"type": "action", "action": "a", "strength": 2}]},
            "steps[0].strength",
            "invalid_field",
        ),
        ({"steps": [{"type": "text", "text": "x" * 501}]}, "steps[0].text", "invalid_field"),
        ({"steps": [{"type": "wait"}]}, "steps[0].frames", "missing_field"),
        ({"steps": [{"type": "mouse_motion"}]}, "steps[0].position", "missing_field"),
        ({"steps": [{"type": "wait", "frames": 601}]}, "steps[0].frames", "invalid_field"),
        ({"steps": [{"type": "wait", "ms": 10_001}]}, "steps[0].ms", "invalid_field"),
        ({"steps": [{"type": "wheel", "amount": 0}]}, "steps[0].amount", "invalid_field"),
        ({"steps": [{"type": "wait", "frames": 1}] * (MAX_STEPS + 1)}, "steps", "invalid_field"),
        ({"steps": [{"type": "wait", "frames": 1}], "max_width": 3}, "max_width", "invalid_field"),
    ]
    for body, field, code in cases:
        status, answer = call_json(editor, "POST", "/game/input", body)
        assert (status, answer["error"]["code"]) == (400, code), (body, answer)
        assert answer["error"]["field"] == field, (body, answer)
    for body, field in (
        ({}, "expression"),
        ({"expression": ""}, "expression"),
        ({"expression": "1", "id": "x1"}, "id"),
    ):
        status, answer = call_json(editor, "POST", "/game/evaluate", body)
        assert status == 400 and answer["error"]["field"] == field, (body, answer)
    for body, field in (
        ({"property": "x", "value": 1}, "path"),
        ({"path": "Main", "value": 1}, "property"),
        ({"path": "Main", "property": "x"}, "value"),
    ):
        status, answer = call_json(editor, "POST", "/game/set_property", body)
        assert status == 400 and answer["error"]["field"] == field, (body, answer)


def test_issue_14_held_action_is_seen_as_real_input(game: Editor) -> None:
    reset(game)
    x_before = seen(game)["position"]["x"]
    done = inject(game, {"type": "action", "action": "ui_right", "frames": 12, "strength": 0.5})
    assert done["steps"] == 1 and done["frames"] >= 13, done
    after = seen(game)
    # Exactly N frames: N _process calls saw Input.is_action_pressed("ui_right").
    assert after["right_frames"] == 12, after
    assert after["right_strength"] == pytest.approx(0.5), after
    assert after["seen_input"] == ["action ui_right pressed", "action ui_right released"]
    assert after["seen_unhandled"] == ["action ui_right pressed", "action ui_right released"]
    assert after["position"]["x"] > x_before  # it moved while the action was held
    # A press alone stays pressed until its release.
    inject(game, {"type": "action", "action": "ui_right", "pressed": True})
    time.sleep(0.3)
    assert seen(game)["right_frames"] > 13
    inject(game, {"type": "action", "action": "ui_right", "pressed": False})
    frames = seen(game)["right_frames"]
    time.sleep(0.3)
    assert seen(game)["right_frames"] == frames


def test_issue_14_keys_text_and_mouse_are_seen_as_real_input(game: Editor) -> None:
    reset(game)
    inject(
        game,
        {"type": "key", "key": "A", "frames": 3},
        {"type": "key", "key": "W", "physical": True},
        {"type": "text", "text": "Hi!"},
        {"type": "mouse_motion", "position": {"x": 500, "y": 400}},
        {"type": "mouse_button", "button": "right"},
        {"type": "wheel", "direction": "down"},
    )
    got = seen(game)
    assert got["a_frames"] == 3, got  # Input.is_key_pressed(KEY_A) for the 3 frames held
    keys = [e for e in got["seen_input"] if e.startswith("key")]
    assert keys[:4] == [
        "key A pressed",
        "key A released",
        "key physical W pressed",
        "key physical W released",
    ]
    assert got["typed"] == "aHi!", got  # A's press carries its unicode, as a keyboard's does
    assert got["mouse_at"] == {"x": 500.0, "y": 400.0}
    assert got["clicks"] == 2 and got["wheel"] == 1, got
    assert "button 2 pressed" in got["seen_unhandled"] and "motion" in got["seen_unhandled"]
    # A click on the Marker (a ColorRect: GUI) is taken by the GUI, as a real one is:
    # _input sees it, _unhandled_input does not.
    reset(game)
    inject(game, {"type": "mouse_button", "position": {"x": 150, "y": 150}})
    got = seen(game)
    assert got["seen_input"] == ["button 1 pressed", "button 1 released"], got
    assert got["seen_unhandled"] == [], got


def test_issue_14_unknown_action_or_key_is_400_from_the_game(game: Editor) -> None:
    for step, field in (
        ({"type": "action", "action": "no_such_action"}, "steps[1].action"),
        ({"type": "key", "key": "NoSuchKey"}, "steps[1].key"),
    ):
        body = {"steps": [{"type": "wait", "frames": 1}, step]}
        status, answer = call_json(game, "POST", "/game/input", body)
        assert (status, answer["error"]["code"]) == (400, "invalid_field"), answer
        assert answer["error"]["field"] == field, answer


def test_issue_14_evaluate_without_a_breakpoint(game: Editor) -> None:
    answer = ok_json(game, "POST", "/game/evaluate", {"expression": "add_numbers(2, 3) * 2"})
    assert answer == {"type": "int", "value": 10, "self": "/root/Main"}  # the current scene
    position = ok_json(
        game, "POST", "/game/evaluate", {"expression": "position", "path": "Main/Controlled"}
    )
    assert position["type"] == "Vector2" and position["value"] == {"x": 400.0, "y": 300.0}
    assert evaluate(game, "self.speed * 2") == 240.0
    assert evaluate(game, "get_parent().name", "Main/Mover") == "Main"
    mover = ok_json(game, "POST", "/game/evaluate", {"expression": "get_node('Mover')"})
    assert mover["value"]["path"] == "/root/Main/Mover" and mover["value"]["class"] == "Node2D"
    # The game ran on: no breakpoint, no stop.
    counter = evaluate(game, "counter", "Main")
    time.sleep(0.3)
    assert evaluate(game, "counter", "Main") > counter
    for expression in ("nope(", "no_such_method()"):
        status, answer = call_json(game, "POST", "/game/evaluate", {"expression": expression})
        assert (status, answer["error"]["code"]) == (422, "evaluate_failed"), answer
        assert answer["error"]["message"], answer
    status, answer = call_json(
        game, "POST", "/game/evaluate", {"expression": "1", "path": "Main/Nope"}
    )
    assert (status, answer["error"]["code"]) == (404, "not_found"), answer


def test_issue_14_evaluate_while_stopped(game: Editor) -> None:
    since = latest_event(game)
    ok_json(game, "POST", "/debug/pause", {})
    wait_event(game, since, {"stopped"})
    try:
        assert evaluate(game, "counter + 1", "Main") >= 1
        # Input needs a running game: refused, not left waiting.
        status, answer = call_json(
            game, "POST", "/game/input", {"steps": [{"type": "action", "action": "ui_right"}]}
        )
        assert (status, answer["error"]["code"]) == (409, "conflict"), answer
    finally:
        ok_json(game, "POST", "/debug/continue", {})


def test_issue_14_set_property_is_live_and_never_saved(game: Editor) -> None:
    scene = game.project / "demo" / "main.tscn"
    before = scene.read_bytes()
    answer = ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": "Main/Controlled", "property": "position", "value": {"x": 50, "y": 60.5}},
    )
    assert answer["old"]["type"] == "Vector2" and answer["old"]["value"]["y"] == 300.0
    assert answer["new"] == {"type": "Vector2", "value": {"x": 50.0, "y": 60.5}}
    assert seen(game)["position"] == {"x": 50.0, "y": 60.5}  # the next read shows it
    # Typed values of other kinds, made into the property's type in the game.
    speed = ok_json(
        game, "POST", "/game/set_property", {"path": CONTROLLED, "property": "speed", "value": 7}
    )
    assert speed["old"] == {"type": "float", "value": 120.0}
    assert speed["new"] == {"type": "float", "value": 7.0}
    frames = ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": CONTROLLED, "property": "right_frames", "value": 4.0},
    )
    assert frames["new"] == {"type": "int", "value": 4}
    part = ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": CONTROLLED, "property": "position:x", "value": 9},
    )
    assert part["new"] == {"type": "float", "value": 9.0}
    red = ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": "Main/Marker", "property": "color", "value": "red"},
    )
    assert red["old"]["value"] == {"r": 1.0, "g": 0.0, "b": 1.0, "a": 1.0}
    assert red["new"] == {"type": "Color", "value": {"r": 1.0, "g": 0.0, "b": 0.0, "a": 1.0}}
    back = {"type": "Vector2", "value": {"x": 400, "y": 300}}  # as /game/node answers it
    ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": CONTROLLED, "property": "position", "value": back},
    )
    assert seen(game)["position"] == {"x": 400.0, "y": 300.0}
    for body, status, code, field in (
        ({"path": CONTROLLED, "property": "nope", "value": 1}, 404, "not_found", "property"),
        ({"path": "Main/Nope", "property": "speed", "value": 1}, 404, "not_found", "path"),
        (
            {"path": CONTROLLED, "property": "position", "value": "left"},
            400,
            "invalid_field",
            "value",
        ),
        (
            {"path": CONTROLLED, "property": "right_frames", "value": 1.5},
            400,
            "invalid_field",
            "value",
        ),
        (
            {"path": "Main/Marker", "property": "color", "value": "no colour"},
            400,
            "invalid_field",
            "value",
        ),
    ):
        got, error = call_json(game, "POST", "/game/set_property", body)
        assert (got, error["error"]["code"], error["error"].get("field")) == (
            status,
            code,
            field,
        ), error
    time.sleep(0.5)
    assert scene.read_bytes() == before  # only the running game changed, never the file


def test_issue_14_hands_come_back_in_a_new_game(game: Editor) -> None:
    assert evaluate(game, "1 + 1") == 2
    end_game(game)
    status, answer = call_json(game, "POST", "/game/evaluate", {"expression": "1"})
    assert (status, answer["error"]["code"]) == (409, "not_running"), answer
    ok_json(game, "POST", "/debug/launch", {})
    wait_for_main(game)
    assert evaluate(game, "2 + 2") == 4  # put into the new game by itself
    tree = ok_json(game, "GET", "/game/tree?depth=1")
    hands = [c for c in tree["root"]["children"] if c["scene_file"] == HANDS_SCENE]
    assert len(hands) == 1, tree  # once, under /root


def png(answer: dict[str, Any]) -> Image.Image:
    data = base64.b64decode(answer["data"])
    return Image.open(io.BytesIO(data)).convert("RGB")


def near(pixel: Any, colour: tuple[int, int, int], slack: int = 8) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


@needs_xvfb
def test_issue_14_sequence_with_a_screenshot_and_a_live_colour(game: Editor) -> None:
    centre = (MARKER[0] + MARKER[2] // 2, MARKER[1] + MARKER[3] // 2)
    ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": "Main/Marker", "property": "color", "value": "#0000ff"},
    )
    reset(game)
    done = inject(
        game,
        {"type": "action", "action": "ui_right", "frames": 5},
        {"type": "wait", "frames": 5, "ms": 50},
        {"type": "key", "key": "Enter"},
        screenshot=True,
    )
    assert done["steps"] == 3 and done["frames"] >= 5 + 5 + 1 + 1, done
    shot = done["screenshot"]
    assert shot["format"] == "png" and shot["width"] == shot["game_width"] > 0
    image = png(shot)
    assert near(image.getpixel(centre), (0, 0, 255)), image.getpixel(centre)  # blue now
    assert seen(game)["right_frames"] == 5
    ok_json(
        game,
        "POST",
        "/game/set_property",
        {"path": "Main/Marker", "property": "color", "value": {"r": 1, "g": 0, "b": 1}},
    )
    shot = ok_json(game, "GET", "/game/screenshot")
    assert near(png(shot).getpixel(centre), (255, 0, 255))


def test_issue_14_input_reaches_a_headless_game(tmp_path: Path, godot_bin: str) -> None:
    """Without any display (GODOT_BRIDGE_GAME_DISPLAY=off: the game runs --headless) the
    injected input is seen all the same: Godot's headless display server flushes and
    dispatches it as any other."""
    ed = Editor(make_demo_project(tmp_path / "project"), env={"GODOT_BRIDGE_GAME_DISPLAY": "off"})
    try:
        ed.start()
        wait_connected(ed)
        ok_json(ed, "POST", "/debug/launch", {})
        wait_for_main(ed)
        assert ok_json(ed, "GET", "/status")["game_display"]["mode"] == "headless"
        inject(
            ed,
            {"type": "action", "action": "ui_right", "frames": 5},
            {"type": "text", "text": "ok"},
        )
        got = seen(ed)
        assert got["right_frames"] == 5 and got["typed"] == "ok", got
        assert "action ui_right pressed" in got["seen_unhandled"]
        # A screenshot it cannot take is refused before the input is done.
        body = {"steps": [{"type": "action", "action": "ui_right"}], "screenshot": True}
        status, answer = call_json(ed, "POST", "/game/input", body)
        assert (status, answer["error"]["code"]) == (409, "no_display"), answer
        assert seen(ed)["right_frames"] == 5
    finally:
        ed.stop()


def test_issue_14_hands_outlive_a_sidecar_restart(tmp_path: Path, godot_bin: str) -> None:
    """A new sidecar knows nothing of the hands already in the running game: it puts them
    in again, the second copy finds the first, has it say `ready` and leaves; one pair of
    hands, the game's state untouched."""
    ed = Editor(make_demo_project(tmp_path / "project"), env={"GODOT_BRIDGE_GAME_DISPLAY": "off"})
    try:
        ed.start()
        wait_connected(ed)
        ok_json(ed, "POST", "/debug/launch", {})
        wait_for_main(ed)
        ok_json(
            ed, "POST", "/game/set_property", {"path": CONTROLLED, "property": "speed", "value": 9}
        )
        (old,) = ed.sidecar_pids()
        os.kill(old, signal.SIGTERM)
        psutil.wait_procs([psutil.Process(old)], timeout=20)
        deadline = time.monotonic() + 60
        while not (set(ed.sidecar_pids()) - {old}):
            assert time.monotonic() < deadline, "no new sidecar"
            time.sleep(0.2)
        ed.wait_until_serving()
        wait_connected(ed)
        deadline = time.monotonic() + 30
        while True:  # the new sidecar learns the game runs from its output (a tick a second)
            status, answer = call_json(
                ed, "POST", "/game/evaluate", {"expression": "speed", "path": CONTROLLED}
            )
            if status == 200:
                break
            assert status == 409 and time.monotonic() < deadline, answer
            time.sleep(0.3)
        assert answer["result"]["value"] == 9.0
        tree = ok_json(ed, "GET", "/game/tree?depth=1")
        hands = [c for c in tree["root"]["children"] if c["scene_file"] == HANDS_SCENE]
        assert [h["path"] for h in hands] == ["/root/GodotBridgeHands"], tree
        inject(ed, {"type": "action", "action": "ui_right", "frames": 3})
        assert seen(ed)["right_frames"] == 3
    finally:
        ed.stop()


# -- units ---------------------------------------------------------------------------


def test_issue_14_the_document_says_what_each_step_needs() -> None:
    """The OpenAPI schema and the validator agree on every step type: what the schema
    accepts is accepted (schemathesis sends schema-valid steps and expects no 400)."""
    schema = GAME_INPUT.arguments.model_json_schema()
    samples: list[tuple[dict[str, Any], bool]] = [
        ({"type": "action", "action": "a"}, True),
        ({"type": "action"}, False),
        ({"type": "action", "action": None}, False),
        ({"type": "key", "key": "A", "ms": 5}, True),  # a field its type does not use
        ({"type": "key"}, False),
        ({"type": "text", "text": "hi"}, True),
        ({"type": "text"}, False),
        ({"type": "mouse_button"}, True),
        ({"type": "wheel", "direction": "up"}, True),
        ({"type": "mouse_motion", "relative": {"x": 1, "y": 2}}, True),
        ({"type": "mouse_motion"}, False),
        ({"type": "wait", "ms": 3}, True),
        ({"type": "wait"}, False),
    ]
    for step, valid in samples:
        body = {"steps": [step]}
        in_schema = jsonschema.Draft202012Validator(schema).is_valid(body)
        try:
            GAME_INPUT.parse(body)
            accepted = True
        except RequestError:
            accepted = False
        assert in_schema == accepted == valid, step
    one = GAME_SET_PROPERTY.arguments.model_json_schema()
    for body, valid in (
        ({"id": "1", "property": "p", "value": 1}, True),
        ({"property": "p", "value": 1}, False),
    ):
        assert jsonschema.Draft202012Validator(one).is_valid(body) == valid
    steps = {"steps": [{"type": "action", "action": "a"}, {"type": "wait", "frames": 3, "ms": 20}]}
    assert InputArguments.model_validate(steps).waits() == (1 + 3, 20)


def test_issue_14_scene_files_prefer_the_roots_children() -> None:
    data = [2, "root", "Window", 1, "", 0]
    data += [1, "Auto", "Node", 2, "res://auto.tscn", 0, 0, "Deep", "Node", 3, "res://deep.tscn", 0]
    data += [0, "Main", "Node", 4, "res://main.tscn", 0]
    tree = parse_scene_tree(data)
    assert scene_files(tree) == ["res://auto.tscn", "res://main.tscn", "res://deep.tscn"]
    assert scene_files(parse_scene_tree([0, "root", "Window", 1, "", 0])) == []


class FakeSession:
    """Sends nothing anywhere; remembers what the hands asked to send."""

    def __init__(self) -> None:
        self.running = True
        self.stopped = None
        self.sent: list[tuple[str, list[Any]]] = []

    async def put_msg(
        self, agent: str, message: str, data: list[Any], answer: str, **_: Any
    ) -> Any:
        self.sent.append((message, data))
        return None


class FakeChannel:
    async def tree(self, agent: str) -> Any:
        return parse_scene_tree(
            [1, "root", "Window", 1, "", 0, 0, "Main", "Node", 2, "res://m.tscn", 0]
        )


def test_issue_14_hands_are_injected_once_and_answers_matched_by_request() -> None:
    async def run() -> None:
        session = FakeSession()
        hands = GameHands(session, FakeChannel())  # type: ignore[arg-type]
        asking = asyncio.ensure_future(hands.call("a", "evaluate", {"expression": "1"}, 0.0))
        await asyncio.sleep(0.05)
        assert [m for m, _ in session.sent] == [
            "scene:live_set_root",
            "scene:live_instantiate_node",
        ]
        assert session.sent[0][1] == ["/root", "res://m.tscn"]
        hands.feed(READY, [json.dumps({"version": 1, "path": "/root/GodotBridgeHands"})])
        await asyncio.sleep(0.05)
        message, data = session.sent[-1]
        request = json.loads(data[0])
        assert message == "gdbridge:evaluate" and request["expression"] == "1"
        hands.feed(REPLY, [json.dumps({"request": "other", "ok": True, "result": 0})])
        hands.feed(REPLY, [json.dumps({"request": request["request"], "ok": True, "result": 5})])
        assert await asyncio.wait_for(asking, 2) == 5
        # Known ready: no second injection. A failure answer keeps its kind and field.
        failing = asyncio.ensure_future(hands.call("a", "evaluate", {"expression": "("}, 0.0))
        await asyncio.sleep(0.05)
        assert [m for m, _ in session.sent].count("scene:live_instantiate_node") == 1
        request = json.loads(session.sent[-1][1][0])
        error = {
            "request": request["request"],
            "ok": False,
            "kind": "evaluate_failed",
            "field": "expression",
            "error": "Expected expression.",
        }
        hands.feed(REPLY, [json.dumps(error)])
        with pytest.raises(RequestError) as err:
            await asyncio.wait_for(failing, 2)
        assert (err.value.status, err.value.code, err.value.message) == (
            422,
            "evaluate_failed",
            "Expected expression.",
        )
        # A new game (set_pid): its hands must be put in again; a waiting call ends at once.
        waiting = asyncio.ensure_future(hands.call("a", "evaluate", {"expression": "2"}, 0.0))
        await asyncio.sleep(0.05)
        hands.feed("set_pid", [123])
        with pytest.raises(RequestError) as err:
            await asyncio.wait_for(waiting, 2)
        assert err.value.code == "not_running"
        assert hands.info is None
        # The game ends while the hands are awaited: 409, not a wait to the end.
        session.running = False
        with pytest.raises(RequestError) as err:
            await asyncio.wait_for(hands.call("a", "evaluate", {"expression": "3"}, 0.0), 2)
        assert err.value.code == "not_running"

    asyncio.run(run())


def test_issue_14_silent_hands_are_a_bounded_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from sidecar.godot.game import hands as hands_module

    monkeypatch.setattr(hands_module, "READY_WAIT", 0.6)
    monkeypatch.setattr(hands_module, "INJECT_AGAIN", 0.2)

    async def run() -> None:
        session = FakeSession()
        hands = GameHands(session, FakeChannel())  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(RequestError) as err:
            await hands.call("a", "evaluate", {"expression": "1"}, 0.0)
        assert (err.value.status, err.value.code) == (409, "conflict")
        assert "did not come up" in err.value.message
        assert time.monotonic() - started < 3
        assert [m for m, _ in session.sent].count("scene:live_instantiate_node") >= 2  # retried
        # Ready, but the answer never comes: 504 after its wait.
        monkeypatch.setattr(hands_module, "ANSWER_WAIT", 0.3)
        hands.feed(READY, [json.dumps({"version": 1, "path": "/root/GodotBridgeHands"})])
        with pytest.raises(PeerTimeout):
            await hands.call("a", "evaluate", {"expression": "1"}, 0.0)
        assert hands.info is None  # silent hands are put in again at the next call

    asyncio.run(run())

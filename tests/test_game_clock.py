"""Time control of the running game (issue 14): /game/suspend, /game/resume,
/game/advance (exactly N frames; until a property compares true), /game/time_scale and
/game/clock, against a real headless editor, its sidecar and the launched demo game
(demo/main.tscn: `Mover`, a Node2D whose `_process` counts `frames` and moves it along x
at `speed` px/s times delta).

Frame stepping needs a game that draws (Godot re-suspends after `frame_post_draw`): the
editor of most tests gives its games the bridge's Xvfb; one module editor keeps its games
headless (GODOT_BRIDGE_GAME_DISPLAY=off) to check the clear refusal there.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from harness import (
    Editor,
    call_json,
    end_game,
    make_demo_project,
    needs_xvfb,
    ok_json,
    query,
    wait_connected,
    wait_event,
)

from sidecar.api.game_clock import compare
from sidecar.errors import RequestError
from sidecar.godot.game.clock import MAX_FRAMES, NEXT_FRAME, SUSPEND, GameClock

MOVER = "Main/Mover"
MOVER_GD = "res://demo/mover.gd"
FRAMES_LINE = 12  # `frames += 1` in demo/mover.gd's _process
STILL_FOR = 1.0  # seconds a suspended game is watched for not moving


def launch(editor: Editor) -> None:
    """POST /debug/launch (again after a 503 of a fresh editor still busy), then wait for
    the Mover to run."""
    deadline = time.monotonic() + 60
    while True:
        status, answer = call_json(editor, "POST", "/debug/launch", {})
        if status == 200:
            break
        assert status == 503 and time.monotonic() < deadline, answer
        time.sleep(1.0)
    while True:
        status, answer = call_json(editor, "GET", query("/game/node", path=MOVER))
        if status == 200 and mover(editor)["frames"] > 0:
            return
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def mover(editor: Editor) -> dict[str, Any]:
    """The Mover's frame counter and x, read through the inspector."""
    node = ok_json(
        editor, "GET", query("/game/node", path=MOVER, properties="Members/frames,position")
    )
    props = {k: v for s in node["sections"] for k, v in s["properties"].items()}
    return {"frames": props["Members/frames"]["value"], "x": props["position"]["value"]["x"]}


def advance(editor: Editor, body: dict[str, Any]) -> dict[str, Any]:
    return ok_json(editor, "POST", "/game/advance", body, timeout=150)  # type: ignore[no-any-return]


def clock(editor: Editor) -> dict[str, Any]:
    return ok_json(editor, "GET", "/game/clock")  # type: ignore[no-any-return]


def refused(editor: Editor, path: str, body: dict[str, Any], status: int, code: str) -> Any:
    got, answer = call_json(editor, "POST", path, body)
    assert got == status and answer["error"]["code"] == code, (path, body, got, answer)
    return answer["error"]


@pytest.fixture(scope="module")
def shown_editor(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    """A headless editor whose games render on the bridge's own Xvfb."""
    project = make_demo_project(tmp_path_factory.mktemp("project"))
    saved = os.environ.pop("GODOT_BRIDGE_GAME_DISPLAY", None)
    ed = Editor(project)
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()
        if saved is not None:
            os.environ["GODOT_BRIDGE_GAME_DISPLAY"] = saved


@pytest.fixture
def game(shown_editor: Editor) -> Iterator[Editor]:
    wait_connected(shown_editor, "virtual")
    launch(shown_editor)
    try:
        yield shown_editor
    finally:
        end_game(shown_editor)


# -- without a game, bad requests ----------------------------------------------------------


def test_issue_14_compare() -> None:
    assert compare(3, ">=", 3.0) and compare(1, "==", 1.0) and not compare(2, "<", 1)
    assert compare({"x": 1.0, "y": 2.0}, "==", {"x": 1.0, "y": 2.0})
    assert compare("a", "!=", "b") and not compare("a", "<", "b")
    assert not compare(True, ">", 0)  # a bool is not a number here


@needs_xvfb
def test_issue_14_no_game_is_409_and_bad_fields_are_400(shown_editor: Editor) -> None:
    wait_connected(shown_editor)
    state = clock(shown_editor)
    assert state["running"] is False and state["suspended"] is False
    for path, body in (
        ("/game/suspend", {}),
        ("/game/resume", {}),
        ("/game/advance", {"frames": 2}),
        ("/game/time_scale", {"scale": 0.5}),
    ):
        refused(shown_editor, path, body, 409, "not_running")
    for body, field, code in (
        ({"frames": 0}, "frames", "invalid_field"),
        ({"frames": MAX_FRAMES + 1}, "frames", "invalid_field"),
        ({"frames": 1.5}, "frames", "invalid_field"),
        ({"timeout": 0}, "timeout", "invalid_field"),
        ({"timeout": 500}, "timeout", "invalid_field"),
        (
            {"until": {"path": MOVER, "property": "x", "op": "~", "value": 1}},
            "until.op",
            "invalid_field",
        ),
        ({"until": {"path": MOVER, "op": ">", "value": 1}}, "until.property", "missing_field"),
        ({"until": {"path": "", "property": "frames", "value": 1}}, "until.path", "invalid_field"),
        ({"until": {"path": MOVER, "property": "frames"}}, "until.value", "missing_field"),
        ({"until": {"path": MOVER, "expression": ""}}, "until.expression", "invalid_field"),
    ):
        error = refused(shown_editor, "/game/advance", body, 400, code)
        assert error["field"] == field, error
    for body, field in (({"scale": -1}, "scale"), ({"scale": "fast"}, "scale"), ({}, "scale")):
        got, answer = call_json(shown_editor, "POST", "/game/time_scale", body)
        assert got == 400 and answer["error"]["field"] == field, answer


# -- with a rendering game -----------------------------------------------------------------


@needs_xvfb
def test_issue_14_suspend_stops_the_mover_and_resume_moves_it(game: Editor) -> None:
    state = ok_json(game, "POST", "/game/suspend", {})
    assert state["suspended"] is True and state["changed_by"] == "tester"
    assert ok_json(game, "GET", "/status")["game"]["clock"]["suspended"] is True
    before = mover(game)
    time.sleep(STILL_FOR)
    assert mover(game) == before  # no _process: neither the counter nor x changed
    assert ok_json(game, "POST", "/game/resume", {})["suspended"] is False
    deadline = time.monotonic() + 10
    while mover(game)["frames"] == before["frames"]:
        assert time.monotonic() < deadline, "the Mover never moved again"
        time.sleep(0.1)
    assert mover(game)["x"] > before["x"]
    assert ok_json(game, "GET", "/status")["game"]["clock"]["suspended"] is False


@needs_xvfb
def test_issue_14_advance_runs_exactly_n_frames(game: Editor) -> None:
    # From a running game: it is suspended first, and stays so.
    first = advance(game, {"frames": 1})
    assert first["frames"] == 1 and first["reason"] == "frames" and first["clock"]["suspended"]
    for n in (1, 5, 30):
        before = mover(game)
        answer = advance(game, {"frames": n})
        after = mover(game)
        assert answer["frames"] == n == after["frames"] - before["frames"], (answer, before, after)
        assert answer["reason"] == "frames" and answer["requested"] == n
        assert after["x"] > before["x"]
        assert answer["ms_per_frame"] > 0
    time.sleep(0.5)
    assert mover(game)["frames"] == after["frames"]  # still suspended
    assert clock(game)["frames_advanced"] == 1 + 1 + 5 + 30


@needs_xvfb
def test_issue_14_input_to_a_suspended_game_is_refused_saying_why(game: Editor) -> None:
    """Godot turns a suspended game's input off (advanced frames included): injected
    input would be lost, so it is refused saying so, and nothing reaches the game."""
    ok_json(game, "POST", "/game/suspend", {})
    press = {"steps": [{"type": "action", "action": "ui_right", "pressed": True}]}
    error = refused(game, "/game/input", press, 409, "conflict")
    assert error["reason"] == "game_suspended" and "resume" in error["message"]
    assert advance(game, {"frames": 3})["frames"] == 3
    assert controlled(game, "right_frames") == 0
    ok_json(game, "POST", "/game/resume", {})
    held = {"steps": [{"type": "action", "action": "ui_right", "frames": 4}]}
    ok_json(game, "POST", "/game/input", held, timeout=30)
    assert controlled(game, "right_frames") == 4


def controlled(editor: Editor, name: str) -> Any:
    """A member of the demo's Controlled node (what the game saw of the input)."""
    value = ok_json(
        editor, "POST", "/game/evaluate", {"expression": name, "path": "Main/Controlled"}
    )
    return value["value"]


@needs_xvfb
def test_issue_14_advance_until_stops_at_the_right_frame(game: Editor) -> None:
    ok_json(game, "POST", "/game/suspend", {})
    start = mover(game)["frames"]
    target = start + 7
    until = {"path": MOVER, "property": "frames", "op": ">=", "value": target}
    answer = advance(game, {"until": until, "frames": 50})
    assert answer["reason"] == "condition" and answer["condition_met"] is True, answer
    assert answer["frames"] == 7 and answer["values"] == {"frames": target}
    assert mover(game)["frames"] == target
    # Already true: no frame.
    assert advance(game, {"until": until})["frames"] == 0
    # A field of a value, and a limit reached before the condition holds.
    x = mover(game)["x"]
    far = {"path": MOVER, "property": "position.x", "op": ">", "value": x + 1e6}
    limited = advance(game, {"until": far, "frames": 3})
    assert limited["reason"] == "frame_limit" and limited["frames"] == 3, limited
    assert limited["condition_met"] is False and limited["values"]["position.x"] > x
    assert mover(game)["frames"] == target + 3
    # What cannot be checked is refused before any frame runs.
    for bad, field, status in (
        ({"path": "Main/Nobody", "property": "frames", "value": 1}, "until.path", 404),
        ({"path": MOVER, "property": "nothing", "value": 1}, "until.property", 400),
        ({"path": MOVER, "property": "position.w", "value": 1}, "until.property", 400),
        ({"path": MOVER, "property": "position", "op": ">", "value": 1}, "until.op", 400),
    ):
        got, error = call_json(game, "POST", "/game/advance", {"until": bad})
        assert got == status and error["error"]["field"] == field, error
    assert mover(game)["frames"] == target + 3


@needs_xvfb
def test_issue_14_advance_until_a_gdscript_expression(game: Editor) -> None:
    """The expression runs in the game (the hands' /game/evaluate route) on the node."""
    ok_json(game, "POST", "/game/suspend", {})
    start = mover(game)["frames"]
    expression = f"frames >= {start + 4} and position.x > 0"
    answer = advance(game, {"until": {"path": MOVER, "expression": expression}, "frames": 20})
    assert answer["reason"] == "condition" and answer["frames"] == 4, answer
    assert answer["values"] == {expression: True}
    assert mover(game)["frames"] == start + 4
    for bad, field, status in (
        ({"path": MOVER, "expression": "frames"}, "until.expression", 400),  # not a bool
        ({"path": MOVER, "expression": "no_such_name > 1"}, "until.expression", 422),
        ({"path": MOVER, "expression": "true", "property": "frames"}, "until.expression", 400),
        ({"path": MOVER, "property": "frames"}, "until.value", 400),
    ):
        got, error = call_json(game, "POST", "/game/advance", {"until": bad})
        assert got == status and error["error"]["field"] == field, error
    assert mover(game)["frames"] == start + 4  # nothing ran


@needs_xvfb
def test_issue_14_advances_take_turns_and_resume_waits_for_them(game: Editor) -> None:
    ok_json(game, "POST", "/game/suspend", {})
    start = mover(game)["frames"]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(advance, game, {"frames": 20})
        deadline = time.monotonic() + 30
        while clock(game)["advancing"] is None:
            assert time.monotonic() < deadline and not first.done(), "no advance under way"
            time.sleep(0.05)
        assert clock(game)["advancing"] == "tester"
        error = refused(game, "/game/resume", {}, 409, "conflict")
        assert error["advancing"] == "tester" and "advancing" in error["message"]
        second = pool.submit(
            lambda: ok_json(game, "POST", "/game/advance", {"frames": 5}, agent="other")
        )
        assert first.result(timeout=150)["frames"] == 20
        assert second.result(timeout=150)["frames"] == 5
    assert mover(game)["frames"] == start + 25  # one after the other, none lost
    assert clock(game)["advancing"] is None
    assert ok_json(game, "POST", "/game/resume", {})["suspended"] is False


@needs_xvfb
def test_issue_14_time_scale_half_halves_the_speed(game: Editor) -> None:
    def pixels_per_second() -> float:
        start, t0 = mover(game)["x"], time.monotonic()
        time.sleep(1.5)
        end, t1 = mover(game)["x"], time.monotonic()
        return (end - start) / (t1 - t0)

    normal = pixels_per_second()
    assert ok_json(game, "POST", "/game/time_scale", {"scale": 0.5})["time_scale"] == 0.5
    assert ok_json(game, "GET", "/status")["game"]["clock"]["time_scale"] == 0.5
    half = pixels_per_second()
    assert 0.25 < half / normal < 0.75, (normal, half)  # speed 60 px/s, x delta-scaled
    # A new game starts afresh: running, scale 1.
    end_game(game)
    launch(game)
    state = clock(game)
    assert state["time_scale"] == 1.0 and state["suspended"] is False
    assert state["frames_advanced"] == 0


@needs_xvfb
def test_issue_14_a_breakpoint_in_the_frame_ends_the_advance(game: Editor) -> None:
    source = {"source": {"path": MOVER_GD}}
    ok_json(game, "POST", "/game/suspend", {})
    since = ok_json(game, "GET", "/debug/events")["latest"]
    ok_json(
        game, "POST", "/debug/setBreakpoints", {**source, "breakpoints": [{"line": FRAMES_LINE}]}
    )
    try:
        time.sleep(0.5)
        assert clock(game)["suspended"]  # suspended: no _process, no stop
        answer = advance(game, {"frames": 5})
        assert answer["reason"] == "stopped" and answer["frames"] == 1, answer
        wait_event(game, since, {"stopped"})
    finally:
        ok_json(game, "POST", "/debug/setBreakpoints", {**source, "breakpoints": []})
    before = mover(game)["frames"]
    ok_json(game, "POST", "/debug/continue", {})
    time.sleep(STILL_FOR)
    # The stopped frame finished, then the game is suspended again.
    assert mover(game)["frames"] == before + 1
    # A debugger pause while suspended: the game stops, and is still suspended after.
    since = ok_json(game, "GET", "/debug/events")["latest"]
    ok_json(game, "POST", "/debug/pause", {})
    wait_event(game, since, {"stopped"})
    # Godot says a pause twice (`paused`, then an `exception` without text once the game
    # is in its debug loop); a continue before the second makes that one a new stop.
    time.sleep(1.0)
    ok_json(game, "POST", "/debug/continue", {})
    time.sleep(STILL_FOR)
    assert mover(game)["frames"] == before + 1
    again = advance(game, {"frames": 2})
    assert again["frames"] == 2, (again, ok_json(game, "GET", "/debug/events?since=0"))
    assert mover(game)["frames"] == before + 3


# -- a headless game -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def headless_editor(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    project = make_demo_project(tmp_path_factory.mktemp("headless"))
    ed = Editor(project, env={"GODOT_BRIDGE_GAME_DISPLAY": "off"})
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()


def test_issue_14_a_headless_game_cannot_advance_but_can_be_suspended(
    headless_editor: Editor,
) -> None:
    wait_connected(headless_editor, "headless")
    launch(headless_editor)
    try:
        ok_json(headless_editor, "POST", "/game/suspend", {})
        before = mover(headless_editor)
        started = time.monotonic()
        error = refused(headless_editor, "/game/advance", {"frames": 3}, 409, "no_display")
        assert time.monotonic() - started < 5 and "headless" in error["message"]
        assert clock(headless_editor)["can_advance"] is False
        time.sleep(STILL_FOR)
        assert mover(headless_editor) == before  # still suspended: nothing was sent
        ok_json(headless_editor, "POST", "/game/resume", {})
        deadline = time.monotonic() + 10
        while mover(headless_editor)["frames"] == before["frames"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        end_game(headless_editor)


# -- the clock alone, on a fake session (no Godot) -------------------------------------------


class FakeSession:
    """Records what the clock sends; `ends_after` pings end the game."""

    def __init__(self, ends_after: int | None = None) -> None:
        self.running = True
        self.stopped: Any = None
        self.sent: list[tuple[str, list[Any]]] = []
        self.pings = 0
        self.ends_after = ends_after
        self.game = 1

    async def put_msg(
        self, agent: str, message: str, data: list[Any], answer: str, **_: Any
    ) -> None:
        self.sent.append((message, data))

    async def send_now(self, message: str, data: list[Any]) -> None:
        self.sent.append((message, data))

    async def ping(self, agent: str) -> None:
        self.pings += 1
        if self.ends_after is not None and self.pings > self.ends_after:
            self.running = False
            raise RequestError("no game is running", code="not_running")


def fake_clock(session: FakeSession, why_not: str | None = None) -> GameClock:
    return GameClock(session, lambda: session.game, session.ping, lambda: why_not, session.send_now)


def test_issue_14_clock_sends_suspend_then_one_next_frame_per_frame() -> None:
    session = FakeSession()
    clock = fake_clock(session)
    outcome = asyncio.run(clock.advance("a", 3, 10.0))
    assert (outcome.frames, outcome.reason) == (3, "frames")
    assert session.sent == [(SUSPEND, [True])] + [(NEXT_FRAME, [])] * 3
    assert session.pings == 3 * 3  # three a frame while breakpoints may stop one
    assert clock.status()["suspended"] and clock.status()["frames_advanced"] == 3
    session.game = 2  # a new game: afresh
    assert clock.status()["suspended"] is False and clock.status()["frames_advanced"] == 0


def test_issue_14_clock_refuses_a_headless_game_before_sending_anything() -> None:
    session = FakeSession()
    clock = fake_clock(session, "headless")
    with pytest.raises(RequestError) as err:
        asyncio.run(clock.advance("a", 3, 10.0))
    assert err.value.code == "no_display" and session.sent == []


def test_issue_14_clock_a_game_ending_mid_advance_is_game_ended() -> None:
    session = FakeSession(ends_after=6)
    outcome = asyncio.run(fake_clock(session).advance("a", 10, 10.0))
    assert (outcome.frames, outcome.reason) == (2, "game_ended")


def test_issue_14_clock_two_pings_a_frame_without_breakpoints() -> None:
    session = FakeSession()
    clock = GameClock(
        session, lambda: 1, session.ping, lambda: None, session.send_now, lambda: False
    )
    assert asyncio.run(clock.advance("a", 4, 10.0)).frames == 4
    assert session.pings == 4 * 2

"""The running game's runtime errors and monitors (/game/errors, /game/monitors, /status):
unit tests on captured messages, then a real editor and the demo game run with
`--demo-error` (demo/errors.gd pushes an error and a warning every second)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import REPO, Editor
from test_debug_http import Agent, run

from sidecar.godot.game.records import GameRecords

FIXTURES = Path(__file__).parent / "fixtures" / "game_messages"
ERRORS_GD = "res://demo/errors.gd"
PUSH_LINE = next(
    i + 1
    for i, text in enumerate((REPO / "demo" / "errors.gd").read_text().splitlines())
    if "push_error(" in text
)
NULL_CALL_LINE = next(
    i + 1
    for i, text in enumerate((REPO / "demo" / "errors.gd").read_text().splitlines())
    if "missing.get_name()" in text
)
PUSHED_AT = re.compile(r"demo-error #\d+ at (\d+\.\d+)")


def fixture(name: str) -> tuple[str, list[Any]]:
    message = json.loads((FIXTURES / f"{name}.json").read_text())
    return message["message"], message["data"]


def fed(*names: str) -> GameRecords:
    records = GameRecords()
    for name in names:
        records.feed(*fixture(name))
    return records


# -- unit: captured messages -----------------------------------------------------------


async def test_a_pushed_error_is_recorded_at_its_script_line() -> None:
    records = fed("set_pid", "error_push_error")
    page = await records.read_errors()
    [error] = page["errors"]
    assert (error["file"], error["line"], error["function"]) == (
        "res://demo/capture.gd",
        error["stack"][0]["line"],
        "_process",
    )
    assert error["source"]["file"] == "core/variant/variant_utility.cpp"
    assert error["message"] == "capture: a pushed error" and not error["is_warning"]
    assert error["game"] == 1 and error["seq"] == 1
    assert (page["next"], page["latest"], page["dropped"]) == (1, 1, 0)
    assert records.summary()["errors_by_file"] == {"res://demo/capture.gd": 1}


async def test_warnings_are_left_out_on_request() -> None:
    records = fed("error_push_warning", "error_push_error", "error_push_warning")
    everything = await records.read_errors()
    assert [e["is_warning"] for e in everything["errors"]] == [True, False, True]
    errors_only = await records.read_errors(warnings=False)
    assert [e["seq"] for e in errors_only["errors"]] == [2]
    assert errors_only["next"] == 3  # the warnings after it are read too
    limited = await records.read_errors(limit=1, warnings=False)
    assert [e["seq"] for e in limited["errors"]] == [2] and limited["next"] == 2


async def test_an_error_without_a_script_stack_keeps_the_engine_file() -> None:
    [error] = (await fed("error_no_stack").read_errors())["errors"]
    assert error["file"] == "platform/linuxbsd/x11/gl_manager_x11.cpp" and error["stack"] == []


async def test_errors_only_wait_sleeps_through_warnings() -> None:
    records = GameRecords()

    async def later() -> None:
        await asyncio.sleep(0.1)
        records.feed(*fixture("error_push_warning"))
        await asyncio.sleep(0.1)
        records.feed(*fixture("error_push_error"))

    task = asyncio.create_task(later())
    started = time.monotonic()
    page = await records.read_errors(wait=5, warnings=False)
    await task
    assert [e["is_warning"] for e in page["errors"]] == [False]
    assert 0.15 < time.monotonic() - started < 2


async def test_the_log_is_bounded_and_says_what_was_dropped() -> None:
    records = GameRecords(capacity=3)
    for _ in range(5):
        records.feed(*fixture("error_push_error"))
    page = await records.read_errors(since=0)
    assert [e["seq"] for e in page["errors"]] == [3, 4, 5] and page["dropped"] == 2


def test_monitors_by_name_with_history_and_a_new_game_starts_afresh() -> None:
    records = fed("set_pid", "performance_profile_frame", "performance_profile_frame")
    seen = records.monitors(history=5)
    assert seen["frames"] == 2 and len(seen["history"]) == 2
    assert {"time_fps", "memory_static", "object_count"} <= set(seen["values"])
    picked = records.monitors(["time_fps", "object_count"], history=1)
    assert set(picked["values"]) == {"time_fps", "object_count"}
    assert [set(f["values"]) for f in picked["history"]] == [{"time_fps", "object_count"}]
    records.feed(*fixture("error_push_error"))
    records.feed(*fixture("set_pid"))
    assert records.monitors()["values"] == {} and records.monitors()["game"] == 2
    assert records.summary()["errors"] == 0 and records.errors.latest == 1


def test_a_malformed_message_is_counted_and_dropped() -> None:
    records = GameRecords()
    records.feed("error", [1, 2])
    records.feed("performance:profile_frame", ["x"])
    assert records.malformed == 2 and records.errors.latest == 0


# -- real editor, real game ---------------------------------------------------------------


async def launch_with_errors(agent: Agent) -> None:
    await agent.ok("POST", "/debug/launch", {"playArgs": ["--demo-error"]})


async def test_pushed_errors_arrive_at_their_line_within_a_second(editor: Editor) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        ann, ben = agent("ann"), agent("ben")
        since = (await ann.ok("GET", "/game/errors"))["latest"]
        games_before = (await ann.status())["game"]["game"]
        await launch_with_errors(ann)
        # The long-poll wakes on the first error; the warning filter holds back warnings.
        page = await ann.ok("GET", "/game/errors", since=since, wait=15, warnings="false")
        woke = time.time()
        assert page["errors"], page
        first = page["errors"][0]
        assert not first["is_warning"]
        assert (first["file"], first["line"], first["function"]) == (
            ERRORS_GD,
            PUSH_LINE,
            "_push_both",
        )
        assert first["game"] == games_before + 1
        pushed = PUSHED_AT.match(first["message"])
        assert pushed, first["message"]
        latency = woke - float(pushed.group(1))
        received = first["time"] - float(pushed.group(1))
        print(f"\ngame error latency: received {received:.3f} s, long-poll woke {latency:.3f} s")
        assert received < 1.0 and latency < 1.0

        # Another reader, who did not leave warnings out, reads them from there on.
        warning = await next_error(ben, page["next"], lambda e: e["is_warning"], timeout=5)
        assert warning["message"].startswith("demo-warning #") and warning["file"] == ERRORS_GD

        status = await ann.status()
        game = status["game"]
        assert game["errors_by_file"].get(ERRORS_GD, 0) >= 1, game
        assert game["warnings_by_file"].get(ERRORS_GD, 0) >= 1, game
        await ann.ok("POST", "/debug/terminate", {})

    await run(editor.base_url, scenario)


async def test_monitors_of_the_running_game(editor: Editor) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        cal = agent("cal")
        await cal.ok("POST", "/debug/launch", {})
        deadline = time.monotonic() + 15
        monitors: dict[str, Any] = {}
        while time.monotonic() < deadline:
            monitors = await cal.ok("GET", "/game/monitors", history=10)
            if monitors["frames"] >= 2:
                break
            await asyncio.sleep(0.2)
        assert monitors["frames"] >= 2, monitors
        values = monitors["values"]
        print(f"\nmonitors: fps {values['time_fps']}, static memory {values['memory_static']}")
        assert values["time_fps"] is not None and 0 < values["time_fps"] < 100_000
        assert values["memory_static"] is not None and values["memory_static"] > 1_000_000
        assert values["object_count"] is not None and values["object_count"] > 100
        assert values["object_node_count"] is not None and values["object_node_count"] >= 2
        assert len(monitors["history"]) == monitors["frames"]
        picked = await cal.ok("POST", "/game/monitors", {"names": "time_fps,object_count"})
        assert set(picked["values"]) == {"time_fps", "object_count"}
        await cal.ok("POST", "/debug/terminate", {})

    await run(editor.base_url, scenario)


async def test_a_script_error_is_recorded_and_the_game_goes_on_after_continue(
    editor: Editor,
) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        dee = agent("dee")
        since = (await dee.ok("GET", "/game/errors"))["latest"]
        events = (await dee.ok("GET", "/debug/events"))["latest"]
        body = {"playArgs": ["--demo-script-error", "--demo-error"]}
        await dee.ok("POST", "/debug/launch", body)
        script_error = await next_error(dee, since, lambda e: e["source"]["file"] == ERRORS_GD)
        assert (script_error["file"], script_error["line"]) == (ERRORS_GD, NULL_CALL_LINE)
        assert script_error["function"] == "_call_on_null" and not script_error["is_warning"]
        assert "null" in script_error["message"], script_error
        assert [f["function"] for f in script_error["stack"]][:2] == ["_call_on_null", "_process"]
        stop = await dee.next_stop(events)
        assert stop["body"]["reason"] == "exception", stop
        await dee.ok("POST", "/debug/continue", {})
        # Going on: the pushed errors keep coming, from the same game.
        pushed = await next_error(
            dee, script_error["seq"], lambda e: PUSHED_AT.match(e["message"]) is not None
        )
        assert pushed["game"] == script_error["game"]
        await dee.ok("POST", "/debug/terminate", {})

    await run(editor.base_url, scenario)


async def next_error(
    agent: Agent, since: int, wanted: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """The first game error after `since` that is `wanted`, read with long-polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await agent.ok("GET", "/game/errors", since=since, wait=2)
        for error in page["errors"]:
            if wanted(error):
                return error
        since = page["next"]
    raise AssertionError("no such game error")

"""The bridge on a real game nobody here wrote: Godot's official demo "Dodge the Creeps"
(tests/projects/dodge_the_creeps, MIT, vendored unchanged; see tests/projects/README.md).

The addon is installed the way the README tells a user to (copied into addons/, enabled in
project.godot's [editor_plugins]; the project has no .venv, so the sidecar's Python comes from
GODOT_BRIDGE_PYTHON), and the editor is started with Godot's own `--lsp-port`/`--dap-port`
flags only, no GODOT_LSP_PORT/GODOT_DAP_PORT: the bridge must find the ports the editor
really serves. Then what an agent does first on any project: symbols, hover, definition and
diagnostics on the game's scripts; a breakpoint in `player.gd`'s `_process`, which runs every
frame; stack, scopes, variables, evaluate; step over, in and out; an edit with the file's hash,
a reload the running game picks up; terminate.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
import psutil
import pytest
from harness import (
    REAL_PROJECTS,
    Editor,
    call_json,
    game_processes,
    make_real_project,
    ok_json,
    query,
)

GAME = REAL_PROJECTS / "dodge_the_creeps"
SCRIPTS = ("player.gd", "mob.gd", "main.gd", "hud.gd")
PLAYER = "res://player.gd"
PLAYER_GD = (GAME / "player.gd").read_text(encoding="utf-8").splitlines()
AGENT = "creeps-agent"


def line_of(lines: list[str], text: str) -> int:
    """1-based number of the only line holding `text`."""
    found = [i + 1 for i, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


# player.gd's _process, as the vendored game has it (lines 1-based, as the debugger counts).
PROCESS_FIRST = line_of(PLAYER_GD, "var velocity = Vector2.ZERO")
MOVE_RIGHT = line_of(PLAYER_GD, 'if Input.is_action_pressed(&"move_right")')
MOVE_LEFT = line_of(PLAYER_GD, 'if Input.is_action_pressed(&"move_left")')
MOVE_DOWN = line_of(PLAYER_GD, 'if Input.is_action_pressed(&"move_down")')
TERNARY = line_of(PLAYER_GD, "rotation = PI if velocity.y > 0 else 0")
SPEED_DECL = line_of(PLAYER_GD, "@export var speed = 400")
SPEED_USE = line_of(PLAYER_GD, "velocity = velocity.normalized() * speed")
MAIN_GD = (GAME / "main.gd").read_text(encoding="utf-8").splitlines()
HUD_GD = (GAME / "hud.gd").read_text(encoding="utf-8").splitlines()
# main.gd's _on_ScoreTimer_timeout (once a second in a started game) calls into hud.gd.
SCORE_TICK = line_of(MAIN_GD, "func _on_ScoreTimer_timeout") + 2
assert MAIN_GD[SCORE_TICK - 1] == "\t$HUD.update_score(score)"
SCORE_LABEL = line_of(HUD_GD, "$ScoreLabel.text = str(score)")


# --- talking to the bridge -----------------------------------------------------------------


def call(
    ed: Editor, method: str, path: str, body: Any = None, agent: str = AGENT
) -> tuple[int, Any]:
    """(HTTP status, JSON answer) of one request, as `agent`."""
    return call_json(ed, method, path, body, agent)


def ok(ed: Editor, method: str, path: str, body: Any = None, agent: str = AGENT) -> Any:
    return ok_json(ed, method, path, body, agent)


def bridge_status(ed: Editor) -> dict[str, Any]:
    """GET /status: the seed's fields at the top level, no "result" wrapper (issue 11)."""
    status, answer = call(ed, "GET", "/status")
    assert status == 200 and answer["status"] == "ok", answer
    return answer


def latest_event(ed: Editor) -> int:
    return harness.latest_event(ed, AGENT)


def wait_event(ed: Editor, since: int, names: set[str], timeout: float = 20) -> dict[str, Any]:
    """The first event named in `names` after event `since` (long-polls /debug/events)."""
    return harness.wait_event(ed, since, names, timeout, AGENT)


def frames(ed: Editor) -> list[tuple[str, str, int]]:
    """The stopped game's stack as (function, script file name, line), top first."""
    trace = ok(ed, "POST", "/debug/stackTrace", {"threadId": 1})
    return [(f["name"], Path(f["source"]["path"]).name, f["line"]) for f in trace["stackFrames"]]


def top_frame(ed: Editor) -> tuple[str, int]:
    name, script, line = frames(ed)[0]
    assert script == "player.gd", frames(ed)
    return name, line


def step(ed: Editor, command: str) -> dict[str, Any]:
    """One step; waits for the stop it causes and answers (the step's result, the stop)."""
    since = latest_event(ed)
    result = ok(ed, "POST", f"/debug/{command}", {"threadId": 1})
    stop = wait_event(ed, since, {"stopped", "terminated", "exited"})
    assert stop["event"] == "stopped", stop
    return {"result": result, "stop": stop}


def evaluate(ed: Editor, expression: str, frame: int = 0) -> str:
    body = {"expression": expression, "frameId": frame}
    return str(ok(ed, "POST", "/debug/evaluate", body)["result"])


def set_breakpoints(
    ed: Editor, lines: list[int], path: str = PLAYER, agent: str = AGENT
) -> list[dict[str, Any]]:
    body = {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]}
    return list(ok(ed, "POST", "/debug/setBreakpoints", body, agent)["breakpoints"])


def terminate(ed: Editor) -> None:
    """Ends the game, if one runs, and waits until the bridge says so."""
    since = latest_event(ed)
    ok(ed, "POST", "/debug/terminate", {})
    if game_processes(ed):
        wait_event(ed, since, {"terminated", "exited"})
    deadline = time.monotonic() + 10
    while game_processes(ed):
        assert time.monotonic() < deadline, "the game outlived /debug/terminate"
        time.sleep(0.1)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the editor on the game ----------------------------------------------------------------


@pytest.fixture(scope="module")
def creeps(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    """A headless editor on a copy of the game, started with Godot's port flags only."""
    project = make_real_project("dodge_the_creeps", tmp_path_factory.mktemp("creeps"))
    ed = Editor(project, flags_only=True)
    try:
        ed.start()
        ed.wait_until_ready()
        yield ed
    finally:
        ed.stop()


@pytest.fixture
def stopped_in_process(creeps: Editor) -> Iterator[dict[str, Any]]:
    """The game launched with a breakpoint on _process' first line, stopped there."""
    bps = set_breakpoints(creeps, [PROCESS_FIRST])
    assert [(b["line"], b["verified"]) for b in bps] == [(PROCESS_FIRST, True)]
    since = latest_event(creeps)
    ok(creeps, "POST", "/debug/launch", {"scene": "main"})
    try:
        yield wait_event(creeps, since, {"stopped"})
    finally:
        set_breakpoints(creeps, [])
        terminate(creeps)


def test_issue_11_real_project_bridge_serves_the_ports_of_the_flags(creeps: Editor) -> None:
    status = creeps.wait_until_ready()
    assert status["debug_adapter"]["port"] == creeps.dap_port
    assert status["language_server"]["port"] == creeps.lsp_port
    assert status["debug_adapter"]["state"] == status["language_server"]["state"] == "connected"
    assert Path(status["sidecar"]["project"]).resolve() == creeps.project.resolve()
    # The game asks for Godot 4.7 (config/features); an older editor opens it all the same and
    # leaves the project file as it was.
    text = (creeps.project / "project.godot").read_text(encoding="utf-8")
    assert 'config/features=PackedStringArray("4.7")' in text


def test_issue_11_real_project_document_symbols(creeps: Editor) -> None:
    for script in SCRIPTS:
        source = (creeps.project / script).read_text(encoding="utf-8")
        declared = set(re.findall(r"^(?:func|signal|var|@export var)\s+(\w+)", source, re.M))
        symbols = ok(creeps, "POST", "/lsp/documentSymbol", {"uri": f"res://{script}"})
        assert [s["name"] for s in symbols] == [script], symbols
        names = {child["name"] for child in symbols[0]["children"]}
        assert names == declared, (script, names, declared)


def test_issue_11_real_project_hover_and_definition(creeps: Editor) -> None:
    # `speed` where _process uses it: hover shows its declaration, definition goes there.
    at = {"line": SPEED_USE - 1, "character": PLAYER_GD[SPEED_USE - 1].rindex("speed") + 2}
    doc = {"uri": PLAYER}
    hover = ok(creeps, "POST", "/lsp/hover", {"textDocument": doc, "position": at})
    assert "@export var speed = 400" in hover["contents"]["value"], hover
    found = ok(creeps, "POST", "/lsp/definition", {"textDocument": doc, "position": at})
    assert [(d["uri"], d["range"]["start"]["line"]) for d in found] == [
        ((creeps.project / "player.gd").as_uri(), SPEED_DECL - 1)
    ]

    # In the other scripts: main.gd's `score`, hud.gd's signal `start_game`.
    for script, use, declaration in (
        ("main.gd", "\tscore += 1", "var score"),
        ("hud.gd", "\tstart_game.emit()", "signal start_game"),
    ):
        lines = (creeps.project / script).read_text(encoding="utf-8").splitlines()
        pos = {"line": line_of(lines, use) - 1, "character": 2}
        body = {"textDocument": {"uri": f"res://{script}"}, "position": pos}
        found = ok(creeps, "POST", "/lsp/definition", body)
        assert [(d["uri"], d["range"]["start"]["line"]) for d in found] == [
            ((creeps.project / script).as_uri(), line_of(lines, declaration) - 1)
        ], (script, found)


def test_issue_11_real_project_diagnostics(creeps: Editor) -> None:
    for script in ("mob.gd", "main.gd", "hud.gd"):
        result = ok(creeps, "GET", query("/lsp/diagnostics", uri=f"res://{script}", wait=10))
        assert result["path"] == f"res://{script}" and result["diagnostics"] == [], result
    # The real game has one real warning: a ternary mixing a float (PI) and an int (0).
    result = ok(creeps, "GET", query("/lsp/diagnostics", uri=PLAYER, wait=10))
    assert [(d["severity"], d["range"]["start"]["line"]) for d in result["diagnostics"]] == [
        (2, TERNARY - 1)
    ], result
    assert "INCOMPATIBLE_TERNARY" in result["diagnostics"][0]["message"]


def test_issue_11_real_project_breakpoint_in_every_frame(
    creeps: Editor, stopped_in_process: dict[str, Any]
) -> None:
    assert stopped_in_process["body"]["reason"] == "breakpoint"
    trace = ok(creeps, "POST", "/debug/stackTrace", {"threadId": 1})
    assert trace["totalFrames"] == 1  # the engine calls _process: no script below it
    assert top_frame(creeps) == ("_process", PROCESS_FIRST)
    # A headless editor's game renders on the bridge's virtual display (issue 13), or runs
    # headless when there is none.
    [game] = game_processes(creeps)
    headless = bridge_status(creeps)["game_display"]["mode"] == "headless"
    assert ("--headless" in game.cmdline()) is headless, game.cmdline()

    # _process runs every frame: after a continue the same breakpoint stops the game again.
    since = latest_event(creeps)
    ok(creeps, "POST", "/debug/continue", {"threadId": 1})
    again = wait_event(creeps, since, {"stopped"})
    assert again["body"]["reason"] == "breakpoint"
    assert top_frame(creeps) == ("_process", PROCESS_FIRST)


def test_issue_11_real_project_stack_scopes_variables_evaluate(
    creeps: Editor, stopped_in_process: dict[str, Any]
) -> None:
    scopes = ok(creeps, "GET", query("/debug/scopes", frameId=0))["scopes"]
    assert [s["name"] for s in scopes] == ["Locals", "Members", "Globals"]
    refs = {s["name"]: s["variablesReference"] for s in scopes}

    def variables(ref: int) -> dict[str, dict[str, Any]]:
        found = ok(creeps, "GET", query("/debug/variables", variablesReference=ref))
        return {v["name"]: v for v in found["variables"]}

    local = variables(refs["Locals"])
    assert set(local) == {"delta", "velocity"}
    assert local["delta"]["type"] == "float" and float(local["delta"]["value"]) > 0
    assert local["velocity"]["value"] == "<null>"  # the breakpoint's line has not run yet
    members = variables(refs["Members"])
    assert members["speed"]["value"] == "400"
    # The viewport of project.godot's [display], 480x720, also in the headless game.
    screen = members["screen_size"]
    assert (screen["type"], screen["value"]) == ("Vector2", "(480.0, 720.0)")
    xy = variables(screen["variablesReference"])
    assert {k: v["value"] for k, v in xy.items()} == {"x": "480.0", "y": "720.0"}

    assert evaluate(creeps, "speed") == "400"
    assert evaluate(creeps, "speed * 2") == "800"
    assert evaluate(creeps, "delta") == local["delta"]["value"]
    step(creeps, "next")  # the line that sets velocity
    assert evaluate(creeps, "velocity") == "(0.0, 0.0)"
    assert evaluate(creeps, "velocity.length() == 0") == "true"


def test_issue_11_real_project_step_over_in_and_out(
    creeps: Editor, stopped_in_process: dict[str, Any]
) -> None:
    # Nobody presses a key in the headless game: every `if Input...` is false.
    assert step(creeps, "next")["stop"]["body"]["reason"] == "step"
    assert top_frame(creeps) == ("_process", MOVE_RIGHT)
    # The line calls no script function (Input is native): step in stays in _process and
    # goes on to the next line that runs.
    assert step(creeps, "stepIn")["stop"]["body"]["reason"] == "step"
    assert top_frame(creeps) == ("_process", MOVE_LEFT)
    step(creeps, "next")
    assert top_frame(creeps) == ("_process", MOVE_DOWN)
    # Out of the outermost frame means back to the engine: the game runs on, and the
    # breakpoint stops it in the next frame.
    since = latest_event(creeps)
    out = ok(creeps, "POST", "/debug/stepOut", {"threadId": 1})
    assert out.get("continued") is True, out
    stop = wait_event(creeps, since, {"stopped"})
    assert stop["body"]["reason"] == "breakpoint"
    assert top_frame(creeps) == ("_process", PROCESS_FIRST)


@pytest.fixture
def stopped_in_score_tick(creeps: Editor, stopped_in_process: dict[str, Any]) -> Iterator[None]:
    """The game started as its Start button does (main.new_game), stopped in main.gd's
    once-a-second _on_ScoreTimer_timeout on the line that calls into hud.gd."""
    # Headless, nobody presses Start: an agent can call what the button's signal calls.
    assert evaluate(creeps, "get_parent().new_game()") == "<null>"  # returns nothing
    assert evaluate(creeps, "visible") == "true"  # new_game showed the player
    set_breakpoints(creeps, [])
    set_breakpoints(creeps, [SCORE_TICK], "res://main.gd")
    try:
        since = latest_event(creeps)
        ok(creeps, "POST", "/debug/continue", {"threadId": 1})
        # The start timer (2 s), then the score timer (1 s).
        assert wait_event(creeps, since, {"stopped"})["body"]["reason"] == "breakpoint"
        assert frames(creeps) == [("_on_ScoreTimer_timeout", "main.gd", SCORE_TICK)]
        set_breakpoints(creeps, [], "res://main.gd")  # from here on only steps stop it
        yield
    finally:
        set_breakpoints(creeps, [], "res://main.gd")


def test_issue_11_real_project_step_into_another_script(
    creeps: Editor, stopped_in_score_tick: None
) -> None:
    step(creeps, "stepIn")
    assert frames(creeps) == [
        ("update_score", "hud.gd", SCORE_LABEL),
        ("_on_ScoreTimer_timeout", "main.gd", SCORE_TICK),
    ]
    # Each frame evaluates in its own script: hud's parameter, main's member.
    assert evaluate(creeps, "score", 0) == evaluate(creeps, "score", 1) == "1"
    assert evaluate(creeps, "get_parent().score", 0) == "1"  # the HUD's parent is Main
    scopes = ok(creeps, "GET", query("/debug/scopes", frameId=0))["scopes"]
    ref = scopes[0]["variablesReference"]
    local = ok(creeps, "GET", query("/debug/variables", variablesReference=ref))["variables"]
    assert [(v["name"], v["value"]) for v in local] == [("score", "1")]


def test_issue_11_real_project_step_out_of_a_call_on_the_last_line(
    creeps: Editor, stopped_in_score_tick: None
) -> None:
    step(creeps, "stepIn")
    before = frames(creeps)
    out = ok(creeps, "POST", "/debug/stepOut", {"threadId": 1})
    after = frames(creeps)
    # The call is main.gd's last line: nothing of the caller runs after it, so the game
    # cannot stop in the caller. It stops at the next line it runs (player.gd's _process,
    # say), and the answer says so rather than claiming a plain step out.
    assert [f[:2] for f in after] != [f[:2] for f in before[1:]], (before, after)
    assert out["stopped"] is True and out["in_caller"] is False, (out, after)
    assert out["returned"] is True and out["caller_finished"] is True, out
    assert "_on_ScoreTimer_timeout" in out["text"] and "not on the stack" in out["text"], out
    assert after[0][0] in out["text"], (out, after)


def read_for_edit(ed: Editor, res: str) -> dict[str, Any]:
    """GET /edit/read (issue 11): the file's text and the sha256 applyChanges checks."""
    result = ok(ed, "GET", query("/edit/read", uri=res))
    on_disk = ed.project / res.removeprefix("res://")
    assert result["uri"] == res and result["text"] == on_disk.read_text(encoding="utf-8")
    assert result["sha256"] == sha256_of(on_disk)
    return dict(result)


def test_issue_11_real_project_edit_with_hash_and_reload(
    creeps: Editor, stopped_in_process: dict[str, Any]
) -> None:
    path = creeps.project / "player.gd"
    original = path.read_text(encoding="utf-8")
    # The stop proves the game's debugger session is up; let it run on from there.
    set_breakpoints(creeps, [])
    ok(creeps, "POST", "/debug/continue", {"threadId": 1})
    try:
        before = read_for_edit(creeps, PLAYER)["sha256"]
        # A new line right after _process' first one, that uses a member of the instance.
        insert = {"line": PROCESS_FIRST, "character": 0}
        marker = "\tvar creeps_marker = speed + 1 # added over the bridge\n"
        edit = {"range": {"start": insert, "end": insert}, "newText": marker}
        body = {"uri": PLAYER, "edits": [edit], "expected_sha256": before}
        result = ok(creeps, "POST", "/edit/applyChanges", body)
        assert result["previous_sha256"] == before
        assert result["sha256"] == sha256_of(path) == read_for_edit(creeps, PLAYER)["sha256"]
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[PROCESS_FIRST] == marker.rstrip("\n")

        # The hash read before the edit is stale now: refused, nothing written.
        status, answer = call(creeps, "POST", "/edit/applyChanges", body)
        assert status == 409 and answer["error"]["current_sha256"] == result["sha256"]
        assert path.read_text(encoding="utf-8").splitlines() == lines

        reloaded = ok(creeps, "POST", "/execute/reload", {})
        assert PLAYER in reloaded["scripts"] and reloaded["errors"] == [], reloaded
        assert reloaded["game_running"] is True and reloaded["game_reloaded"] is True

        # The running game runs the new line: stop after it and read the new local.
        since = latest_event(creeps)
        set_breakpoints(creeps, [PROCESS_FIRST + 2])
        wait_event(creeps, since, {"stopped"})
        assert top_frame(creeps) == ("_process", PROCESS_FIRST + 2)
        body = {"expression": "creeps_marker", "frameId": 0}
        assert ok(creeps, "POST", "/debug/evaluate", body)["result"] == "401"
    finally:
        # Back to the game as vendored, for whatever runs after this test.
        ok(creeps, "POST", "/edit/applyChanges", {"uri": PLAYER, "text": original})
        ok(creeps, "POST", "/execute/reload", {"paths": [PLAYER]})
        assert path.read_text(encoding="utf-8") == original


def launch_game(ed: Editor) -> psutil.Process:
    """Launches the game without breakpoints and waits until its debugger session is up
    (the game's own output arrives through it)."""
    since = latest_event(ed)
    ok(ed, "POST", "/debug/launch", {"scene": "main"})
    wait_event(ed, since, {"output"})
    deadline = time.monotonic() + 10
    while not game_processes(ed):
        assert time.monotonic() < deadline, "no game process after /debug/launch"
        time.sleep(0.05)
    [game] = game_processes(ed)
    return game


def test_issue_11_real_project_terminate(creeps: Editor) -> None:
    game = launch_game(creeps)

    since = latest_event(creeps)
    ok(creeps, "POST", "/debug/terminate", {})
    wait_event(creeps, since, {"terminated"})
    game.wait(timeout=10)
    assert not game_processes(creeps)
    status, answer = call(creeps, "POST", "/debug/stackTrace", {"threadId": 1})
    assert status == 409 and answer["error"]["code"] == "not_stopped", answer
    assert answer["error"]["running"] is False


def test_issue_11_real_project_terminate_right_after_launch(creeps: Editor) -> None:
    since = latest_event(creeps)
    ok(creeps, "POST", "/debug/launch", {"scene": "main"})
    ok(creeps, "POST", "/debug/terminate", {})
    try:
        deadline = time.monotonic() + 10
        while game_processes(creeps):  # the game does end
            assert time.monotonic() < deadline, "the game outlived /debug/terminate"
            time.sleep(0.05)
        wait_event(creeps, since, {"terminated"}, timeout=5)
        status, answer = call(creeps, "POST", "/debug/stackTrace", {"threadId": 1})
        assert status == 409 and answer["error"]["running"] is False, answer
        # Nothing runs to pause any more.
        status, answer = call(creeps, "POST", "/debug/pause", {"threadId": 1})
        assert status == 409 and answer["error"]["code"] == "not_running", answer
    finally:
        terminate(creeps)


@pytest.fixture
def fresh_creeps(tmp_path: Path, godot_bin: str) -> Iterator[Editor]:
    """An editor of its own on the game: no script of it opened in the script editor yet."""
    ed = Editor(make_real_project("dodge_the_creeps", tmp_path), flags_only=True)
    try:
        ed.start()
        ed.wait_until_ready()
        yield ed
    finally:
        ed.stop()


def breakpoint_events(ed: Editor, since: int, wait: float) -> list[dict[str, Any]]:
    """The `breakpoint` events after `since`, collected for `wait` seconds."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        page = ok(ed, "GET", query("/debug/events", since=since, wait=0.5))
        found += [e["body"]["breakpoint"] for e in page["events"] if e["event"] == "breakpoint"]
        since = page["next"]
    return found


def test_issue_11_real_project_breakpoint_ids_agree(fresh_creeps: Editor) -> None:
    """One id per breakpoint line in the setBreakpoints answer, the `breakpoint` events and
    `stopped.hitBreakpointIds`, across stops and launches. Godot's own ids disagree: the
    first stop opens the script in the editor, which toggles its breakpoints again (a new
    entry, a new id, announced), while stops keep naming the oldest entry; and every game's
    end renumbers them."""
    ed = fresh_creeps
    [mine] = set_breakpoints(ed, [PROCESS_FIRST], agent="alice")
    [theirs] = set_breakpoints(ed, [PROCESS_FIRST], agent="bob")
    assert mine["id"] == theirs["id"], (mine, theirs)  # one line, one id, whoever set it
    for _launch in range(2):
        since = latest_event(ed)
        ok(ed, "POST", "/debug/launch", {"scene": "main"})
        stop = wait_event(ed, since, {"stopped"})
        assert stop["body"]["hitBreakpointIds"] == [mine["id"]], (stop, mine)
        for bp in breakpoint_events(ed, since, 1.5):
            if bp["line"] == PROCESS_FIRST and bp["source"]["path"].endswith("player.gd"):
                assert bp["id"] == mine["id"], (bp, mine)
        since = latest_event(ed)
        ok(ed, "POST", "/debug/continue", {"threadId": 1})
        again = wait_event(ed, since, {"stopped"})
        assert again["body"]["hitBreakpointIds"] == [mine["id"]], (again, mine)
        # A second line, set while the script is open in the editor.
        both = set_breakpoints(ed, [PROCESS_FIRST, MOVE_RIGHT], agent="alice")
        assert both[0]["id"] == mine["id"] and both[1]["id"] != mine["id"], both
        since = latest_event(ed)
        ok(ed, "POST", "/debug/continue", {"threadId": 1})
        there = wait_event(ed, since, {"stopped"})
        assert there["body"]["hitBreakpointIds"] == [both[1]["id"]], (there, both)
        set_breakpoints(ed, [PROCESS_FIRST], agent="alice")
        terminate(ed)
    assert set_breakpoints(ed, [PROCESS_FIRST], agent="alice")[0]["id"] == mine["id"]


def test_issue_11_real_project_breakpoints_where_nothing_runs_are_unverified(
    creeps: Editor,
) -> None:
    blank = PLAYER_GD.index("") + 1
    signal = line_of(PLAYER_GD, "signal hit")
    comment = line_of(PLAYER_GD, "# Must be deferred")
    extends = line_of(PLAYER_GD, "extends Area2D")
    try:
        answer = set_breakpoints(creeps, [blank, signal, comment, extends, PROCESS_FIRST])
        by_line = {b["line"]: b for b in answer}
        assert by_line[PROCESS_FIRST]["verified"] is True, by_line
        for line, what in (
            (blank, "blank"),
            (signal, "declaration"),
            (comment, "comment"),
            (extends, "declaration"),
        ):
            assert by_line[line]["verified"] is False, by_line[line]
            assert what in by_line[line]["message"], by_line[line]
            assert "never stops" in by_line[line]["message"], by_line[line]
    finally:
        set_breakpoints(creeps, [])

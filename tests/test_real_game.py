"""The running game of a real project nobody here wrote: Godot's official demo "Dodge the
Creeps" (tests/projects/dodge_the_creeps, MIT, vendored unchanged; tests/projects/README.md).

As tests/test_real_project.py does, the game is copied, the addon installed as the README
tells a user to, and the editor started with Godot's own `--lsp-port`/`--dap-port` flags
only. The game is launched through the bridge (which asks Godot for the game's debugger
messages, `"godot/custom_data": true`), and what an agent sees of it is checked against
what the game's scenes really hold: its tree and scripts, typed node properties, something
that moves, runtime errors an agent adds to its scripts through the bridge's edit API.
"""

from __future__ import annotations

import base64
import io
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness
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
from PIL import Image

GAME = REAL_PROJECTS / "dodge_the_creeps"
AGENT = "creeps-watcher"
PLAYER_GD = (GAME / "player.gd").read_text(encoding="utf-8").splitlines()
# player.gd's _process runs every frame: a breakpoint there stops the game at once.
PROCESS_FIRST = next(
    i + 1 for i, line in enumerate(PLAYER_GD) if "var velocity = Vector2.ZERO" in line
)
# main.tscn's Marker2D the Start button's new_game() puts the player on.
START_POSITION = {"x": 240.0, "y": 450.0}
# Main's children as main.tscn lists them (Player and HUD are instanced scenes).
MAIN_CHILDREN = [
    "ColorRect",
    "Player",
    "MobTimer",
    "ScoreTimer",
    "StartTimer",
    "StartPosition",
    "MobPath",
    "HUD",
    "Music",
    "DeathSound",
]
# The error an agent adds to main.gd: pushed every half second with the time it was pushed.
PUSHED_AT = re.compile(r"creeps-(?:error|warning) at (\d+\.\d+)")
ADDED_TO_MAIN = """

var creeps_clock = 0.0


func _process(delta):
\tcreeps_clock += delta
\tif creeps_clock >= 0.5:
\t\tcreeps_clock = 0.0
\t\tvar now = Time.get_unix_time_from_system()
\t\tpush_error("creeps-error at %.3f" % now)
\t\tpush_warning("creeps-warning at %.3f" % now)
"""


# --- talking to the bridge -----------------------------------------------------------------


def call(ed: Editor, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return call_json(ed, method, path, body, AGENT)


def ok(ed: Editor, method: str, path: str, body: Any = None) -> Any:
    return ok_json(ed, method, path, body, AGENT)


def latest_event(ed: Editor) -> int:
    return harness.latest_event(ed, AGENT)


def wait_event(ed: Editor, since: int, names: set[str], timeout: float = 30) -> dict[str, Any]:
    """The first event named in `names` after event `since` (long-polls /debug/events)."""
    return harness.wait_event(ed, since, names, timeout, AGENT)


def set_breakpoints(ed: Editor, lines: list[int], path: str = "res://player.gd") -> None:
    body = {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]}
    ok(ed, "POST", "/debug/setBreakpoints", body)


def evaluate(ed: Editor, expression: str) -> str:
    return str(
        ok(ed, "POST", "/debug/evaluate", {"expression": expression, "frameId": 0})["result"]
    )


def launch(ed: Editor) -> None:
    """POST /debug/launch of main.tscn; on a loaded machine Godot's adapter may miss the
    bridge's liveness probe (503 `connection_lost`, "retry"): then, as told, again."""
    for _attempt in range(3):
        status, answer = call(ed, "POST", "/debug/launch", {"scene": "main"})
        if status == 200:
            return
        assert (status, answer["error"]["code"]) == (503, "connection_lost"), answer
        ed.wait_until_ready()
    raise AssertionError(f"launch failed three times: {answer}")


def wait_for_main(ed: Editor, timeout: float = 30) -> dict[str, Any]:
    """/game/tree once the launched game answers with its Main scene in it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = call(ed, "GET", "/game/tree")
        status, answer = last
        if status == 200 and any(c["name"] == "Main" for c in answer["result"]["root"]["children"]):
            return answer["result"]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"the game's tree never came: {last}")


def terminate(ed: Editor) -> None:
    """Ends the game, if one runs, and waits until the bridge knows no game runs."""
    call(ed, "POST", "/debug/terminate", {})
    deadline = time.monotonic() + 20
    while game_processes(ed) or call(ed, "GET", "/game/tree")[0] != 409:
        assert time.monotonic() < deadline, "the game outlived /debug/terminate"
        time.sleep(0.2)


def child(node: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in node["children"] if c["name"] == name]
    assert len(found) == 1, (name, [c["name"] for c in node["children"]])
    return dict(found[0])


def prop(answer: dict[str, Any], name: str) -> dict[str, Any]:
    for section in answer["sections"]:
        if name in section["properties"]:
            return section["properties"][name]  # type: ignore[no-any-return]
    names = [n for s in answer["sections"] for n in s["properties"]]
    raise AssertionError(f"no property {name!r} in {answer['path']}: {names}")


def node(ed: Editor, path: str, *properties: str) -> dict[str, Any]:
    body: dict[str, Any] = {"path": path}
    if properties:
        body["properties"] = list(properties)
    return dict(ok(ed, "POST", "/game/node", body))


# --- the editor and the game ---------------------------------------------------------------


@pytest.fixture(scope="module")
def game_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The game's temp dir (TMPDIR), where it writes each screenshot for the bridge."""
    return tmp_path_factory.mktemp("creeps-tmp")


@pytest.fixture(scope="module")
def creeps(
    tmp_path_factory: pytest.TempPathFactory, godot_bin: str, game_tmp: Path
) -> Iterator[Editor]:
    """A headless editor on a copy of the game, started with Godot's port flags only. Its
    sidecar gives the games a virtual display (Xvfb) of its own: they render."""
    project = make_real_project("dodge_the_creeps", tmp_path_factory.mktemp("creeps"))
    ed = Editor(project, flags_only=True, env={"TMPDIR": str(game_tmp)})
    try:
        ed.start()
        ed.wait_until_ready()
        yield ed
    finally:
        ed.stop()


@pytest.fixture
def running(creeps: Editor) -> Iterator[Editor]:
    """The game launched through the bridge (no breakpoints), its Main scene up."""
    launch(creeps)
    try:
        wait_for_main(creeps)
        yield creeps
    finally:
        set_breakpoints(creeps, [])
        terminate(creeps)


def stop_in_process(ed: Editor) -> None:
    """Stops the running game at player.gd's _process (it runs every frame)."""
    since = latest_event(ed)
    set_breakpoints(ed, [PROCESS_FIRST])
    stop = wait_event(ed, since, {"stopped"})
    assert stop["body"]["reason"] == "breakpoint", stop


def go_on(ed: Editor) -> None:
    set_breakpoints(ed, [])
    since = latest_event(ed)
    ok(ed, "POST", "/debug/continue", {"threadId": 1})
    wait_event(ed, since, {"continued"})


def test_issue_13_real_game_tree_has_its_nodes_and_scripts(running: Editor) -> None:
    started = time.monotonic()
    status, answer = call(running, "GET", query("/game/tree", depth=10))
    took = time.monotonic() - started
    assert status == 200, answer
    tree = answer["result"]
    print(f"\ndodge_the_creeps tree: {tree['node_count']} nodes in {took * 1000:.0f} ms")
    main = child(tree["root"], "Main")
    assert main["path"] == "/root/Main" and main["script"] == "res://main.gd"
    assert main["scene_file"] == "res://main.tscn"
    assert [c["name"] for c in main["children"]] == MAIN_CHILDREN
    player = child(main, "Player")
    assert (player["script"], player["scene_file"]) == ("res://player.gd", "res://player.tscn")
    # player.gd's _ready hides it until the Start button's new_game() shows it.
    assert player["visible"] is False
    assert [c["name"] for c in player["children"]] == [
        "AnimatedSprite2D",
        "CollisionShape2D",
        "Trail",
    ]
    assert child(player, "AnimatedSprite2D")["class"] == "AnimatedSprite2D"
    hud = child(main, "HUD")
    assert (hud["script"], hud["scene_file"]) == ("res://hud.gd", "res://hud.tscn")
    assert [c["name"] for c in hud["children"]] == [
        "ScoreLabel",
        "MessageLabel",
        "StartButton",
        "MessageTimer",
    ]
    for timer in ("MobTimer", "ScoreTimer", "StartTimer"):
        assert child(main, timer)["class"] == "Timer"
        assert "script" not in child(main, timer)  # no script: left out
    assert child(child(main, "MobPath"), "MobSpawnLocation")["class"] == "PathFollow2D"
    assert child(main, "ColorRect")["visible"] is True
    # Every node counted, none cut off at depth 10.
    assert tree["truncated"] == 0 and tree["node_count"] >= 1 + 1 + 10 + 3 + 4 + 1

    # A subtree by path, as an agent narrows a big tree down.
    sub = ok(running, "GET", query("/game/tree", path="Main/HUD", depth=0))
    assert sub["root"]["path"] == "/root/Main/HUD" and sub["root"]["child_count"] == 4
    assert sub["root"]["id"] == hud["id"]


def test_issue_13_real_game_node_properties_are_typed(running: Editor) -> None:
    player = node(running, "Main/Player")
    assert player["class"] == "Area2D" and player["script"] == "res://player.gd"
    assert prop(player, "speed") == {"type": "int", "value": 400}
    # Before the game starts the player sits where player.tscn puts it: the origin.
    assert prop(player, "position") == {"type": "Vector2", "value": {"x": 0.0, "y": 0.0}}
    assert prop(player, "visible") == {"type": "bool", "value": False}
    # screen_size was set in _ready from project.godot's [display] 480x720.
    # A script member that is not exported: the inspector shows it under "Members/".
    assert prop(player, "Members/screen_size") == {
        "type": "Vector2",
        "value": {"x": 480.0, "y": 720.0},
    }

    message = node(running, "/root/Main/HUD/MessageLabel", "text", "visible")
    assert message["class"] == "Label"
    assert prop(message, "text") == {"type": "String", "value": "Dodge the\nCreeps"}
    score = node(running, "Main/HUD/ScoreLabel", "text")
    assert prop(score, "text") == {"type": "String", "value": "0"}
    background = node(running, "Main/ColorRect", "color")
    color = prop(background, "color")
    assert color["type"] == "Color"
    # main.tscn's colour; Godot's DAP prints a colour's channels to 4 decimals.
    expected = {"r": 0.219608, "g": 0.372549, "b": 0.380392, "a": 1.0}
    assert color["value"] == pytest.approx(expected, abs=1e-4)
    timer = node(running, "Main/StartTimer", "wait_time", "one_shot")
    assert prop(timer, "wait_time") == {"type": "float", "value": 2.0}
    assert prop(timer, "one_shot") == {"type": "bool", "value": True}
    main = node(running, "Main", "mob_scene")
    assert prop(main, "mob_scene")["value"] == {"resource": "res://mob.tscn"}


def mobs(ed: Editor, busy_for: float = 30) -> list[dict[str, Any]]:
    """The mobs on screen: Main's children with mob.gd, oldest first.

    Right after new_game() the rendering game is busy for a while (its first frames with
    the player's particles and the mobs compile their shaders on a software renderer): a
    frame may take longer than the bridge waits for an answer (a 504, as documented), so
    that is asked again, for up to `busy_for` seconds."""
    deadline = time.monotonic() + busy_for
    while True:
        status, answer = call(ed, "GET", query("/game/tree", path="Main", depth=1))
        if status == 200:
            break
        assert status == 504 and time.monotonic() < deadline, answer
    main = answer["result"]["root"]
    return [c for c in main["children"] if c.get("script") == "res://mob.gd"]


def position(ed: Editor, path: str) -> dict[str, float]:
    return dict(prop(node(ed, path, "position"), "position")["value"])


def test_issue_13_real_game_mobs_move_while_it_runs_not_while_stopped(running: Editor) -> None:
    """What moves in Dodge the Creeps without a player pressing keys: nothing until the
    Start button is pressed. So the test does what the button does, through the debugger:
    stopped in player.gd's _process, it evaluates `get_parent().new_game()`. Then the game
    puts the player on its start position, shows "Get Ready", and after its StartTimer
    (2 s) spawns a mob every half second: a RigidBody2D flying across the screen at
    150-250 px/s (mob.gd, main.gd's _on_MobTimer_timeout). A mob's position changes between
    two reads while the game runs, and not at all while a breakpoint holds the game (its
    physics runs on the main loop the breakpoint stops)."""
    ed = running
    stop_in_process(ed)
    assert evaluate(ed, "get_parent().new_game()") == "<null>"
    # The game's own state while stopped: new_game has run, the frame has not finished.
    assert position(ed, "Main/Player") == START_POSITION
    assert prop(node(ed, "Main/HUD/MessageLabel", "text"), "text")["value"] == "Get Ready"
    go_on(ed)

    deadline = time.monotonic() + 20
    while not mobs(ed):
        assert time.monotonic() < deadline, "no mob came after new_game()"
        time.sleep(0.2)
    mob = mobs(ed)[-1]  # the newest: the furthest from leaving the screen
    assert mob["class"] is None and mob["scene_file"] == "res://mob.tscn"
    first = position(ed, mob["path"])
    time.sleep(0.3)
    second = position(ed, mob["path"])
    assert second != first, (first, second)

    stop_in_process(ed)
    held = {m["path"]: position(ed, m["path"]) for m in mobs(ed)}
    assert held
    time.sleep(0.5)
    assert {m["path"]: position(ed, m["path"]) for m in mobs(ed)} == held
    go_on(ed)
    time.sleep(0.3)
    # Running again, they move on; a mob that left the screen meanwhile is freed by the
    # game (its VisibleOnScreenNotifier2D): gone counts as moved.
    now = {path: position_or_gone(ed, path) for path in held}
    assert any(now[path] != held[path] for path in held), (held, now)


def position_or_gone(ed: Editor, path: str) -> dict[str, float] | None:
    status, answer = call(ed, "POST", "/game/node", {"path": path, "properties": ["position"]})
    if status == 404:
        return None
    assert status == 200, answer
    return dict(prop(answer["result"], "position")["value"])


def read_for_edit(ed: Editor, res: str) -> dict[str, Any]:
    return dict(ok(ed, "GET", query("/edit/read", uri=res)))


def test_issue_13_real_game_an_added_push_error_arrives_at_its_line(creeps: Editor) -> None:
    """As an agent would: add a push_error (and a push_warning) to main.gd through the
    bridge's edit API, launch, and read the record with its res:// file and line."""
    ed = creeps
    original = read_for_edit(ed, "res://main.gd")
    lines = original["text"].splitlines()
    end = {"line": len(lines), "character": 0}
    if not original["text"].endswith("\n"):
        end = {"line": len(lines) - 1, "character": len(lines[-1])}
    edit = {"range": {"start": end, "end": end}, "newText": ADDED_TO_MAIN}
    body = {"uri": "res://main.gd", "edits": [edit], "expected_sha256": original["sha256"]}
    ok(ed, "POST", "/edit/applyChanges", body)
    try:
        edited = read_for_edit(ed, "res://main.gd")["text"].splitlines()
        error_line = next(i + 1 for i, t in enumerate(edited) if "push_error(" in t)
        warning_line = next(i + 1 for i, t in enumerate(edited) if "push_warning(" in t)
        since = ok(ed, "GET", "/game/errors")["latest"]
        launch(ed)
        # The long-poll wakes on each new error; a rendering game has errors of its own
        # too (no sound card: ALSA's), left aside here.
        first: dict[str, Any] | None = None
        deadline = time.monotonic() + 30
        while first is None:
            assert time.monotonic() < deadline, "the added push_error never arrived"
            page = ok(ed, "GET", query("/game/errors", since=since, wait=5, warnings="false"))
            woke = time.time()
            ours = [e for e in page["errors"] if PUSHED_AT.match(e["message"])]
            first = ours[0] if ours else None
            since = page["next"]
        assert (first["file"], first["line"], first["function"]) == (
            "res://main.gd",
            error_line,
            "_process",
        )
        assert not first["is_warning"] and first["stack"][0]["file"] == "res://main.gd"
        pushed = PUSHED_AT.match(first["message"])
        assert pushed, first
        received = first["time"] - float(pushed.group(1))
        read = woke - float(pushed.group(1))
        print(f"\ncreeps error: recorded {received * 1000:.0f} ms, read {read * 1000:.0f} ms")
        assert received < 1.0 and read < 1.0
        # And the next ones, pushed every half second, each recorded within the second too.
        delays = [received]
        since = first["seq"]
        while len(delays) < 5:
            later = wait_error(ed, since, lambda e: e["message"].startswith("creeps-error at "))
            assert (later["file"], later["line"]) == ("res://main.gd", error_line), later
            pushed = PUSHED_AT.match(later["message"])
            assert pushed, later
            delays.append(later["time"] - float(pushed.group(1)))
            since = later["seq"]
        delays.sort()
        print(f"creeps errors recorded after (ms): {[round(d * 1000) for d in delays]}")
        assert delays[-1] < 1.0, delays

        # The warning, for a reader who did not leave warnings out.
        warning = wait_error(
            ed, first["seq"], lambda e: e["is_warning"] and PUSHED_AT.match(e["message"])
        )
        assert (warning["file"], warning["line"]) == ("res://main.gd", warning_line)
        assert warning["message"].startswith("creeps-warning at ")
        game = ok_json(ed, "GET", "/status")["game"]
        assert game["errors_by_file"].get("res://main.gd", 0) >= 1, game
        assert game["warnings_by_file"].get("res://main.gd", 0) >= 1, game
    finally:
        terminate(ed)
        ok(ed, "POST", "/edit/applyChanges", {"uri": "res://main.gd", "text": original["text"]})
        assert (ed.project / "main.gd").read_text(encoding="utf-8") == original["text"]


def wait_error(ed: Editor, since: int, wanted: Any, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = ok(ed, "GET", query("/game/errors", since=since, wait=2))
        for error in page["errors"]:
            if wanted(error):
                return dict(error)
        since = page["next"]
    raise AssertionError("no such game error")


# --- screenshots ---------------------------------------------------------------------------

WINDOW = (480, 720)  # project.godot's [display] window size
BACKGROUND = (56, 95, 97)  # main.tscn's ColorRect, Color(0.219608, 0.372549, 0.380392)
RENDER_WAIT = 60.0  # seconds for the first frames on a software renderer, under load


def near(pixel: Any, colour: tuple[int, int, int], slack: int = 8) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


def png_of(shot: dict[str, Any]) -> Image.Image:
    data = base64.b64decode(shot["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) == shot["png_bytes"]
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def shown_screenshot(ed: Editor) -> dict[str, Any]:
    """A screenshot once the game shows its scene (the first frames may come before)."""
    deadline = time.monotonic() + RENDER_WAIT
    last: Any = None
    while time.monotonic() < deadline:
        last = call(ed, "GET", "/game/screenshot")
        status, answer = last
        if status == 200 and near(png_of(answer["result"]).getpixel((5, 5)), BACKGROUND):
            return dict(answer["result"])
        time.sleep(0.3)
    raise AssertionError(f"no screenshot showing the scene: {str(last)[:500]}")


def share(image: Image.Image, box: tuple[int, int, int, int], test: Any) -> float:
    """The share of the pixels in `box` (left, top, right, bottom) that pass `test`."""
    data = image.crop(box).tobytes()  # RGB
    pixels = [data[i : i + 3] for i in range(0, len(data), 3)]
    return sum(1 for p in pixels if test(p)) / len(pixels)


def test_issue_13_real_game_screenshot_shows_the_scene(running: Editor, game_tmp: Path) -> None:
    shot = shown_screenshot(running)
    assert (shot["width"], shot["height"]) == (shot["game_width"], shot["game_height"]) == WINDOW
    image = png_of(shot)
    assert image.size == WINDOW
    image.save(game_tmp.parent / "creeps-screenshot.png")  # for a human who looks
    # The background fills the window where nothing is drawn.
    for corner in ((5, 5), (474, 5), (5, 714), (474, 714)):
        assert near(image.getpixel(corner), BACKGROUND), (corner, image.getpixel(corner))
    white = lambda p: min(p) > 200  # noqa: E731
    background = lambda p: near(p, BACKGROUND)  # noqa: E731
    # The HUD's title, "Dodge the / Creeps" in white, across the middle of the window.
    assert share(image, (0, 280, 480, 440), white) > 0.05
    # The score "0" in white at the top, centred.
    assert share(image, (200, 0, 280, 78), white) > 0.05
    assert share(image, (0, 0, 150, 78), white) == 0
    # The Start button (180x100, 100 px above the bottom): its box, not the background.
    assert share(image, (155, 525, 325, 615), background) < 0.2
    assert share(image, (0, 525, 140, 615), background) > 0.95

    # Accept: image/png is the PNG itself.
    req = urllib.request.Request(
        running.base_url + "/game/screenshot", headers={"Accept": "image/png", "X-Agent-Id": AGENT}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(resp.read())).size == WINDOW
    assert not list(game_tmp.glob("scr-*.png"))  # the bridge leaves no file behind
    assert "--headless" not in game_processes(running)[0].cmdline()


# --- issue 14: two agents, one holding the controls ----------------------------------------


def test_issue_14_real_game_lease_contention(creeps: Editor) -> None:
    """A takes the control lease and launches the game; B's control requests are refused
    naming A and when the lease ends, while B reads the game's tree and nodes."""
    pilot, watcher = "creeps-pilot", "creeps-watcher-b"

    def as_(agent: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call_json(creeps, method, path, body, agent)

    status, taken = as_(pilot, "POST", "/control/lease", {"ttl": 120})
    assert status == 200 and taken["result"]["holder"] == pilot, taken
    try:
        for _attempt in range(3):  # Godot's adapter may miss the liveness probe under load
            status, launched = as_(pilot, "POST", "/debug/launch", {"scene": "main"})
            if status != 503:
                break
            creeps.wait_until_ready()
        assert status == 200, launched
        wait_for_main(creeps)

        for path in ("/debug/pause", "/debug/terminate", "/debug/launch"):
            status, refused = as_(watcher, "POST", path, {"scene": "main"})
            assert status == 409, (path, refused)
            error = refused["error"]
            assert (error["code"], error["holder"]) == ("lease_held", pilot), refused
            assert 0 < error["expires_in_s"] <= 120, refused
        assert ok_json(creeps, "GET", "/status", agent=watcher)["control"]["holder"] == pilot

        # Reading stays open to the watcher: the tree and a node of the running game.
        status, tree = as_(watcher, "GET", query("/game/tree", depth=2))
        assert status == 200, tree
        main = child(tree["result"]["root"], "Main")
        assert [c["name"] for c in main["children"]] == MAIN_CHILDREN
        status, player = as_(watcher, "POST", "/game/node", {"path": "Main/Player"})
        assert status == 200 and player["result"]["script"] == "res://player.gd", player
        assert game_processes(creeps), "the watcher's refused terminate ended the game"

        trail = ok_json(creeps, "GET", query("/audit", agent=watcher), agent=pilot)["records"]
        assert [r["outcome"].get("code") for r in trail[-3:]] == ["lease_held"] * 3
    finally:
        as_(pilot, "POST", "/control/release", {})
    # Released: the watcher's control works again.
    assert as_(watcher, "POST", "/debug/terminate", {})[0] == 200
    terminate(creeps)


def test_issue_14_real_game_player_moves_with_injected_input(running: Editor) -> None:
    """Dodge the Creeps played with injected input: a click on the HUD's Start button (a
    GUI Button: the click goes through the GUI as a real one does) starts a game, then
    `move_right` held for 30 frames moves the Player right (player.gd reads
    `Input.is_action_pressed(&"move_right")` in _process), and the physical D key (what
    the game binds to move_right) does too. Nothing of the game is changed for it."""
    ed = running
    centre = ok(
        ed,
        "POST",
        "/game/evaluate",
        {"expression": "get_global_rect().get_center()", "path": "Main/HUD/StartButton"},
    )["value"]
    assert ok(ed, "POST", "/game/evaluate", {"expression": "visible", "path": "Main/Player"}) == {
        "type": "bool",
        "value": False,
        "self": "/root/Main/Player",
    }
    ok(ed, "POST", "/game/input", {"steps": [{"type": "mouse_button", "position": centre}]})
    deadline = time.monotonic() + 10
    while not ok(ed, "POST", "/game/evaluate", {"expression": "visible", "path": "Main/Player"})[
        "value"
    ]:
        assert time.monotonic() < deadline, "the Start button click did not start a game"
        time.sleep(0.1)
    assert position(ed, "Main/Player") == START_POSITION  # new_game() put it there
    done = ok(
        ed,
        "POST",
        "/game/input",
        {"steps": [{"type": "action", "action": "move_right", "frames": 30}]},
    )
    assert done["frames"] >= 31, done
    moved = position(ed, "Main/Player")
    # 400 px/s for 30 frames: far to the right, clamped at the window's edge (480).
    assert moved["x"] > START_POSITION["x"] + 20 and moved["y"] == START_POSITION["y"], moved
    ok(
        ed,
        "POST",
        "/game/set_property",
        {"path": "Main/Player", "property": "position", "value": START_POSITION},
    )
    key = {"type": "key", "key": "D", "physical": True, "frames": 10}
    ok(ed, "POST", "/game/input", {"steps": [key]})
    assert position(ed, "Main/Player")["x"] > START_POSITION["x"], (
        "the physical D key did not move it"
    )
    # Back to the left with the arrow key, as a keyboard sends it (keycode and physical).
    before = position(ed, "Main/Player")["x"]
    ok(ed, "POST", "/game/input", {"steps": [{"type": "key", "key": "Left", "frames": 10}]})
    assert position(ed, "Main/Player")["x"] < before


# --- issue 14: breakpoints Godot does not have -------------------------------------------

MAIN_GD = (GAME / "main.gd").read_text(encoding="utf-8").splitlines()
# In _on_ScoreTimer_timeout, right after `score += 1`: once a second while a game is on.
SCORE_SHOWN = next(i + 1 for i, line in enumerate(MAIN_GD) if "score += 1" in line) + 1


def set_main_breakpoints(ed: Editor, agent: str, breakpoints: list[dict[str, Any]]) -> Any:
    body = {"source": {"path": "res://main.gd"}, "breakpoints": breakpoints}
    return ok_json(ed, "POST", "/debug/setBreakpoints", body, agent)["breakpoints"]


def test_issue_14_real_game_a_conditional_breakpoint_stops_when_the_score_crosses_2(
    running: Editor,
) -> None:
    """A game is started as the Start button does (new_game(), the player made
    untouchable so that no mob ends it); the score goes up once a second. A breakpoint
    with `score >= 2` where the score is shown stops the game once, at 2: the hit at 1 was
    let run on unseen, as a second agent's logpoint on that line shows."""
    ed = running
    stop_in_process(ed)
    assert evaluate(ed, "get_parent().new_game()") == "<null>"
    evaluate(ed, 'set_deferred("monitoring", false)')  # mobs fly through the player
    try:
        (bp,) = set_main_breakpoints(ed, AGENT, [{"line": SCORE_SHOWN, "condition": "score >= 2"}])
        assert bp["verified"] is True
        logpoint = {"line": SCORE_SHOWN, "logMessage": "score is {score}"}
        set_main_breakpoints(ed, "creeps-logger", [logpoint])
        since = latest_event(ed)
        set_breakpoints(ed, [])  # off player.gd: only main.gd's are left
        ok(ed, "POST", "/debug/continue", {"threadId": 1})

        stop = wait_event(ed, since, {"stopped"}, timeout=60)
        assert stop["body"]["reason"] == "breakpoint", stop
        assert stop["body"]["line"] == SCORE_SHOWN and stop["body"]["hit_by"] == [AGENT]
        assert stop["body"]["hits"] == [{"agent": AGENT, "why": "condition", "hitCount": 1}]
        assert evaluate(ed, "score") == "2"
        page = ok(ed, "GET", query("/debug/events", since=since))
        seen = [(e["event"], e["body"]) for e in page["events"]]
        logged = [b["message"] for kind, b in seen if kind == "output" and b.get("logpoint")]
        assert logged[:2] == ["score is 1", "score is 2"], seen
        assert [kind for kind, _ in seen].count("stopped") == 1, seen
    finally:
        set_main_breakpoints(ed, AGENT, [])
        set_main_breakpoints(ed, "creeps-logger", [])

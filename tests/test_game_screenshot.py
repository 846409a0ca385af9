"""/game/screenshot against a real headless editor whose sidecar gives the games a display
of its own (an Xvfb it starts and stops; no GODOT_BRIDGE_GAME_DISPLAY in the environment),
and the demo game (demo/main.tscn: `Marker`, a magenta ColorRect at 100,120 200x80).

The game writes each screenshot into its temp dir (TMPDIR, a directory of this module's
own here): the bridge must leave no `scr-*.png` behind.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest
from harness import Editor, call_json, game_processes, make_demo_project, ok_json
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ImageContent, TextContent
from PIL import Image

from sidecar.godot.display import INSTALL_HINT

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None, reason=f"Xvfb is not installed: {INSTALL_HINT}"
)

GAME_SIZE = (1152, 648)  # the demo project's window (Godot's default viewport)
MARKER = (100, 120, 200, 80)  # x, y, width, height of demo/main.tscn's Marker
MAGENTA = (255, 0, 255)
RENDER_WAIT = 60.0  # seconds for the game's first frames on a software renderer, under load


def near(pixel: Any, colour: tuple[int, int, int], slack: int = 8) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


def png_of(answer: dict[str, Any]) -> Image.Image:
    """The answer's PNG as RGB pixels, checking it is one."""
    assert answer["format"] == "png"
    data = base64.b64decode(answer["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) == answer["png_bytes"]
    return Image.open(io.BytesIO(data)).convert("RGB")


def centre(rect: tuple[int, int, int, int]) -> tuple[int, int]:
    x, y, w, h = rect
    return x + w // 2, y + h // 2


def raw_get(editor: Editor, path: str, accept: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        editor.base_url + path, headers={"Accept": accept, "X-Agent-Id": "tester"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_connected(editor: Editor) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status = ok_json(editor, "GET", "/status")
        if (
            status["debug_adapter"]["state"] == "connected"
            and status["game_display"]["mode"] != "unknown"
        ):
            return status  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def shown_screenshot(editor: Editor, **query: Any) -> dict[str, Any]:
    """A screenshot once the game shows its scene (the first frames may come before)."""
    deadline = time.monotonic() + RENDER_WAIT
    last: Any = None
    path = "/game/screenshot" + (
        "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    )
    while time.monotonic() < deadline:
        status, answer = call_json(editor, "GET", path)
        last = (status, answer)
        if status == 200:
            shot = answer["result"]
            image = png_of(shot)
            scale = shot["width"] / GAME_SIZE[0]
            x, y = centre(MARKER)
            if near(image.getpixel((int(x * scale), int(y * scale))), MAGENTA, 24):
                return shot  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"no screenshot showing the scene: {str(last)[:500]}")


# A scene the step test walks through: its yellow square is moved by two lines of
# `_process`, one step each, while the game is stopped at a breakpoint on the first.
STEP_GD = """extends Node2D
## A yellow square that two steps move.

var frames: int = 0


func _draw() -> void:
	draw_rect(Rect2(0, 0, 60, 60), Color(1, 1, 0))


func _process(_delta: float) -> void:
	frames += 1
	if frames == 20:
		position = Vector2(100, 300)
		position = Vector2(700, 300)
		print("step: moved")
"""
STEP_LINE = 14  # `position = Vector2(100, 300)`
STEP_TSCN = """[gd_scene load_steps=2 format=3]

[ext_resource type="Script" path="res://shot/step.gd" id="1"]

[node name="Step" type="Node2D"]
position = Vector2(400, 300)
script = ExtResource("1")
"""
YELLOW = (255, 255, 0)
SQUARE = 60


def yellow_at(image: Image.Image, x: int) -> bool:
    """Whether the square (60x60, top at y=300) is drawn with its left edge at `x`."""
    return near(image.getpixel((x + SQUARE // 2, 300 + SQUARE // 2)), YELLOW)


def launch(editor: Editor, body: dict[str, Any] | None = None) -> None:
    """POST /debug/launch, again after a 503 (a fresh editor busy importing may miss the
    debug adapter's liveness probe, and the bridge says to retry)."""
    deadline = time.monotonic() + 60
    while True:
        status, answer = call_json(editor, "POST", "/debug/launch", body or {})
        if status == 200:
            return
        assert status == 503 and time.monotonic() < deadline, answer
        time.sleep(1.0)


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("scr-*.png"))


@pytest.fixture(scope="module")
def game_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("game-tmp")


@pytest.fixture(scope="module")
def shot_editor(
    tmp_path_factory: pytest.TempPathFactory, godot_bin: str, game_tmp: Path
) -> Iterator[Editor]:
    """A headless editor on the demo project; no GODOT_BRIDGE_GAME_DISPLAY anywhere."""
    project = make_demo_project(tmp_path_factory.mktemp("project"))
    (project / "shot").mkdir()
    (project / "shot" / "step.gd").write_text(STEP_GD, encoding="utf-8")
    (project / "shot" / "step.tscn").write_text(STEP_TSCN, encoding="utf-8")
    saved = os.environ.pop("GODOT_BRIDGE_GAME_DISPLAY", None)
    ed = Editor(project, env={"TMPDIR": str(game_tmp)})
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()
        if saved is not None:
            os.environ["GODOT_BRIDGE_GAME_DISPLAY"] = saved


@pytest.fixture
def game(shot_editor: Editor) -> Iterator[Editor]:
    wait_connected(shot_editor)
    launch(shot_editor)
    try:
        yield shot_editor
    finally:
        call_json(shot_editor, "POST", "/debug/terminate", {})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if call_json(shot_editor, "GET", "/game/screenshot")[0] == 409:
                break
            time.sleep(0.2)


def test_issue_13_the_sidecar_gives_a_headless_editor_s_games_a_display(
    shot_editor: Editor,
) -> None:
    status = wait_connected(shot_editor)
    display = status["game_display"]
    assert display["mode"] == "virtual", display
    assert display["display"].startswith(":") and "Xvfb" in display["reason"], display
    xvfb = [
        p for p in psutil.Process(shot_editor.sidecar_pids()[0]).children() if p.name() == "Xvfb"
    ]
    assert len(xvfb) == 1 and display["display"] in xvfb[0].cmdline()


def test_issue_13_no_game_is_409(shot_editor: Editor) -> None:
    wait_connected(shot_editor)
    status, answer = call_json(shot_editor, "GET", "/game/screenshot")
    assert status == 409 and answer["error"]["code"] == "not_running", answer


def test_issue_13_screenshot_shows_the_game(game: Editor, game_tmp: Path) -> None:
    shot = shown_screenshot(game)
    assert (shot["width"], shot["height"]) == GAME_SIZE
    assert (shot["game_width"], shot["game_height"]) == GAME_SIZE
    image = png_of(shot)
    assert image.size == GAME_SIZE
    assert near(image.getpixel(centre(MARKER)), MAGENTA)
    x, y, w, h = MARKER
    assert not near(image.getpixel((x - 10, y + h // 2)), MAGENTA)  # its left edge is there
    assert not near(image.getpixel((x + w // 2, y + h + 10)), MAGENTA)
    games = game_processes(game)
    assert games and "--headless" not in games[0].cmdline()
    assert leftovers(game_tmp) == []


def test_issue_13_png_when_asked_for_and_max_width(game: Editor, game_tmp: Path) -> None:
    shown_screenshot(game)
    status, headers, body = raw_get(game, "/game/screenshot", "image/png")
    assert status == 200 and headers["Content-Type"] == "image/png", (status, body[:200])
    image = Image.open(io.BytesIO(body))
    assert image.format == "PNG" and image.size == GAME_SIZE
    status, headers, body = raw_get(game, "/game/screenshot?max_width=320", "image/*")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (320, 180)
    # JSON is the default; a browser's Accept prefers the image.
    status, headers, body = raw_get(game, "/game/screenshot", "*/*")
    assert headers["Content-Type"].startswith("application/json")
    small = ok_json(game, "POST", "/game/screenshot", {"max_width": 576})
    assert (small["width"], small["height"]) == (576, 324)
    assert (small["game_width"], small["game_height"]) == GAME_SIZE
    image = png_of(small)
    x, y = centre(MARKER)
    assert near(image.getpixel((x // 2, y // 2)), MAGENTA, 24)
    status, answer = call_json(game, "GET", "/game/screenshot?max_width=3")
    assert status == 400 and answer["error"]["field"] == "max_width", answer
    assert leftovers(game_tmp) == []


def next_stop(editor: Editor, since: int, timeout: float = 60.0) -> tuple[dict[str, Any], int]:
    """The next `stopped` event after `since`, and the cursor after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = ok_json(editor, "GET", f"/debug/events?since={since}&wait=2")
        for event in page["events"]:
            if event["event"] == "stopped":
                return event, event["seq"]
        since = page["next"]
    raise AssertionError("the game never stopped")


def test_issue_13_screenshot_while_stopped_and_after_each_step(
    shot_editor: Editor, game_tmp: Path
) -> None:
    """Stopped at a breakpoint, the game still answers; each step's change is in the next
    screenshot (the bridge has the stopped game redraw before it takes one)."""
    editor = shot_editor
    wait_connected(editor)
    source = {"source": {"path": "res://shot/step.gd"}}
    ok_json(
        editor, "POST", "/debug/setBreakpoints", {**source, "breakpoints": [{"line": STEP_LINE}]}
    )
    since = ok_json(editor, "GET", "/debug/events")["latest"]
    launch(editor, {"scene": "res://shot/step.tscn"})
    try:
        stop, since = next_stop(editor, since)
        assert stop["body"].get("line") == STEP_LINE, stop
        before = png_of(ok_json(editor, "GET", "/game/screenshot"))
        assert yellow_at(before, 400) and not yellow_at(before, 100)
        ok_json(editor, "POST", "/debug/next", {})
        _, since = next_stop(editor, since)
        one = png_of(ok_json(editor, "GET", "/game/screenshot"))
        assert yellow_at(one, 100) and not yellow_at(one, 400), "the step's move is not shown"
        ok_json(editor, "POST", "/debug/next", {})
        _, since = next_stop(editor, since)
        two = png_of(ok_json(editor, "GET", "/game/screenshot"))
        assert yellow_at(two, 700) and not yellow_at(two, 100)
        assert leftovers(game_tmp) == []
    finally:
        ok_json(editor, "POST", "/debug/setBreakpoints", {**source, "breakpoints": []})
        call_json(editor, "POST", "/debug/terminate", {})


def test_issue_13_agents_asking_at_once_share_one_screenshot(game: Editor) -> None:
    shown_screenshot(game)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ok_json(game, "GET", "/game/screenshot"), range(4)))
    taken = {a["taken_at"] for a in answers}
    assert len(taken) < len(answers), taken  # at least two shared one request's answer
    assert all(png_of(a).size == GAME_SIZE for a in answers)


async def _mcp_screenshot(url: str) -> Any:
    http = httpx2.AsyncClient(headers={"X-Agent-Id": "looker"}, timeout=60)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        return await client.call_tool("game_screenshot", {"max_width": 320})


def test_issue_13_mcp_screenshot_is_an_image_block(game: Editor) -> None:
    shown_screenshot(game)
    result = asyncio.run(_mcp_screenshot(game.base_url + "/mcp"))
    assert not result.is_error, result.content
    image, text = result.content
    assert isinstance(image, ImageContent) and image.mime_type == "image/png"
    png = base64.b64decode(image.data)
    assert Image.open(io.BytesIO(png)).size == (320, 180)
    assert isinstance(text, TextContent)
    said = json.loads(text.text)
    assert (said["width"], said["height"], said["png_bytes"]) == (320, 180, len(png))
    assert "data" not in said and "data" not in (result.structured_content or {})
    assert result.structured_content is not None
    assert result.structured_content["game_width"] == GAME_SIZE[0]


def test_issue_13_without_a_display_the_screenshot_says_how_to_get_one(
    tmp_path: Path, godot_bin: str
) -> None:
    editor = Editor(
        make_demo_project(tmp_path / "project"), env={"GODOT_BRIDGE_GAME_DISPLAY": "off"}
    )
    try:
        editor.start()
        status = wait_connected(editor)
        assert status["game_display"]["mode"] == "headless", status["game_display"]
        assert "GODOT_BRIDGE_GAME_DISPLAY=off" in status["game_display"]["reason"]
        assert not [
            p for p in psutil.Process(editor.sidecar_pids()[0]).children() if p.name() == "Xvfb"
        ]
        launch(editor)
        deadline = time.monotonic() + 30
        while not game_processes(editor):
            assert time.monotonic() < deadline, "no game"
            time.sleep(0.1)
        assert "--headless" in game_processes(editor)[0].cmdline()
        status_code, answer = call_json(editor, "GET", "/game/screenshot")
        assert status_code == 409 and answer["error"]["code"] == "no_display", answer
        message = answer["error"]["message"]
        assert "headless" in message and INSTALL_HINT in message, message
    finally:
        editor.stop()


def test_issue_13_the_xvfb_ends_with_its_sidecar(tmp_path: Path, godot_bin: str) -> None:
    editor = Editor(make_demo_project(tmp_path / "project"))
    try:
        editor.start()
        assert wait_connected(editor)["game_display"]["mode"] == "virtual"
        sidecar = psutil.Process(editor.sidecar_pids()[0])
        (xvfb,) = [p for p in sidecar.children() if p.name() == "Xvfb"]
        sidecar.send_signal(signal.SIGTERM)  # a clean stop: the sidecar stops its Xvfb
        gone, _ = psutil.wait_procs([sidecar, xvfb], timeout=20)
        assert {p.pid for p in gone} == {sidecar.pid, xvfb.pid}
    finally:
        editor.stop()

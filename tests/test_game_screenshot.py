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
from harness import (
    Editor,
    call_json,
    game_processes,
    make_demo_project,
    needs_xvfb,
    ok_json,
    wait_connected,
)
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ImageContent, TextContent
from PIL import Image

from sidecar.api import openapi
from sidecar.api.game_screenshot import GAME_SCREENSHOT, scaled
from sidecar.api.mcp.tools import output_schema
from sidecar.client.client import BridgeClient
from sidecar.errors import PeerTimeout, ProtocolError, RequestError, SidecarError
from sidecar.godot.display import INSTALL_HINT
from sidecar.godot.game import channel as channel_module
from sidecar.godot.game.channel import (
    REDRAW,
    RQ_SCREENSHOT,
    SCREENSHOT_FUNCTION,
    GameChannel,
)
from sidecar.godot.game.messages import SCREENSHOT
from sidecar.godot.game_display import godot_version
from sidecar.web.http import prefers

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


@needs_xvfb
def test_issue_13_the_sidecar_gives_a_headless_editor_s_games_a_display(
    shot_editor: Editor,
) -> None:
    status = wait_connected(shot_editor)
    display = status["game_display"]
    assert display["mode"] == "virtual", display
    assert display["display"].startswith(":") and "Xvfb" in display["reason"], display
    sidecar = psutil.Process(shot_editor.sidecar_pids()[0])
    xvfb = [p for p in sidecar.children(recursive=True) if p.name() == "Xvfb"]
    assert len(xvfb) == 1 and display["display"] in xvfb[0].cmdline()


@needs_xvfb
def test_issue_13_no_game_is_409(shot_editor: Editor) -> None:
    wait_connected(shot_editor)
    status, answer = call_json(shot_editor, "GET", "/game/screenshot")
    assert status == 409 and answer["error"]["code"] == "not_running", answer


@needs_xvfb
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


@needs_xvfb
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
    client = BridgeClient(game.base_url, agent="clio")
    assert Image.open(io.BytesIO(client.game_screenshot_png(max_width=320))).size == (320, 180)
    assert client.game_screenshot(max_width=320)["width"] == 320
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


@needs_xvfb
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


@needs_xvfb
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


@needs_xvfb
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
        sidecar = psutil.Process(editor.sidecar_pids()[0])
        assert not [p for p in sidecar.children(recursive=True) if p.name() == "Xvfb"]
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


@needs_xvfb
def test_issue_13_the_xvfb_ends_with_its_sidecar(tmp_path: Path, godot_bin: str) -> None:
    editor = Editor(make_demo_project(tmp_path / "project"))
    try:
        editor.start()
        assert wait_connected(editor)["game_display"]["mode"] == "virtual"
        sidecar = psutil.Process(editor.sidecar_pids()[0])
        (xvfb,) = [p for p in sidecar.children(recursive=True) if p.name() == "Xvfb"]
        sidecar.send_signal(signal.SIGTERM)  # a clean stop, no game: it stops its Xvfb
        gone, _ = psutil.wait_procs([sidecar, xvfb], timeout=20)
        assert {p.pid for p in gone} == {sidecar.pid, xvfb.pid}
    finally:
        editor.stop()


@needs_xvfb
def test_issue_13_a_game_keeps_its_display_across_a_sidecar_restart(
    tmp_path: Path, godot_bin: str
) -> None:
    """A sidecar leaving while its game renders leaves the Xvfb to it; the next sidecar
    takes the same display; the Xvfb ends with the editor."""
    editor = Editor(make_demo_project(tmp_path / "project"))
    try:
        editor.start()
        display = wait_connected(editor)["game_display"]["display"]
        launch(editor)
        shown_screenshot(editor)
        (game,) = game_processes(editor)
        (old,) = editor.sidecar_pids()
        (xvfb,) = [p for p in psutil.Process(old).children(recursive=True) if p.name() == "Xvfb"]
        os.kill(old, signal.SIGTERM)
        psutil.wait_procs([psutil.Process(old)], timeout=20)
        deadline = time.monotonic() + 60
        while not (set(editor.sidecar_pids()) - {old}):
            assert time.monotonic() < deadline, "no new sidecar"
            time.sleep(0.2)
        editor.wait_until_serving()
        status = wait_connected(editor)
        assert status["game_display"]["display"] == display, status["game_display"]
        assert "earlier sidecar" in status["game_display"]["reason"]
        assert game.is_running() and xvfb.is_running()
        # The new sidecar learns the game runs from its output (a tick a second).
        shown_screenshot(editor)
        os.kill(editor.pid, signal.SIGKILL)
        gone, _ = psutil.wait_procs([xvfb], timeout=20)
        assert gone, "the Xvfb outlived its editor"
    finally:
        editor.stop()


# -- unit tests: no editor ------------------------------------------------------------------


class FakeGame:
    """A DAP session whose game answers screenshot requests as the test says."""

    def __init__(
        self, tmp: Path, drop_first: int = 0, stopped: bool = False, errors_first: int = 0
    ) -> None:
        self.tmp = tmp
        self.drop_first = drop_first
        self.errors_first = errors_first  # "no image" errors before its first frame
        self.running = True
        self.stopped: Any = object() if stopped else None
        self.sent: list[tuple[str, list[Any]]] = []
        self.channel: GameChannel | None = None
        self.answer_with: str = "screenshot"

    async def put_msg(
        self, agent: str, message: str, data: list[Any], answer: str, **_: Any
    ) -> Any:
        self.sent.append((message, data))
        if message != RQ_SCREENSHOT:
            return None
        assert self.channel is not None
        if len([m for m, _ in self.sent if m == RQ_SCREENSHOT]) <= self.drop_first:
            return None  # a game still starting drops it
        asked = len([m for m, _ in self.sent if m == RQ_SCREENSHOT]) - self.drop_first
        if self.answer_with == "error" or asked <= self.errors_first:
            # [h, m, s, ms, file, function, line, error, description, warning, stack size]
            error = [0, 0, 1, 2, "scene/debugger/scene_debugger.cpp", SCREENSHOT_FUNCTION, 120]
            error += ['Condition "img.is_null()" is true.', "Cannot get an image", False, 0]
            asyncio.get_running_loop().call_soon(self.channel.feed, "error", error)
            return None
        path = self.tmp / f"scr-{data[0]}.png"
        path.write_bytes(_tiny_png())
        request_id = float(data[0])  # as Godot sends it back
        answer_data = [request_id, 4, 2, str(path)]
        asyncio.get_running_loop().call_soon(self.channel.feed, SCREENSHOT, answer_data)
        return None


def _tiny_png(size: tuple[int, int] = (4, 2)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (255, 0, 255)).save(out, format="PNG")
    return out.getvalue()


def _channel(game: FakeGame) -> GameChannel:
    channel = GameChannel(game)
    game.channel = channel
    return channel


async def test_issue_13_a_dropped_request_is_sent_again_and_its_late_file_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_module, "RESEND_AFTER", 0.05)
    game = FakeGame(tmp_path, drop_first=2)
    channel = _channel(game)
    shot = await channel.screenshot("a")
    assert shot.attempts == 3 and (shot.width, shot.height) == (4, 2)
    assert shot.png == _tiny_png()
    assert leftovers(tmp_path) == []  # read and deleted
    # A late answer to one of the dropped requests: nobody awaits it, its file goes too.
    late = tmp_path / "scr-late.png"
    late.write_bytes(b"x")
    channel.feed(SCREENSHOT, [float(game.sent[0][1][0]), 4, 2, str(late)])
    assert not late.exists()
    # Someone else's (the editor's Game view numbers its own from 0): left alone.
    theirs = tmp_path / "scr-theirs.png"
    theirs.write_bytes(b"x")
    channel.feed(SCREENSHOT, [0.0, 4, 2, str(theirs)])
    assert theirs.exists()


async def test_issue_13_only_scr_png_files_are_read_or_deleted(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    game = FakeGame(tmp_path)
    channel = _channel(game)
    channel._sent(7)
    channel.feed(SCREENSHOT, [7.0, 4, 2, str(precious)])
    assert precious.read_text() == "keep me"
    with pytest.raises(ProtocolError):
        channel_module._take_file(str(precious))


async def test_issue_13_a_game_that_cannot_render_is_409_no_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_module, "SCREENSHOT_WAIT", 0.3)
    monkeypatch.setattr(channel_module, "RESEND_AFTER", 0.05)
    game = FakeGame(tmp_path)
    game.answer_with = "error"
    with pytest.raises(RequestError) as err:
        await _channel(game).screenshot("a")
    assert err.value.code == "no_display" and err.value.status == 409
    assert INSTALL_HINT in err.value.message


async def test_issue_13_a_game_before_its_first_frame_is_asked_again_not_409(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rendering game asked before its first frame answers "Cannot get an image" (seen by
    # the dashboard right after a launch): that is not "no display" yet.
    monkeypatch.setattr(channel_module, "RESEND_AFTER", 0.05)
    game = FakeGame(tmp_path, errors_first=2)
    shot = await _channel(game).screenshot("a")
    assert shot.attempts == 3 and shot.png == _tiny_png()


async def test_issue_13_a_stopped_game_is_redrawn_before_its_screenshot(tmp_path: Path) -> None:
    game = FakeGame(tmp_path, stopped=True)
    await _channel(game).screenshot("a")
    assert [m for m, _ in game.sent] == [REDRAW, RQ_SCREENSHOT]
    running = FakeGame(tmp_path)
    await _channel(running).screenshot("a")
    assert [m for m, _ in running.sent] == [RQ_SCREENSHOT]


async def test_issue_13_a_silent_game_is_504(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_module, "SCREENSHOT_WAIT", 0.3)
    monkeypatch.setattr(channel_module, "RESEND_AFTER", 0.05)
    game = FakeGame(tmp_path, drop_first=1000)
    with pytest.raises(PeerTimeout) as err:
        await _channel(game).screenshot("a")
    assert err.value.status == 504 and "rq_screenshot" in err.value.message


@pytest.mark.parametrize(
    ("version", "allowed"), [((4, 3), False), ((4, 4), False), ((4, 5), True), ((4, 7), True)]
)
async def test_issue_13_screenshots_need_godot_4_5(
    tmp_path: Path, version: tuple[int, int], allowed: bool
) -> None:
    game = FakeGame(tmp_path)
    channel = _channel(game)
    channel.godot_version = version
    if allowed:
        assert (await channel.screenshot("a")).width == 4
        return
    with pytest.raises(SidecarError) as err:
        await channel.screenshot("a")
    assert err.value.code == "unsupported_by_godot" and err.value.status == 501
    assert f"Godot {version[0]}.{version[1]}" in err.value.message and "4.5" in err.value.message
    assert game.sent == []  # never asked: an old game would stay silent


def test_issue_13_every_game_message_has_its_first_godot_version() -> None:
    channel = GameChannel(FakeGame(Path("/nonexistent")))
    channel.godot_version = (4, 3)
    for message in (
        "scene:request_scene_tree",
        "scene:inspect_object",
        "performance:profile_frame",
    ):
        channel.require_message(message, "x")  # there since 4.0: no 501 on 4.3
    with pytest.raises(SidecarError):
        channel.require_message("scene:inspect_objects", "x")
    assert godot_version("4.6.3.stable.official") == (4, 6)
    assert godot_version("4.10-dev") == (4, 10) and godot_version("") is None


@pytest.mark.parametrize(
    ("accept", "png"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("image/png", True),
        ("image/*", True),
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", True),  # a browser's <img>
        ("application/json, image/png", False),  # a tie: JSON
        ("application/json;q=0.5, image/png", True),
        ("image/png;q=0", False),
        ("image/png;q=oops", False),
    ],
)
def test_issue_13_accept_picks_the_png(accept: str | None, png: bool) -> None:
    assert prefers(accept, "image/png") is png


def test_issue_13_max_width_keeps_the_aspect() -> None:
    png, width, height = scaled(_tiny_png((1152, 648)), 320)
    assert (width, height) == (320, 180) and Image.open(io.BytesIO(png)).size == (320, 180)
    same = _tiny_png((100, 50))
    assert scaled(same, 320) == (same, 100, 50) and scaled(same, None) == (same, 100, 50)


def test_issue_13_screenshot_tool_answers_an_image_not_base64_text() -> None:
    schema, wrapped = output_schema(GAME_SCREENSHOT)
    assert not wrapped and "data" not in schema["properties"] and "width" in schema["required"]
    spec = openapi.build()["paths"]["/game/screenshot"]["get"]["responses"]["200"]["content"]
    assert set(spec) == {"application/json", "image/png"}
    assert spec["image/png"]["schema"]["format"] == "binary"

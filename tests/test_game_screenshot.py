"""/game/screenshot against a real headless editor whose sidecar gives the games a display
of its own (an Xvfb it starts and stops; no GODOT_BRIDGE_GAME_DISPLAY in the environment),
and the demo game (demo/main.tscn: `Marker`, a magenta ColorRect at 100,120 200x80).

The game writes each screenshot into its temp dir (TMPDIR, a directory of this module's
own here): the bridge must leave no `scr-*.png` behind.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from harness import Editor, call_json, game_processes, make_demo_project, ok_json
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
    ok_json(shot_editor, "POST", "/debug/launch", {})
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

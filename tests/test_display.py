"""A game launched by a headless editor renders into a virtual display (Xvfb) and its
screenshot, asked for through the debug adapter, holds the scene's real pixels.

The recipe: a VirtualDisplay starts an Xvfb; the editor stays `--headless`; its sidecar
(which starts an Xvfb of its own unless GODOT_BRIDGE_GAME_DISPLAY names one, as this test
does) tells the addon the display (the `game_display` editor action), and the addon puts
DISPLAY in the editor's own environment (the game inherits it) and gives the game
`--rendering-driver opengl3 --rendering-method gl_compatibility` instead of `--headless`.
tests/test_game_screenshot.py covers the sidecar's own Xvfb and /game/screenshot.
`godot/put_msg "scene:rq_screenshot" [id]` answers `game_view:get_screenshot [id, w, h, png]`.

Skipped only when Xvfb is not installed (`make test` installs it with tools/ensure_xvfb).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from harness import Editor, game_processes, make_demo_project, needs_xvfb, ok_json

from sidecar.config import Config
from sidecar.godot.dap.session import DapSession
from sidecar.godot.display import Started, Unavailable, VirtualDisplay

# The game's window (the project's default viewport) and the scene the test shows in it.
GAME_SIZE = (1152, 648)
BACKGROUND = (0, 0, 255)
BOX = (255, 0, 0)
BOX_RECT = (100, 120, 300, 200)  # x, y, width, height
SCENE = f"""[gd_scene format=3]

[node name="Shot" type="Control"]
layout_mode = 3
anchors_preset = 15
anchor_right = 1.0
anchor_bottom = 1.0

[node name="Background" type="ColorRect" parent="."]
layout_mode = 1
anchors_preset = 15
anchor_right = 1.0
anchor_bottom = 1.0
color = Color(0, 0, 1, 1)

[node name="Box" type="ColorRect" parent="."]
layout_mode = 0
offset_left = {BOX_RECT[0]}.0
offset_top = {BOX_RECT[1]}.0
offset_right = {BOX_RECT[0] + BOX_RECT[2]}.0
offset_bottom = {BOX_RECT[1] + BOX_RECT[3]}.0
color = Color(1, 0, 0, 1)
"""
SCREENSHOT_WAIT = 10.0  # seconds for one screenshot's answer
RENDER_WAIT = 30.0  # seconds for the game's first frames on a software renderer


@pytest.fixture
async def display() -> AsyncIterator[VirtualDisplay]:
    screen = VirtualDisplay()
    started = await screen.start()
    assert isinstance(started, Started), started
    try:
        yield screen
    finally:
        await screen.stop()


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int]]]]:
    """(width, height, rows of RGB pixels) of an 8-bit RGB or RGBA PNG, checking it is one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad checksum in {kind!r}"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[list[tuple[int, int, int]]] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        row = _unfilter(line[0], bytearray(line[1:]), previous, channels)
        rows.append([tuple(row[x : x + 3]) for x in range(0, stride, channels)])  # type: ignore[misc]
        previous = row
    return width, height, rows


def _unfilter(kind: int, row: bytearray, up: bytearray, bpp: int) -> bytearray:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        above, corner = up[i], up[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + above) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + above) // 2) & 0xFF
        elif kind == 4:
            p = left + above - corner
            pa, pb, pc = abs(p - left), abs(p - above), abs(p - corner)
            nearest = left if pa <= pb and pa <= pc else above if pb <= pc else corner
            row[i] = (row[i] + nearest) & 0xFF
    return row


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(pixel, colour, strict=True))


async def screenshot(session: DapSession, shot: int) -> tuple[int, int, bytes] | None:
    """(width, height, PNG bytes) the game gives for screenshot number `shot`; None when
    it sent none (a game still starting drops the request)."""
    answer = await session.put_msg(
        "test",
        "scene:rq_screenshot",
        [shot],
        "game_view:get_screenshot",
        # Godot reads the JSON number as a float: 7 comes back as 7.0.
        matches=lambda data: bool(data) and data[0] == shot,
        timeout=SCREENSHOT_WAIT,
    )
    if answer is None:
        return None
    _, width, height, path = answer.body["data"][:4]
    png = await asyncio.to_thread(Path(path).read_bytes)
    await asyncio.to_thread(Path(path).unlink)  # the game leaves it in /tmp
    return int(width), int(height), png


async def test_issue_13_a_game_of_a_headless_editor_renders_into_xvfb(
    tmp_path: Path, godot_bin: str, display: VirtualDisplay
) -> None:
    project = make_demo_project(tmp_path / "project")
    (project / "shot").mkdir()
    (project / "shot" / "shot.tscn").write_text(SCENE, encoding="utf-8")
    assert display.display is not None
    env = {"GODOT_BRIDGE_GAME_DISPLAY": display.display}
    editor = Editor(project, env=env)
    session: DapSession | None = None
    try:
        await asyncio.to_thread(editor.start)
        await asyncio.to_thread(editor.wait_until_ready)
        # A second DAP client, as the sidecar's own: Godot sends every client that asked
        # for them the game's messages, whoever launched the game.
        session = DapSession(
            Config(
                project=str(project),
                link_port=None,
                link_token="",
                serve_port=None,
                lsp_port=0,
                dap_port=editor.dap_port,
            )
        )
        assert await session.connect(), session.status.as_json()
        since = session.custom_data.latest
        ok_json(editor, "POST", "/debug/launch", {"scene": "res://shot/shot.tscn"})
        games = await _games(editor)
        # The editor stays headless; the game it starts does not, and has the display.
        game = games[0]
        assert "--headless" in psutil.Process(editor.pid).cmdline()
        assert "--headless" not in game.cmdline(), game.cmdline()
        assert "opengl3" in game.cmdline(), game.cmdline()
        assert game.environ().get("DISPLAY") == display.display
        assert "DISPLAY" not in psutil.Process(editor.pid).environ()  # set at run time
        # The game is in its main loop once it reports its monitors.
        up = await session.custom_data.next_of(
            since, frozenset({"performance:profile_frame"}), RENDER_WAIT
        )
        assert up is not None, "the game never reported a frame"
        width, height, png = await _rendered_screenshot(session)
        assert (width, height) == GAME_SIZE
        png_width, png_height, rows = read_png(png)
        assert (png_width, png_height) == GAME_SIZE
        x, y, w, h = BOX_RECT
        assert near(rows[y + h // 2][x + w // 2], BOX), rows[y + h // 2][x + w // 2]
        assert near(rows[5][5], BACKGROUND), rows[5][5]
        assert near(rows[GAME_SIZE[1] - 5][GAME_SIZE[0] - 5], BACKGROUND)
        assert len({p for row in rows for p in row}) > 1
    finally:
        if session is not None:
            await session.stop()
        await asyncio.to_thread(editor.stop)


async def _games(editor: Editor) -> list[psutil.Process]:
    """The editor's game processes, once there is one (bounded)."""
    for _ in range(100):
        games = game_processes(editor)
        if games:
            return games
        await asyncio.sleep(0.1)
    raise AssertionError(f"the editor started no game\n{editor.output[-3000:]}")


async def _rendered_screenshot(session: DapSession) -> tuple[int, int, bytes]:
    """A screenshot once the game has drawn its scene: the first frames of a software
    renderer may come before the scene is shown (bounded by RENDER_WAIT)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RENDER_WAIT
    shot, got = 0, None
    while loop.time() < deadline:
        shot += 1
        got = await screenshot(session, shot)
        if got is not None:
            _, _, rows = read_png(got[2])
            x, y, w, h = BOX_RECT
            if near(rows[y + h // 2][x + w // 2], BOX):
                break
        await asyncio.sleep(0.5)
    assert got is not None, f"no screenshot in {RENDER_WAIT} s"
    return got


def test_issue_13_xvfb_missing_is_a_reason_naming_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", os.devnull)
    outcome = asyncio.run(VirtualDisplay().start())
    assert isinstance(outcome, Unavailable)
    assert "not installed" in outcome.reason and "ensure_xvfb" in outcome.reason


@needs_xvfb
@pytest.mark.slow
def test_issue_13_displays_skip_taken_numbers_and_free_theirs() -> None:
    """A number whose lock names a live process is skipped; one whose lock names a dead one
    (an Xvfb killed hard) is taken again; two displays never share one; a stopped display
    leaves neither its lock nor its socket."""
    first = 400 + os.getpid() % 500  # away from the numbers other tests and desktops use
    live = Path(f"/tmp/.X{first}-lock")
    live.write_text(f"{os.getpid()}\n")  # a live process: as if an X server ran there
    stale = Path(f"/tmp/.X{first + 2}-lock")
    stale.write_text("99999999\n")  # no such process
    try:
        shown = asyncio.run(_two_displays(first))
    finally:
        live.unlink()
        stale.unlink(missing_ok=True)
    assert shown == [f":{first + 1}", f":{first + 2}"]
    for number in (first + 1, first + 2):
        assert not Path(f"/tmp/.X{number}-lock").exists()
        assert not Path(f"/tmp/.X11-unix/X{number}").exists()


async def _two_displays(first: int) -> list[str]:
    """The displays two VirtualDisplays searching from `first` got, both stopped again."""
    one, two = VirtualDisplay(first_number=first), VirtualDisplay(first_number=first)
    try:
        started = [await one.start(), await two.start()]
        return [s.display if isinstance(s, Started) else s.reason for s in started]
    finally:
        await one.stop()
        await two.stop()


@needs_xvfb
@pytest.mark.slow
def test_issue_13_displays_started_at_the_same_moment_never_share_a_number() -> None:
    """Two sidecars starting an Xvfb at once both try the same first free number: the one
    whose Xvfb lost the race must not take the winner's display for its own (seen with two
    test workers: an editor's games rendered on another editor's Xvfb)."""
    first = 400 + (os.getpid() + 125) % 500

    async def race() -> list[str | None]:
        displays = [VirtualDisplay(first_number=first) for _ in range(3)]
        try:
            started = await asyncio.gather(*(d.start() for d in displays))
            assert all(isinstance(s, Started) for s in started), started
            for d in displays:  # each one's lock names its own Xvfb
                lock = (await asyncio.to_thread(Path(f"/tmp/.X{d.number}-lock").read_text)).strip()
                assert int(lock) == d.pid, (d.display, lock, d.pid)
            return [d.display for d in displays]
        finally:
            for d in displays:
                await d.stop()

    for _ in range(3):
        shown = asyncio.run(race())
        assert len(set(shown)) == 3, shown


PARENT = """
import asyncio, sys
from sidecar.godot.display import VirtualDisplay

async def main() -> None:
    started = await VirtualDisplay(first_number=int(sys.argv[1])).start()
    print(started.pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@needs_xvfb
@pytest.mark.slow
async def test_issue_13_xvfb_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """The sidecar killed with SIGKILL (no clean-up of its own) takes its Xvfb with it."""
    first = 400 + (os.getpid() + 250) % 500
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, str(first), stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), 30)
    xvfb = psutil.Process(int(line))
    assert "Xvfb" in xvfb.name()
    parent.kill()
    await parent.wait()
    try:
        xvfb.wait(10)  # it is not our child: psutil polls until it is gone or a zombie
    except psutil.TimeoutExpired:
        raise AssertionError("Xvfb outlived the process that started it") from None
    finally:
        with contextlib.suppress(psutil.Error):
            if xvfb.status() != psutil.STATUS_ZOMBIE:
                xvfb.kill()

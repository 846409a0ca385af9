"""`/game/screenshot`: a PNG of the running game's window.

The game takes it (`scene:rq_screenshot`, Godot 4.5+) and writes it to a temp file; the
channel (`godot.game.channel.GameChannel.screenshot`) reads and deletes the file. This
module scales it down to `max_width` when asked (Pillow) and answers it as JSON with the
PNG base64-encoded, or as the PNG itself for `Accept: image/png` (and as an image content
block in MCP): the operation declares both (`BinaryForm`).

A game needs a display to render: a headless editor's games get the bridge's virtual one
(app.Sidecar, `godot.display`); without one the answer is a 409 `no_display` saying how
to get it.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable
from typing import Any

from pydantic import Field

from sidecar.errors import RequestError
from sidecar.godot.dap.session import DapSession
from sidecar.godot.display import GameDisplay
from sidecar.godot.game.channel import NO_DISPLAY_MESSAGE, GameChannel
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, BinaryForm, Caller, Operation

MIN_WIDTH = 16


class ScreenshotArguments(Arguments):
    max_width: int | None = Field(
        None,
        ge=MIN_WIDTH,
        description="scale the picture down to at most this many pixels wide, keeping its "
        "aspect ratio (a narrower game is left as it is); left out: the window's own size",
        examples=[640],
    )


class ScreenshotAnswer(Answer):
    width: int = Field(description="the PNG's width in pixels (after `max_width`)")
    height: int = Field(description="the PNG's height in pixels")
    format: str = Field(description='always "png"')
    data: str = Field(description="the PNG, base64-encoded")
    png_bytes: int = Field(description="the PNG's size in bytes")
    game_width: int = Field(description="the game window's width, as the game took it")
    game_height: int = Field(description="the game window's height")
    taken_at: float = Field(description="when it was taken (Unix time, seconds)")
    round_trip_ms: float = Field(
        description="from the request to the game to its file read, in milliseconds"
    )


GAME_SCREENSHOT = Operation(
    name="game_screenshot",
    path="/game/screenshot",
    methods=("GET", "POST"),
    summary="a PNG of the running game's window, as it is now",
    description="Asked of the game now (agents asking at the same moment share one). "
    "`Accept: image/png` answers the PNG itself; otherwise JSON with the PNG base64-encoded "
    "in `data`; in MCP an image content block. Works while the game runs and while it is "
    "stopped at a breakpoint (the stopped game redraws first: after a step it shows what the "
    "step changed). A headless game cannot "
    "render: a headless editor's games get the bridge's virtual display (Xvfb) when it is "
    "installed; without one the answer is 409 `no_display`, saying how to get it. 409 "
    "`not_running` without a game, 504 when the game does not answer, 501 on a Godot older "
    "than 4.5.",
    arguments=ScreenshotArguments,
    answer=ScreenshotAnswer,
    errors=(
        "not_connected",
        "connection_lost",
        "timeout",
        "not_running",
        "no_display",
        "unsupported_by_godot",
        "bad_peer_message",
    ),
    tags=("game",),
    binary=BinaryForm("image/png", "data", "the PNG itself (`Content-Type: image/png`)"),
)

OPERATIONS: tuple[Operation[Any], ...] = (GAME_SCREENSHOT,)


def register(routes: RouteTable, session: DapSession, display: Callable[[], GameDisplay]) -> None:
    """Serve `/game/screenshot` on the session's game channel; `display` tells where the
    games render (the sidecar decides it)."""
    routes.serve(GAME_SCREENSHOT, Screenshots(session, display).take)


def scaled(png: bytes, max_width: int | None) -> tuple[bytes, int, int]:
    """The PNG (scaled down to `max_width`, aspect kept) with its width and height."""
    from PIL import Image  # only when scaling: 20 ms a sidecar start need not spend

    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
        if max_width is None or width <= max_width:
            return png, width, height
        new_size = (max_width, max(1, round(height * max_width / width)))
        small = image.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    out = io.BytesIO()
    small.save(out, format="PNG")
    return out.getvalue(), new_size[0], new_size[1]


class Screenshots:
    """Screenshots of the session's game (/game/screenshot, and /game/input's last one)."""

    def __init__(self, session: DapSession, display: Callable[[], GameDisplay]) -> None:
        self.session = session
        self.channel: GameChannel = session.game_channel
        self.display = display

    async def take(self, args: ScreenshotArguments, caller: Caller) -> ScreenshotAnswer:
        if not self.session.peer.connected:
            raise self.session.peer.unavailable()
        if not self.session.running:
            raise RequestError("no game is running; POST /debug/launch first", code="not_running")
        where = self.display()
        if where.mode == "headless":
            raise RequestError(
                f"{NO_DISPLAY_MESSAGE} (here: {where.reason})",
                code="no_display",
                details={"game_display": where.as_json()},
            )
        shot = await self.channel.screenshot(caller.identity)
        png, width, height = shot.png, shot.width, shot.height
        if args.max_width is not None and args.max_width < shot.width:
            png, width, height = await asyncio.to_thread(scaled, shot.png, args.max_width)
        return ScreenshotAnswer(
            width=width,
            height=height,
            format="png",
            data=base64.b64encode(png).decode("ascii"),
            png_bytes=len(png),
            game_width=shot.width,
            game_height=shot.height,
            taken_at=round(shot.taken_at, 3),
            round_trip_ms=shot.round_trip_ms,
        )

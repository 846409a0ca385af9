"""`/game/errors` and `/game/monitors`: the running game's runtime errors and performance
monitors, as its debugger messages report them (sidecar/godot/game/records.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sidecar.godot.dap.session import DapSession
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Method, Operation

_READ: tuple[Method, ...] = ("GET", "POST")

# -- arguments -----------------------------------------------------------------------


class GameErrorsArguments(Arguments):
    since: int = Field(0, ge=0, description="read the records numbered above this one")
    wait: float = Field(
        0.0, ge=0, description="seconds to wait for the first record (long-poll; at most 30)"
    )
    limit: int = Field(500, ge=1, description="most records in one answer")
    warnings: bool = Field(True, description="false: errors only (no push_warning, no warnings)")


class GameMonitorsArguments(Arguments):
    names: str | None = Field(
        None,
        description="comma-separated monitor names (time_fps,memory_static,...); left out: all",
        examples=["time_fps,memory_static,object_count"],
    )
    history: int = Field(
        0, ge=0, description="also the last this many frames (about one a second; 60 kept)"
    )


# -- answers -------------------------------------------------------------------------


class Place(Answer):
    file: str = Field(description="res:// for a script, else the engine's C++ file")
    line: int = Field(description="1-based")
    function: str


class GameErrorRecord(Answer):
    seq: int = Field(description="position in the game error log, from 1")
    time: float = Field(description="epoch seconds the bridge received it")
    game: int = Field(description="which game sent it: counts games started since the bridge began")
    uptime_ms: int = Field(description="the game's uptime when it happened")
    message: str = Field(description="the error text (push_error's message)")
    description: str = Field(description="the details; an engine check puts its message here")
    is_warning: bool
    file: str = Field(description="where in the project's scripts (res://) when known, else source")
    line: int = Field(description="1-based line in `file`")
    function: str
    source: Place = Field(description="where it was raised: the engine's C++ file for push_error")
    stack: list[Place] = Field(description="the script stack then, innermost first")


class GameErrorsPage(Answer):
    errors: list[GameErrorRecord]
    next: int = Field(description="pass as 'since' to read on from here")
    latest: int = Field(description="newest record number")
    dropped: int = Field(description="records after 'since' that fell out of the bounded log")


class MonitorFrame(Answer):
    time: float = Field(description="epoch seconds the bridge received it")
    values: dict[str, float | None]


class GameMonitors(Answer):
    game: int = Field(description="the game these are of (0: none started yet)")
    time: float | None = Field(description="when the latest frame arrived; null: none yet")
    frames: int = Field(description="frames kept for this game")
    values: dict[str, float | None] = Field(
        description="latest value by monitor name (time_fps, memory_static (bytes), "
        "object_count, object_node_count, ...); a custom monitor that is not a number is null"
    )
    history: list[MonitorFrame] = Field(description="the last 'history' frames, oldest first")


# -- the operations ------------------------------------------------------------------

GAME_ERRORS = Operation(
    name="game_errors",
    path="/game/errors",
    methods=_READ,
    summary="the running game's runtime errors and warnings after 'since' (long-poll)",
    description="push_error, push_warning, failed engine checks and script errors of the "
    "game launched under the debugger (not the editor's own). Read like /debug/events: "
    "pass 'next' as 'since'. A script error also stops the game (a `stopped` event with "
    "reason `exception` in /debug/events).",
    arguments=GameErrorsArguments,
    answer=GameErrorsPage,
    errors=("invalid_field",),
    tags=("game",),
)
GAME_MONITORS = Operation(
    name="game_monitors",
    path="/game/monitors",
    methods=_READ,
    summary="the running game's performance monitors: latest values by name and history",
    description="Sent by the game about once a second; start afresh with each game.",
    arguments=GameMonitorsArguments,
    answer=GameMonitors,
    errors=("invalid_field",),
    tags=("game",),
)

OPERATIONS = (GAME_ERRORS, GAME_MONITORS)


def register(routes: RouteTable, session: DapSession) -> None:
    records = session.game_records

    async def game_errors(args: GameErrorsArguments, caller: Caller) -> Any:
        return await records.read_errors(args.since, args.wait, args.limit, args.warnings)

    async def game_monitors(args: GameMonitorsArguments, caller: Caller) -> Any:
        names = [n.strip() for n in (args.names or "").split(",") if n.strip()]
        return records.monitors(names or None, args.history)

    routes.serve(GAME_ERRORS, game_errors)
    routes.serve(GAME_MONITORS, game_monitors)

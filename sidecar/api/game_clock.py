"""Time control of the running game: `/game/clock`, `/game/suspend`, `/game/resume`,
`/game/advance` and `/game/time_scale`.

The protocol work (Godot's `scene:suspend_changed`, `scene:next_frame`,
`scene:speed_changed`, and knowing when a frame is over) is in
`godot.game.clock.GameClock`; this module declares the operations and builds the
"advance until" condition: a property of a node read through the game's inspector after
each frame, compared with a value (`{path, property, op, value}`; `property` may name a
field, `position.x`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import ConfigDict, Field, JsonValue, model_validator

from sidecar.api.game import GAME_NODE, absolute
from sidecar.errors import RequestError
from sidecar.godot.dap.answers import body_or_raise
from sidecar.godot.dap.session import DapSession
from sidecar.godot.display import GameDisplay
from sidecar.godot.game.channel import GameChannel
from sidecar.godot.game.clock import (
    MAX_FRAMES,
    MAX_TIMEOUT,
    Advance,
    Check,
    Condition,
    GameClock,
)
from sidecar.godot.game.hands import GameHands
from sidecar.godot.game.messages import InspectedObject
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, NoArguments, Operation

DEFAULT_TIMEOUT = 30.0
UNTIL_DEFAULT_FRAMES = 300  # the frame limit of an advance-until that names none
HEADLESS_MESSAGE = (
    "the game runs headless (no display): it never draws, so Godot's `scene:next_frame` "
    "would resume it for good instead of running one frame; advancing frame by frame needs "
    "a game that renders (a headless editor's games get the bridge's Xvfb when it is "
    "installed: `make display`). Suspend, resume and the time scale work headless"
)
_GAME = ("not_connected", "connection_lost", "timeout", "not_running", "bad_peer_message")
Comparison = Literal["==", "!=", "<", "<=", ">", ">="]


# -- arguments -----------------------------------------------------------------------


class Until(Arguments):
    # `property` (with `value`) or `expression`, not both: said in the schema too, so
    # documents and fuzzers know (null is taken as absent).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["property", "value"],
                    "properties": {
                        "property": {"type": "string"},
                        "value": {"not": {"type": "null"}},
                        "expression": {"type": "null"},
                    },
                },
                {
                    "required": ["expression"],
                    "properties": {"expression": {"type": "string"}, "property": {"type": "null"}},
                },
            ]
        }
    )

    path: str = Field(
        min_length=1,
        description="the node, a path in the running game (`/root/Main/Mover` or `Main/Mover`)",
        examples=["Main/Mover"],
    )
    property: str | None = Field(
        None,
        min_length=1,
        description="the property as /game/node names it (`position`, `speed`, "
        "`Members/frames`; a script variable may be given without `Members/`), optionally "
        "with a field of its value after a dot: `position.x`, `modulate.a`; compared with "
        "`value` by `op`. Either this or `expression`",
        examples=["position.x"],
    )
    op: Comparison = Field(
        "==",
        description="how the property compares with `value`: `<`, `<=`, `>`, `>=` for "
        "numbers, `==` and `!=` for any value (numbers compare as numbers)",
        examples=[">="],
    )
    value: JsonValue = Field(
        None,
        description="what to compare `property` with (needed with it), as /game/node shows "
        "values (a number, a string, a bool, `{x, y}` for a whole Vector2)",
        examples=[100],
    )
    expression: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="instead of `property`: a Godot Expression evaluated in the game with "
        "the node as `self` (as /game/evaluate does), true when the advance should stop: "
        "`position.x > 100 and frames % 2 == 0`",
        examples=["position.x >= 100"],
    )

    @model_validator(mode="after")
    def _one_condition(self) -> Until:
        if self.property is None and self.expression is None:
            raise RequestError(
                "missing field 'until.property' (or `until.expression`): what to check",
                code="missing_field",
                details={"field": "until.property"},
            )
        if self.property is not None and self.expression is not None:
            raise RequestError(
                "`until` takes `property` (with `op` and `value`) or `expression`, not both",
                code="invalid_field",
                details={"field": "until.expression"},
            )
        if self.property is not None and "value" not in self.model_fields_set:
            raise RequestError(
                "missing field 'until.value': what the property is compared with",
                code="missing_field",
                details={"field": "until.value"},
            )
        return self


class AdvanceArguments(Arguments):
    frames: int | None = Field(
        None,
        ge=1,
        le=MAX_FRAMES,
        description=f"frames to run (default 1); with `until`, the most frames to run before "
        f"giving up (default {UNTIL_DEFAULT_FRAMES}); at most {MAX_FRAMES}",
        examples=[10],
    )
    until: Until | None = Field(
        None,
        description="run frame by frame until this holds (checked before the first frame "
        "and after each one), or `frames` ran",
    )
    timeout: float = Field(
        DEFAULT_TIMEOUT,
        gt=0,
        le=MAX_TIMEOUT,
        description=f"seconds the whole advance may take (default {DEFAULT_TIMEOUT:g}, at most "
        f"{MAX_TIMEOUT:g}); when they are up the answer says `timeout` and the frames run",
        examples=[10],
    )


class TimeScaleArguments(Arguments):
    scale: float = Field(
        ge=0,
        le=100,
        description="the game's time scale (Godot's `Engine.set_user_time_scale`): 1 normal, "
        "0.5 half speed, 2 double; `delta` and timers follow it, `_process` still runs every "
        "frame (0: frozen deltas; to stop processing use /game/suspend)",
        examples=[0.5],
    )


# -- answers -------------------------------------------------------------------------


class ClockAnswer(Answer):
    game: int = Field(description="the game this is of (as /status `game.game` counts them)")
    running: bool = Field(description="a game runs")
    suspended: bool = Field(
        description="its processing is suspended (by the bridge: the game does not tell)"
    )
    time_scale: float = Field(description="the time scale the bridge set (1: Godot's default)")
    frames_advanced: int = Field(description="frames run by /game/advance in this game")
    advancing: str | None = Field(description="the agent whose advance is under way, if any")
    can_advance: bool = Field(
        description="/game/advance can work: false for a headless game (it never draws)"
    )
    changed_by: str | None = Field(description="the agent that last changed the clock")
    changed_at: float | None = Field(description="when (Unix time, seconds)")


class AdvanceAnswer(Answer):
    frames: int = Field(description="frames run (each one `_process` of every node)")
    requested: int = Field(description="the frame limit of this advance")
    reason: str = Field(
        description="why it ended: `frames` (all run), `condition` (`until` holds), "
        "`frame_limit` (`until` never held), `timeout`, `stopped` (a breakpoint in the frame: "
        "the game is stopped in the debugger; `continue` finishes the frame, then it is "
        "suspended again), `game_ended`"
    )
    condition_met: bool | None = Field(description="whether `until` held at the end; null: none")
    values: dict[str, Any] | None = Field(
        description="with `until`: the property's value after the last frame"
    )
    elapsed_ms: float = Field(description="how long the advance took")
    ms_per_frame: float | None = Field(description="elapsed_ms / frames")
    clock: ClockAnswer
    stop: dict[str, Any] | None = Field(None, description="the debugger stop, for `stopped`")


# -- operations ----------------------------------------------------------------------

GAME_CLOCK = Operation(
    name="game_clock",
    path="/game/clock",
    methods=("GET", "POST"),
    summary="the running game's clock: suspended or not, time scale, frames advanced",
    description="What the bridge set in this game (a new game starts running at scale 1); "
    "also in /status `game.clock`.",
    arguments=NoArguments,
    answer=ClockAnswer,
    tags=("game",),
)
GAME_SUSPEND = Operation(
    name="game_suspend",
    path="/game/suspend",
    summary="suspend the game's processing (no _process, physics, timers) without stopping it",
    description="Godot's `scene:suspend_changed` (the editor's Game view pause button): the "
    "game keeps drawing and answering (tree, node, screenshot) but nothing moves; the "
    "debugger is not involved (no `stopped` event). Stays until /game/resume or the game ends.",
    arguments=NoArguments,
    answer=ClockAnswer,
    errors=_GAME,
    tags=("game",),
    effect="control",
)
GAME_RESUME = Operation(
    name="game_resume",
    path="/game/resume",
    summary="resume the game's processing after /game/suspend or /game/advance",
    description="409 `conflict` while another agent's /game/advance is under way (it names "
    "them in `advancing`): its frames would run on their own.",
    arguments=NoArguments,
    answer=ClockAnswer,
    errors=(*_GAME, "conflict"),
    tags=("game",),
    effect="control",
)
GAME_ADVANCE = Operation(
    name="game_advance",
    path="/game/advance",
    summary="run exactly N frames, or frame by frame until a node's property compares true",
    description="Suspends the game first when it runs; it stays suspended afterwards "
    "(/game/resume). One frame at a time (Godot's `scene:next_frame`), each confirmed "
    "before the next: `frames` is exact. With `until` the property is read (or the "
    "expression evaluated in the game, as /game/evaluate does) after every frame and the "
    "answer gives its last value; a failing expression is 422 `evaluate_failed`. Only for "
    "a game that renders: a headless one never draws and would just resume (409 "
    "`no_display`). One advance at a time "
    "(others wait their turn). 409 without a game, 404 for an `until.path` not in the tree.",
    arguments=AdvanceArguments,
    answer=AdvanceAnswer,
    errors=(*_GAME, "invalid_field", "missing_field", "no_display", "not_found", "evaluate_failed"),
    tags=("game",),
    effect="control",
)
GAME_TIME_SCALE = Operation(
    name="game_time_scale",
    path="/game/time_scale",
    summary="set the running game's time scale (0.5: half speed)",
    description="Godot's `scene:speed_changed` (`Engine.set_user_time_scale`, multiplied "
    "with the game's own `Engine.time_scale`). Kept for this game only.",
    arguments=TimeScaleArguments,
    answer=ClockAnswer,
    errors=(*_GAME, "invalid_field"),
    tags=("game",),
    effect="control",
)

OPERATIONS: tuple[Operation[Any], ...] = (
    GAME_CLOCK,
    GAME_SUSPEND,
    GAME_RESUME,
    GAME_ADVANCE,
    GAME_TIME_SCALE,
)


def register(
    routes: RouteTable, session: DapSession, display: Callable[[], GameDisplay]
) -> GameClock:
    """Serve the time operations; the clock is kept by the caller (for /status)."""
    channel = session.game_channel

    def can_step() -> str | None:
        return HEADLESS_MESSAGE if display().mode == "headless" else None

    def send_now(message: str, data: list[Any]) -> Awaitable[None]:
        # Written in this call (not when awaited), so a request made right after it
        # reaches the game after it; outside the fair scheduler: one tiny message a frame.
        call = session.peer.issue("godot/put_msg", {"message": message, "data": data})

        async def answered() -> None:
            body_or_raise(await session.peer.answer(call, session.timeout), "godot/put_msg")

        return answered()

    clock = GameClock(
        session,
        lambda: session.game_records.game,
        channel.fresh_tree,
        can_step,
        send_now,
        lambda: any(bps.union() for bps in session.book.files.values()),
    )
    served = _Served(session, channel, clock)
    routes.serve(GAME_CLOCK, served.status)
    routes.serve(GAME_SUSPEND, served.suspend)
    routes.serve(GAME_RESUME, served.resume)
    routes.serve(GAME_ADVANCE, served.advance)
    routes.serve(GAME_TIME_SCALE, served.time_scale)
    return clock


# -- the property condition ------------------------------------------------------------


class PropertyCondition:
    """`until`: one property of one node (or a field of it) compared with a value."""

    def __init__(self, channel: GameChannel, until: Until, object_id: int) -> None:
        self.channel = channel
        self.until = until
        self.object_id = object_id
        self.property = until.property or ""  # set: the model's rule
        self.name, _, rest = self.property.partition(".")
        self.fields = [f for f in rest.split(".") if f] if rest else []

    async def __call__(self, agent: str) -> Check:
        found = await self.channel.fresh_inspect(agent, self.object_id)
        if found is None:
            raise RequestError(
                f"the node {absolute(self.until.path)!r} is gone from the game",
                code="not_found",
                details={"field": "until.path"},
            )
        value = self._value(found)
        return Check(compare(value, self.until.op, self.until.value), {self.property: value})

    def _value(self, found: InspectedObject) -> Any:
        prop = found.get(self.name) or found.get(f"Members/{self.name}")
        if prop is None:
            raise RequestError(
                f"{absolute(self.until.path)!r} has no property {self.name!r} "
                f"(GET {GAME_NODE.path} lists them)",
                code="invalid_field",
                details={"field": "until.property"},
            )
        value: Any = prop.value
        for name in self.fields:
            if not isinstance(value, dict) or name not in value:
                raise RequestError(
                    f"{self.until.property!r}: {prop.name} ({prop.type_name}) has no field "
                    f"{name!r}" + (f"; it has {sorted(value)}" if isinstance(value, dict) else ""),
                    code="invalid_field",
                    details={"field": "until.property"},
                )
            value = value[name]
        if self.until.op not in ("==", "!=") and not _is_number(value):
            raise RequestError(
                f"{self.until.property!r} is {value!r}, not a number: `{self.until.op}` "
                "compares numbers (use `==`/`!=`, or name a field: `position.x`)",
                code="invalid_field",
                details={"field": "until.op"},
            )
        return value


class ExpressionCondition:
    """`until.expression`: a Godot Expression the game's hands evaluate on the node (the
    same route as /game/evaluate); it must give a bool."""

    def __init__(self, hands: GameHands, until: Until) -> None:
        self.hands = hands
        self.until = until

    async def __call__(self, agent: str) -> Check:
        request: dict[str, Any] = {
            "expression": self.until.expression,
            "path": absolute(self.until.path),
        }
        try:
            done = await self.hands.call(agent, "evaluate", request, 0.0)
        except RequestError as err:
            if err.details.get("field") == "expression":  # the hands' name for it
                err.details["field"] = "until.expression"
            raise
        result = done["value"] if isinstance(done, dict) else None
        if not isinstance(result, dict) or result.get("type") != "bool":
            kind = result.get("type") if isinstance(result, dict) else "nothing"
            raise RequestError(
                f"`until.expression` {self.until.expression!r} gives a {kind}, not a bool "
                "(compare it: `position.x > 100`)",
                code="invalid_field",
                details={"field": "until.expression"},
            )
        return Check(result.get("value") is True, {str(self.until.expression): result["value"]})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare(value: Any, op: str, wanted: Any) -> bool:
    """`value op wanted`; numbers as numbers (1 == 1.0), anything else only by equality."""
    if _is_number(value) and _is_number(wanted):
        a, b = float(value), float(wanted)
        return {
            "==": math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9),
            "!=": not math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9),
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
        }[op]
    if op == "==":
        return bool(value == wanted)
    if op == "!=":
        return bool(value != wanted)
    return False


# -- handlers ----------------------------------------------------------------------------


class _Served:
    def __init__(self, session: DapSession, channel: GameChannel, clock: GameClock) -> None:
        self.session = session
        self.channel = channel
        self.clock = clock

    def _require_connected(self) -> None:
        # Without the debug adapter there is no telling whether a game runs: 503, not 409.
        if not self.session.peer.connected:
            raise self.session.peer.unavailable()

    async def status(self, args: NoArguments, caller: Caller) -> Any:
        return self.clock.status()

    async def suspend(self, args: NoArguments, caller: Caller) -> Any:
        self._require_connected()
        await self.clock.suspend(caller.identity)
        return self.clock.status()

    async def resume(self, args: NoArguments, caller: Caller) -> Any:
        self._require_connected()
        await self.clock.resume(caller.identity)
        return self.clock.status()

    async def time_scale(self, args: TimeScaleArguments, caller: Caller) -> Any:
        self._require_connected()
        await self.clock.set_time_scale(caller.identity, args.scale)
        return self.clock.status()

    async def advance(self, args: AdvanceArguments, caller: Caller) -> Any:
        self._require_connected()
        default = 1 if args.until is None else UNTIL_DEFAULT_FRAMES
        frames = args.frames if args.frames is not None else default
        condition: Condition | None = None
        if args.until is not None:
            tree = await self.channel.tree(caller.identity)
            node = tree.find(absolute(args.until.path))
            if node is None:
                raise RequestError(
                    f"no node at {absolute(args.until.path)!r} in the running game "
                    "(GET /game/tree lists them)",
                    code="not_found",
                    details={"field": "until.path"},
                )
            if args.until.expression is not None:
                condition = ExpressionCondition(self.session.game_hands, args.until)
            else:
                condition = PropertyCondition(self.channel, args.until, node.object_id)
        outcome = await self.clock.advance(caller.identity, frames, args.timeout, condition)
        return self._advance_json(outcome, frames)

    def _advance_json(self, outcome: Advance, requested: int) -> dict[str, Any]:
        elapsed_ms = round(outcome.elapsed_s * 1000, 1)
        check = outcome.check
        return {
            "frames": outcome.frames,
            "requested": requested,
            "reason": outcome.reason,
            "condition_met": None if check is None else check.holds,
            "values": None if check is None else check.values,
            "elapsed_ms": elapsed_ms,
            "ms_per_frame": round(elapsed_ms / outcome.frames, 2) if outcome.frames else None,
            "clock": self.clock.status(),
            "stop": outcome.stop,
        }

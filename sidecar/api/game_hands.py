"""Steering the running game: `/game/input`, `/game/evaluate`, `/game/set_property`.

Served by the bridge's hands in the game (`godot.game.hands.GameHands`): a small
game-side scene the bridge puts into a game launched from the editor with Godot's
live-edit messages, reached over the debugger channel (docs/GAME_MESSAGES.md, "The
game-side hands"). The game sees injected input exactly as real input: the hands hand
each event to `Input.parse_input_event`, so `_input`, `_unhandled_input`, GUI controls
and `Input.is_action_pressed` all see it.

Values are typed JSON both ways, the shapes `/game/node` answers: a Vector2 is
`{"x": 1.0, "y": 2.0}`, a Color `{r, g, b, a}`, a rect `{position, size}`...; a value sent
to `set_property` is made into the property's own type game-side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from sidecar.api.game import GameValue, absolute
from sidecar.api.game_screenshot import (
    MIN_WIDTH,
    ScreenshotAnswer,
    ScreenshotArguments,
    Screenshots,
)
from sidecar.errors import RequestError
from sidecar.godot.dap.session import DapSession
from sidecar.godot.display import GameDisplay
from sidecar.godot.game.channel import NO_DISPLAY_MESSAGE
from sidecar.godot.game.hands import GameHands
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Operation

MAX_STEPS = 100
MAX_STEP_FRAMES = 600  # one hold or wait: 10 s at 60 fps
MAX_STEP_MS = 10_000
MAX_TEXT = 500
MAX_EXPRESSION = 4000
# A game may run slowly (software rendering, busy cores): the bridge waits this long per
# frame a request asks the game to wait, on top of the hands' own answer time.
SECONDS_PER_FRAME = 0.1

StepType = Literal["action", "key", "mouse_button", "mouse_motion", "wheel", "text", "wait"]
_HOLDS = ("action", "key", "mouse_button", "wheel")  # a press the step can hold for frames


def _given(name: str, json_type: str) -> dict[str, Any]:
    """JSON Schema for "`name` is there and not null" (null is taken as absent)."""
    return {"required": [name], "properties": {name: {"type": json_type}}}


def _of_type(kinds: tuple[str, ...], needs: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema for a step of one of `kinds`, with what it `needs` besides."""
    branch: dict[str, Any] = {"properties": {"type": {"enum": list(kinds)}}}
    for key, value in (needs or {}).items():
        if key == "properties":
            branch["properties"].update(value)
        else:
            branch[key] = value
    return branch


# What each step type needs besides `type`, as the document says it (the model validator
# below says the same to an agent, naming the field).
_STEP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _of_type(("action",), _given("action", "string")),
        _of_type(("key",), _given("key", "string")),
        _of_type(("text",), _given("text", "string")),
        _of_type(("mouse_button", "wheel")),
        _of_type(
            ("mouse_motion",),
            {"anyOf": [_given("position", "object"), _given("relative", "object")]},
        ),
        _of_type(("wait",), {"anyOf": [_given("frames", "integer"), _given("ms", "integer")]}),
    ]
}
# The hands' failures an agent may see beyond the common game ones.
_GAME = (
    "invalid_field",
    "missing_field",
    "not_found",
    "not_connected",
    "connection_lost",
    "timeout",
    "not_running",
    "conflict",
    "bad_peer_message",
)
_NODE_DOC = (
    "a node path in the running game: absolute (`/root/Main/Player`) or relative to `/root` "
    "(`Main/Player`)"
)


# -- arguments -----------------------------------------------------------------------


class Point(Arguments):
    x: float = Field(description="pixels from the game window's left edge")
    y: float = Field(description="pixels from its top edge")


class InputStep(Arguments):
    """One step; the fields its `type` does not use are ignored."""

    model_config = ConfigDict(json_schema_extra=_STEP_SCHEMA)

    type: StepType = Field(
        description="`action` (an input action of the game's InputMap), `key`, "
        "`mouse_button`, `mouse_motion`, `wheel`, `text` (typed characters) or `wait`",
        examples=["action"],
    )
    action: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="`action`: the action's name (`move_right`, Godot's `ui_accept`...)",
        examples=["ui_right"],
    )
    strength: float = Field(
        1.0, ge=0.0, le=1.0, description="`action`: how far it is pressed (0 to 1)"
    )
    key: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="`key`: Godot's name of the key (`A`, `Enter`, `Left`, `Space`, `Escape`, "
        "`F1`; modifiers as `Ctrl+S`)",
        examples=["Enter"],
    )
    physical: bool = Field(
        False,
        description="`key`: only the physical keycode (the key at that place on a US "
        "keyboard); otherwise keycode, physical keycode and key label are all set, as a US "
        "keyboard sends them",
    )
    echo: bool = Field(False, description="`key`: a key-repeat event")
    shift: bool = Field(False, description="`key`/mouse: Shift held")
    ctrl: bool = Field(False, description="`key`/mouse: Ctrl held")
    alt: bool = Field(False, description="`key`/mouse: Alt held")
    meta: bool = Field(False, description="`key`/mouse: Meta held")
    button: Literal["left", "right", "middle", "x1", "x2"] = Field(
        "left", description="`mouse_button`: which button"
    )
    double_click: bool = Field(False, description="`mouse_button`: a double click's press")
    direction: Literal["up", "down", "left", "right"] = Field(
        "down", description="`wheel`: the way it turns"
    )
    amount: float = Field(1.0, gt=0.0, le=100.0, description="`wheel`: the event's factor")
    position: Point | None = Field(
        None,
        description="mouse steps: where, in the game window's pixels (the screenshot's "
        "coordinates); left out: where the last injected mouse event was",
    )
    relative: Point | None = Field(
        None,
        description="`mouse_motion`: the motion's `relative`; left out: from the last position",
    )
    text: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT,
        description="`text`: the characters, each a key press and release with its unicode",
        examples=["hello"],
    )
    pressed: bool | None = Field(
        None,
        description="`action`/`key`/`mouse_button`/`wheel`: true sends only the press, false "
        "only the release; left out: a press held for `frames` frames, then released",
    )
    frames: int | None = Field(
        None,
        ge=1,
        le=MAX_STEP_FRAMES,
        description="a press without `pressed`: the frames it is held (default 1); `wait`: "
        "frames to wait (ignored with `pressed`)",
        examples=[30],
    )
    ms: int | None = Field(
        None, ge=1, le=MAX_STEP_MS, description="`wait`: milliseconds to wait (after `frames`)"
    )


class InputArguments(Arguments):
    steps: list[InputStep] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        description=f"what to do, in order (at most {MAX_STEPS})",
        examples=[[{"type": "action", "action": "ui_right", "frames": 30}]],
    )
    screenshot: bool = Field(
        False, description="answer a screenshot of the game once the steps are done"
    )
    max_width: int | None = Field(
        None, ge=MIN_WIDTH, description="the screenshot scaled down to at most this wide"
    )

    @model_validator(mode="after")
    def _steps_complete(self) -> InputArguments:
        for index, step in enumerate(self.steps):
            missing = step_lacks(step)
            if missing is not None:
                field, why = missing
                raise RequestError(
                    f"missing field 'steps[{index}].{field}' ({why})",
                    code="missing_field",
                    details={"field": f"steps[{index}].{field}"},
                )
        return self

    def waits(self) -> tuple[int, int]:
        """The frames and milliseconds the steps hold and wait in all."""
        frames = ms = 0
        for step in self.steps:
            if step.type in _HOLDS and step.pressed is None:
                frames += step.frames or 1
            elif step.type == "wait":
                frames += step.frames or 0
                ms += step.ms or 0
        return frames, ms


class NodeTarget(Arguments):
    path: str | None = Field(
        None, min_length=1, max_length=4096, description=_NODE_DOC, examples=["Main/Player"]
    )
    id: str | None = Field(
        None,
        pattern=r"^[0-9]{1,20}$",
        description="the node's id from /game/tree (a decimal string), instead of `path`",
    )


class EvaluateArguments(NodeTarget):
    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION,
        description="a Godot `Expression`: the node's properties and methods by name "
        "(`position.x`, `get_child_count()`), `self`, built-in functions and constructors",
        examples=["position.x + 1"],
    )


class SetPropertyArguments(NodeTarget):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [_given("path", "string"), _given("id", "string")]}
    )

    property: str = Field(
        min_length=1,
        max_length=200,
        description="the property's name (`position`), or a part of it (`position:x`)",
        examples=["position"],
    )
    value: Any = Field(
        description='the new value as typed JSON (`{"x": 1, "y": 2}` for a Vector2, '
        '`{r, g, b[, a]}` or `"#ff0000"` for a Color, `{"resource": "res://..."}` or '
        '`{"path": "/root/..."}` for an object; `{type, value}` as /game/node answers '
        "it works too): made into the property's own type in the game",
        examples=[{"x": 100, "y": 200}],
    )

    @model_validator(mode="after")
    def _named(self) -> SetPropertyArguments:
        if self.path is None and self.id is None:
            raise RequestError(
                "missing field 'path' (or `id`): which node",
                code="missing_field",
                details={"field": "path"},
            )
        return self


# -- answers -------------------------------------------------------------------------


class InputAnswer(Answer):
    steps: int = Field(description="steps done (all of them)")
    frames: int = Field(
        description="the game's frames from the first step to the answer (the answer comes "
        "one frame after the last event, once the game has handled it)"
    )
    ms: int = Field(description="the game's milliseconds for the same")
    screenshot: ScreenshotAnswer | None = Field(
        None, description="with `screenshot`: the game as it is after the steps"
    )


class EvaluateAnswer(Answer):
    type: str = Field(description="Godot's Variant type of the result")
    value: Any = Field(description="the result as typed JSON (a node: {object, class, id, path})")
    self_: str = Field(alias="self", description="the path of the node the expression ran on")


class SetPropertyAnswer(Answer):
    path: str = Field(description="the node's path")
    property: str
    old: GameValue = Field(description="the value before")
    new: GameValue = Field(description="the value read back after setting it")


# -- operations ----------------------------------------------------------------------

_HANDS_NOTE = (
    " The bridge puts its small game-side helper into the game first (once a game run, "
    "with Godot's live-edit messages; nothing is written to the project); 409 `conflict` "
    "when that cannot be done (no node of the game comes from a scene file)."
)

GAME_INPUT = Operation(
    name="game_input",
    path="/game/input",
    summary="press actions and keys, move and click the mouse, type text in the running game",
    description="The steps run in order in the game, which sees them exactly as real input "
    "(`Input.parse_input_event`: `_input`, `_unhandled_input`, GUI, `Input.is_action_pressed`)."
    " A press without `pressed` is held for `frames` frames then released; `wait` waits "
    "frames or milliseconds. Answers when all are done (one frame after the last event), "
    "with the frames it took, and a screenshot with `screenshot`. 409 `not_running` without "
    "a game, 409 `conflict` while the game is stopped at a breakpoint (input needs it to "
    "run); 400 naming the field for an unknown action or key." + _HANDS_NOTE,
    arguments=InputArguments,
    answer=InputAnswer,
    errors=(*_GAME, "no_display", "unsupported_by_godot"),
    tags=("game",),
    effect="control",
)

GAME_EVALUATE = Operation(
    name="game_evaluate",
    path="/game/evaluate",
    summary="evaluate an expression in the running game, no breakpoint needed",
    description="A Godot `Expression` run in the game with the node at `path` (or `id`; "
    "default: the current scene) as `self`; answers the typed value. 422 `evaluate_failed` "
    "with Godot's message when it does not parse or fails; 404 for a node that is not "
    "there. Works while the game runs and while it is stopped. A reading operation (open to "
    "everyone under a control lease): an expression that calls a method with side effects "
    "has them all the same." + _HANDS_NOTE,
    arguments=EvaluateArguments,
    answer=EvaluateAnswer,
    errors=(*_GAME, "evaluate_failed"),
    tags=("game",),
    effect="read",
)

GAME_SET_PROPERTY = Operation(
    name="game_set_property",
    path="/game/set_property",
    summary="set a property of a node in the running game (never saved to the scene)",
    description="Sets it in the game only (the scene file is not touched): the next "
    "/game/node read and the next screenshot show it. `value` is typed JSON, made into the "
    "property's type in the game; answers the old value and the value read back. 404 for a "
    "node or property that is not there, 400 (`value`) for a value that cannot be one of "
    "the property's type." + _HANDS_NOTE,
    arguments=SetPropertyArguments,
    answer=SetPropertyAnswer,
    errors=_GAME,
    tags=("game",),
    effect="control",
)

OPERATIONS: tuple[Operation[Any], ...] = (GAME_INPUT, GAME_EVALUATE, GAME_SET_PROPERTY)


def register(
    routes: RouteTable,
    session: DapSession,
    display: Callable[[], GameDisplay],
    suspended: Callable[[], bool],
) -> None:
    """Serve the hands' operations for the session's game; `suspended` says whether the
    bridge's time control holds the game still (it then runs no frames)."""
    hands = _Hands(session, display, suspended)
    routes.serve(GAME_INPUT, hands.input)
    routes.serve(GAME_EVALUATE, hands.evaluate)
    routes.serve(GAME_SET_PROPERTY, hands.set_property)


# -- checks -------------------------------------------------------------------------


def step_lacks(step: InputStep) -> tuple[str, str] | None:
    """The field a step's type needs and the step lacks, with why; None when complete."""
    needs = {"action": "action", "key": "key", "text": "text"}
    field = needs.get(step.type)
    if field is not None and getattr(step, field) is None:
        return field, f"a `{step.type}` step needs it"
    if step.type == "mouse_motion" and step.position is None and step.relative is None:
        return "position", "a `mouse_motion` step needs `position` or `relative`"
    if step.type == "wait" and step.frames is None and step.ms is None:
        return "frames", "a `wait` step needs `frames` or `ms`"
    return None


def _target(args: NodeTarget) -> dict[str, Any]:
    if args.id is not None:
        return {"id": args.id}
    return {"path": absolute(args.path)} if args.path is not None else {}


class _Hands:
    def __init__(
        self,
        session: DapSession,
        display: Callable[[], GameDisplay],
        suspended: Callable[[], bool],
    ) -> None:
        self.session = session
        self.suspended = suspended
        self.hands: GameHands = session.game_hands
        self.screenshots = Screenshots(session, display)

    def _require_game(self) -> None:
        # Without the debug adapter there is no telling whether a game runs: 503, not 409.
        if not self.session.peer.connected:
            raise self.session.peer.unavailable()
        if not self.session.running:
            raise RequestError("no game is running; POST /debug/launch first", code="not_running")

    async def input(self, args: InputArguments, caller: Caller) -> InputAnswer:
        frames, ms = args.waits()
        self._require_game()
        stop = self.session.stopped
        if stop is not None:
            raise RequestError(
                "the game is stopped (a breakpoint, a step or a pause): injected input reaches "
                "it only while it runs; POST /debug/continue first",
                code="conflict",
                details={"reason": "game_stopped"},
            )
        if args.screenshot and self.screenshots.display().mode == "headless":
            # Said before the input is done, not after: the agent can drop `screenshot`.
            raise RequestError(
                NO_DISPLAY_MESSAGE, code="no_display", details={"field": "screenshot"}
            )
        if self.suspended():
            # Godot's suspend (the Game view's pause) disables the game's input
            # (RuntimeNodeSelect::_update_input_state) and next_frame leaves it so.
            raise RequestError(
                "the game is suspended (/game/suspend): Godot turns the game's input off "
                "while it is, advanced frames included, so injected input would be lost. "
                "POST /game/resume first (a press held for `frames` frames is exact)",
                code="conflict",
                details={"reason": "game_suspended"},
            )
        steps = [
            s.model_dump(exclude_none=True, exclude_defaults=True) | {"type": s.type}
            for s in args.steps
        ]
        wait = frames * SECONDS_PER_FRAME + ms / 1000
        request = {"steps": steps}
        done = await self.hands.call(caller.identity, "input", request, wait)
        answer = InputAnswer(
            steps=int(done["steps"]), frames=int(done["frames"]), ms=int(done["ms"])
        )
        if args.screenshot:
            shot = ScreenshotArguments(max_width=args.max_width)
            answer.screenshot = await self.screenshots.take(shot, caller)
        return answer

    async def evaluate(self, args: EvaluateArguments, caller: Caller) -> Any:
        self._require_game()
        request = {"expression": args.expression, **_target(args)}
        done = await self.hands.call(caller.identity, "evaluate", request, 0.0)
        value = done["value"]
        return {"type": value["type"], "value": value["value"], "self": done["self"]}

    async def set_property(self, args: SetPropertyArguments, caller: Caller) -> Any:
        self._require_game()
        request = {"property": args.property, "value": args.value, **_target(args)}
        done = await self.hands.call(caller.identity, "set_property", request, 0.0)
        return {
            "path": done["path"],
            "property": args.property,
            "old": done["old"],
            "new": done["new"],
        }

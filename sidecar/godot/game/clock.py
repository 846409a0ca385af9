"""The running game's clock: suspend, resume, advance frame by frame, time scale.

Three messages of Godot's `scene` capture do it (scene/debugger/scene_debugger.cpp):
`scene:suspend_changed [bool]` (`SceneTree.set_suspend`: no `_process`, no
`_physics_process`, no timers, physics servers off; the debugger does not stop),
`scene:speed_changed [float]` (`Engine.set_user_time_scale`) and `scene:next_frame []`:
on a suspended tree it un-suspends it and re-suspends it when the RenderingServer emits
`frame_post_draw` (one shot). Facts measured on Godot 4.6.3 (docs/GAME_MESSAGES.md):

- A game that renders (a window, or the bridge's Xvfb) runs exactly one `_process`
  per `next_frame`. A **headless** game never draws, so `frame_post_draw` never comes
  and `next_frame` un-suspends it for good: advancing is refused there (409 `no_display`).
- Several `next_frame`s handled in one poll of the game's debugger make one frame (5 sent
  back to back gave 2 frames). So a frame is taken only once the previous one is known to
  be done: `next_frame` and a request the game answers (the ping, a scene tree) go out
  together; the game handles messages in order, so its answer says `next_frame` was
  handled; a request sent after that answer (a second ping, or the condition's read) is
  handled in a later poll, i.e. after the frame ran (the game polls its debugger once per
  frame, after drawing), or inside the frame when it stopped in the debugger.
- A stop inside the frame: Godot's adapter announces a pause or an error stop as soon as the
  game says it stopped (before the answers that follow), a breakpoint stop only once it has
  the stack (one more round trip to the game). So while any breakpoint is set, a third ping
  a frame makes sure a stop in this frame is seen before the next `next_frame` goes out;
  `frames` then counts the frames that ran, the stopped one included.
- Nothing the game sends tells whether it is suspended: the state here is what the bridge
  last set in this game, kept per game (a new game starts running at scale 1).

An "advance until" checks a `Condition` after each frame: a small async function the
caller plugs in (a property read through the inspector, an expression the game
evaluates, ...), always sent after the frame's ping was answered, so it reads the values
the frame left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sidecar.errors import RequestError
from sidecar.godot.game.channel import GameSession

SUSPEND = "scene:suspend_changed"
NEXT_FRAME = "scene:next_frame"
SPEED = "scene:speed_changed"

MAX_FRAMES = 1000  # most frames one advance may take
MAX_TIMEOUT = 120.0  # seconds one advance may last at most

Reason = Literal["frames", "condition", "frame_limit", "timeout", "stopped", "game_ended"]


@dataclass(frozen=True)
class Check:
    """What a condition said after a frame: whether it holds, and the values it read."""

    holds: bool
    values: dict[str, Any]


# A condition over the game's state, checked after each frame (agent → its verdict).
Condition = Callable[[str], Awaitable[Check]]


# What the clock needs of the DAP session (`DapSession`): what the channel needs.
ClockSession = GameSession


@dataclass
class ClockState:
    """What the bridge set in one game (game numbers as /status counts them)."""

    game: int = 0
    suspended: bool = False
    time_scale: float = 1.0
    frames_advanced: int = 0  # by advances in this game
    changed_by: str | None = None
    changed_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "game": self.game,
            "suspended": self.suspended,
            "time_scale": self.time_scale,
            "frames_advanced": self.frames_advanced,
            "changed_by": self.changed_by,
            "changed_at": None if self.changed_at is None else round(self.changed_at, 3),
        }


@dataclass
class Advance:
    """The outcome of one advance."""

    frames: int = 0
    reason: Reason = "frames"
    check: Check | None = None
    elapsed_s: float = 0.0
    stop: dict[str, Any] | None = field(default=None)


class GameClock:
    """Suspend, resume, step and scale the running game's time, shared by every agent."""

    def __init__(
        self,
        session: ClockSession,
        game_number: Callable[[], int],
        ping: Callable[[str], Awaitable[Any]],
        can_step: Callable[[], str | None],
        send_now: Callable[[str, list[Any]], Awaitable[None]],
        may_break: Callable[[], bool] = lambda: True,
    ) -> None:
        self._session = session
        self._game_number = game_number  # which game runs now (counts set_pid)
        self._ping = ping  # a request the game answers (its scene tree)
        self._can_step = can_step  # None, or why next_frame cannot work (headless)
        # Writes a message to the game now (`godot/put_msg`); awaiting it: Godot's answer.
        self._send_now = send_now
        # Whether a breakpoint may stop a frame (any set): such a stop costs one more ping
        # a frame to be told apart (pauses and errors are announced at once).
        self._may_break = may_break
        self._state = ClockState()
        self._advance_lock = asyncio.Lock()  # one advance at a time: frames are shared
        self._advancing: str | None = None  # the agent whose advance runs now

    # -- state -----------------------------------------------------------------------

    @property
    def state(self) -> ClockState:
        """This game's state (a new game starts afresh: running, at scale 1)."""
        game = self._game_number()
        if self._state.game != game:
            self._state = ClockState(game=game)
        return self._state

    def status(self) -> dict[str, Any]:
        """For /status `game.clock` and GET /game/clock."""
        shown = self.state.as_json()
        shown["running"] = self._session.running
        shown["advancing"] = self._advancing
        shown["can_advance"] = self._can_step() is None
        return shown

    def _require_running(self) -> None:
        if not self._session.running:
            raise RequestError("no game is running; POST /debug/launch first", code="not_running")

    def _changed(self, agent: str) -> ClockState:
        state = self.state
        state.changed_by, state.changed_at = agent, time.time()
        return state

    # -- commands --------------------------------------------------------------------

    async def suspend(self, agent: str) -> ClockState:
        self._require_running()
        await self._send(agent, SUSPEND, [True])
        self._changed(agent).suspended = True
        return self.state

    async def resume(self, agent: str) -> ClockState:
        self._require_running()
        if self._advancing is not None:
            # Resumed mid-advance, the frames would run on their own and `frames` lie.
            raise RequestError(
                f"{self._advancing} is advancing the game frame by frame; resume once that "
                "advance has answered",
                code="conflict",
                details={"advancing": self._advancing},
            )
        await self._send(agent, SUSPEND, [False])
        self._changed(agent).suspended = False
        return self.state

    async def set_time_scale(self, agent: str, scale: float) -> ClockState:
        self._require_running()
        await self._send(agent, SPEED, [float(scale)])
        self._changed(agent).time_scale = float(scale)
        return self.state

    async def advance(
        self,
        agent: str,
        frames: int,
        timeout: float,
        until: Condition | None = None,
    ) -> Advance:
        """Run `frames` frames one by one (suspending the game first when it runs; it
        stays suspended), or fewer when `until` holds after one of them."""
        self._require_running()
        why_not = self._can_step()
        if why_not is not None:
            raise RequestError(why_not, code="no_display")
        async with self._advance_lock:
            self._advancing = agent
            started = time.monotonic()
            game = self.state.game
            outcome = Advance()
            try:
                await self._advance(agent, frames, started + timeout, until, outcome)
            except RequestError as err:
                if err.code != "not_running" or not outcome.frames:
                    raise
                outcome.reason = "game_ended"  # it ended between two frames
            finally:
                self._advancing = None
            outcome.elapsed_s = time.monotonic() - started
            if self.state.game == game:
                self.state.frames_advanced += outcome.frames
            return outcome

    async def _advance(
        self,
        agent: str,
        frames: int,
        deadline: float,
        until: Condition | None,
        outcome: Advance,
    ) -> Advance:
        game = self.state.game
        if until is not None:
            outcome.check = await until(agent)  # a bad condition fails before any change
        if not self.state.suspended:
            await self.suspend(agent)
        self._changed(agent)
        if outcome.check is not None and outcome.check.holds:
            outcome.reason = "condition"  # already true: no frame taken
            return outcome
        while outcome.frames < frames:
            if time.monotonic() >= deadline:
                outcome.reason = "timeout"
                return outcome
            # Written at once, the ping right behind it.
            sent = asyncio.ensure_future(self._send_now(NEXT_FRAME, []))
            try:
                # Answered: next_frame was handled (maybe in the same poll as the ping).
                await self._ping(agent)
            except BaseException:
                with contextlib.suppress(Exception):
                    await sent  # its answer is taken (the peer forgets the call) either way
                raise
            await sent
            outcome.frames += 1  # it runs now (a stop seen from here on is in this frame)
            if self._ended(game, outcome) or self._stopped(outcome):
                return outcome
            # Sent after that answer, so handled in a later poll: after the frame (the game
            # polls once a frame, after drawing), or inside it, stopped in the debugger.
            if until is not None:
                outcome.check = await until(agent)
            else:
                await self._ping(agent)
            if self._ended(game, outcome) or self._stopped(outcome):
                return outcome
            if self._may_break():
                # A breakpoint stop is announced once the adapter has the stack: before the
                # answer to a request sent after one answered from inside the stop.
                await self._ping(agent)
                if self._ended(game, outcome) or self._stopped(outcome):
                    return outcome
            if outcome.check is not None and outcome.check.holds:
                outcome.reason = "condition"
                return outcome
        if until is not None:
            outcome.reason = "frame_limit"
        return outcome

    def _ended(self, game: int, outcome: Advance) -> bool:
        if self._session.running and self._game_number() == game:
            return False
        outcome.reason = "game_ended"
        return True

    def _stopped(self, outcome: Advance) -> bool:
        """The game stopped in the debugger (a breakpoint in the frame): the frame is
        left half done and the advance ends; `continue` finishes it (then suspended).

        Godot's adapter says `stopped` once it has the stack: after the game's answers to
        what was sent before the stop, but before those to what is sent after them.
        """
        stop = self._session.stopped
        if stop is None:
            return False
        outcome.reason = "stopped"
        outcome.stop = {"reason": getattr(stop, "reason", None) or "debugger"}
        return True

    async def _send(self, agent: str, message: str, data: list[Any]) -> None:
        # Only sent (timeout 0): these messages have no answer.
        await self._session.put_msg(agent, message, data, message, timeout=0.0)

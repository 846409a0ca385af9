"""The inspector: stack, scopes, variables and evaluations of the stopped game.

What it hands out (frame ids, variable references) is good for the current stop only
and checked against that: Godot resumes the game when asked to evaluate in a frame that
does not exist, and looks for an unknown reference in vain for seconds. Identical
concurrent reads share one request; `variables` is retried while the editor is still
fetching a frame's variables from the game.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sidecar.errors import RequestError
from sidecar.godot.dap.answers import GodotError, as_dict, error_text
from sidecar.godot.dap.events import EventLog
from sidecar.godot.dap.game import GameState, StopInfo

Args = dict[str, Any]
THREAD_ID = 1  # Godot debugs one thread and always calls it 1
VARIABLES_PATIENCE = 3.0
VARIABLES_RETRY_DELAY = 0.1
# A failed evaluation is answered like a null; the game's error message follows its
# `evaluation_return` at once (same debug-loop turn): waited for this long at most.
EVAL_ERROR_WAIT = 0.5
EVALUATION_RETURN = frozenset({"evaluation_return"})
ANY_MESSAGE = None
# What a game sends on its own while stopped (the editor asks it to redraw ~35 times a
# second) or running: not an answer to anything, so an evaluation's error may follow.
BACKGROUND_MESSAGES = ("servers:", "performance:")
# One request to Godot in `agent`'s turn: (agent, command, arguments) → its answer's body.
Godot = Callable[[str, str, Args | None], Awaitable[Args]]


class Inspector:
    """Reads of the stopped game, with the ids handed out during the current stop."""

    def __init__(self, game: GameState, godot: Godot, custom_data: EventLog) -> None:
        self._game = game
        self._godot = godot
        # The game's debugger messages: the real message of a failed evaluation.
        self._custom_data = custom_data
        self._trace_cache: dict[int, Args] = {}
        self._inflight: dict[str, asyncio.Future[Args]] = {}
        self._frame_lock = asyncio.Lock()
        self._frame_scopes: dict[int, Args] = {}  # frameId → scopes, this stop
        # variablesReference values handed out this stop (scopes, variables, evaluate).
        self._refs: set[int] = set()
        self._frame_self: dict[int, bool] = {}  # frameId → has an instance, this stop
        self._eval_lock = asyncio.Lock()  # Godot keeps one pending evaluation per text

    def forget(self) -> None:
        """Frame and variable ids die with the stop that made them."""
        self._trace_cache.clear()
        self._frame_scopes.clear()
        self._refs.clear()
        self._frame_self.clear()

    def forget_trace(self) -> None:
        """The stack may only now be there (a pause's second announcement)."""
        self._trace_cache.clear()

    def cache_trace(self, epoch: int, frames: list[Args]) -> None:
        self._trace_cache[epoch] = {"stackFrames": frames}

    async def threads(self, agent: str) -> Args:
        return await self.shared("threads", lambda: self._godot(agent, "threads", None))

    async def shared(self, key: str, make: Callable[[], Awaitable[Args]]) -> Args:
        """Identical concurrent reads share one request to Godot."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            self._inflight[key] = future
            future.add_done_callback(lambda f: self._settled(key, f))
        return await asyncio.shield(future)

    def _settled(self, key: str, future: asyncio.Future[Args]) -> None:
        self._inflight.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved here in case every waiter has gone

    async def frames(self, agent: str, thread: int) -> list[Args]:
        return list((await self.trace(agent, thread)).get("stackFrames", []))

    async def trace(self, agent: str, thread: int) -> Args:
        stop = await self._game.stopped("stackTrace")
        cached = self._trace_cache.get(stop.epoch)
        if cached is not None:
            return cached

        async def fetch() -> Args:
            body = await self._godot(agent, "stackTrace", {"threadId": thread})
            if self._game.stop is stop:
                self._trace_cache[stop.epoch] = body
            return body

        return await self.shared(f"stackTrace:{stop.epoch}", fetch)

    async def stack_trace(self, agent: str, thread: int, start: int, levels: int) -> Args:
        """Frames from `start` (0: the top one), at most `levels` of them (0: all)."""
        frames = await self.frames(agent, thread)
        end = start + levels if levels > 0 else None
        return {"stackFrames": frames[start:end], "totalFrames": len(frames)}

    async def scopes(self, agent: str, frame: int) -> Args:
        await self._game.stopped("scopes")
        await self._require_frame(agent, frame, "scopes")
        async with self._frame_lock:
            return await self._load_frame(agent, frame)

    async def _require_frame(self, agent: str, frame: int, command: str) -> None:
        """`frame` must be one of this stop's frames, checked here: asked to evaluate in
        a frame that does not exist, Godot lets the game run on and times out."""
        frames = await self.frames(agent, THREAD_ID)
        if not frames:
            raise RequestError(
                f"'{command}' needs a frame, and the game stopped outside any script (a "
                "pause between frames has no stack). Set a breakpoint and continue, or "
                "step, to stop inside a script",
                status=409,
                code="not_stopped",
                details={"command": command, "frames": 0},
            )
        if not 0 <= frame < len(frames):
            raise RequestError(
                f"no frame {frame}: the stack has {len(frames)} frame(s), ids 0 to "
                f"{len(frames) - 1}; see /debug/stackTrace",
                code="invalid_field",
                details={"field": "frameId"},
            )

    async def _load_frame(self, agent: str, frame: int) -> Args:
        """A frame's scopes, once the editor holds that frame's variables.

        The editor files incoming variables under whichever frame was asked for last,
        so frames are loaded one at a time (under `_frame_lock`), each until its
        variables are in. It fetches frame 0's by itself at every stop: that load
        must be over before another frame is asked for, or it lands in that frame.
        """
        cached = self._frame_scopes.get(frame)
        if cached is not None:
            return cached
        epoch = self._game.require_stopped("scopes").epoch
        if frame != 0:
            await self._load_frame(agent, 0)
        body = await self._godot(agent, "scopes", {"frameId": frame})
        refs = [
            s["variablesReference"]
            for s in body.get("scopes", [])
            if isinstance(s, dict) and isinstance(s.get("variablesReference"), int)
        ]
        if refs:
            await self._variables(agent, refs[0], {})
        if self._game.epoch == epoch:
            self._frame_scopes[frame] = body
            self._refs.update(refs)
        return body

    async def variables(
        self,
        agent: str,
        ref: int,
        *,
        filter: str | None = None,
        start: int | None = None,
        count: int | None = None,
    ) -> Args:
        """The children of a reference handed out this stop (DAP's paging as given)."""
        paging = {"filter": filter, "start": start, "count": count}
        extra = {k: v for k, v in paging.items() if v is not None}
        stop = await self._game.stopped("variables")
        if ref not in self._refs:
            # Godot would look for an unknown id in vain for seconds: answer at once.
            raise RequestError(
                f"variablesReference {ref} was not handed out during this stop; take one "
                "from /debug/scopes, a variable or an evaluate result of the current stop "
                "(ids die when the game runs on)",
                code="invalid_field",
                details={"field": "variablesReference"},
            )
        key = f"variables:{stop.epoch}:{ref}:{json.dumps(extra, sort_keys=True)}"
        body = await self.shared(key, lambda: self._variables(agent, ref, extra))
        self._hand_out(stop, body.get("variables"))
        return body

    def _hand_out(self, stop: StopInfo, items: Any) -> None:
        """Remember the child references of variables given to an agent this stop."""
        if self._game.stop is not stop or not isinstance(items, list):
            return
        for item in items:
            ref = item.get("variablesReference") if isinstance(item, dict) else None
            if isinstance(ref, int) and not isinstance(ref, bool) and ref > 0:
                self._refs.add(ref)

    async def _variables(self, agent: str, ref: int, extra: Args) -> Args:
        """Retry while the editor is still fetching the frame's variables from the game."""
        arguments = {"variablesReference": ref, **extra}
        deadline = time.monotonic() + VARIABLES_PATIENCE
        while True:
            try:
                return await self._godot(agent, "variables", arguments)
            except GodotError as err:
                # "unknown" is all Godot says for "not fetched yet" and "no such id".
                if err.godot_error != "unknown" or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(VARIABLES_RETRY_DELAY)
            self._game.require_stopped("variables")

    async def evaluate(
        self,
        agent: str,
        expression: str,
        frame: int = 0,
        context: str | None = None,
        *,
        instance_known: bool = False,
    ) -> Args:
        """`expression` in `frame` (explicit: without a frameId Godot uses whichever
        frame was inspected last). `instance_known`: the caller knows the frame has a
        self (the check costs three requests to Godot)."""
        arguments: Args = {"expression": expression, "frameId": frame}
        if context is not None:
            arguments["context"] = context
        # Godot defers evaluate until the game answers: with the game running that
        # stalls every request on the connection for seconds.
        stop = await self._game.stopped("evaluate")
        await self._require_frame(agent, frame, "evaluate")
        if not instance_known and not await self.has_instance(agent, frame):
            raise RequestError(
                f"frame {frame} is a static function (no self): Godot evaluates only in "
                "frames with an instance, and would let the game run on; use another "
                "frameId (see /debug/stackTrace) or read its locals with /debug/scopes",
                code="invalid_field",
                details={"field": "frameId"},
            )
        # Godot files results under the expression's text: one evaluation at a time.
        async with self._eval_lock:
            self._game.require_stopped("evaluate")
            since = self._custom_data.latest
            body = await self._godot(agent, "evaluate", arguments)
            error = await self.evaluation_error(expression, since)
        if error is not None:
            raise RequestError(
                f"evaluating '{expression}' failed in the game: {error}",
                status=422,
                code="evaluate_failed",
                details={"expression": expression, "godot_message": error},
            )
        self._hand_out(stop, [body])
        return body

    async def has_instance(self, agent: str, frame: int) -> bool:
        """Whether the frame has a `self` (the game lists it first among its members)."""
        known = self._frame_self.get(frame)
        if known is not None:
            return known
        epoch = self._game.epoch
        async with self._frame_lock:
            scopes = (await self._load_frame(agent, frame)).get("scopes") or []
        refs = [s.get("variablesReference") for s in scopes if isinstance(s, dict)]
        if len(refs) < 2 or not isinstance(refs[1], int):
            return True  # no Members scope to look at: let Godot try
        members = (await self._variables(agent, refs[1], {})).get("variables") or []
        has = any(isinstance(v, dict) and v.get("name") == "self" for v in members)
        if self._game.epoch == epoch:
            self._frame_self[frame] = has
        return has

    async def evaluation_error(self, expression: str, since: int) -> str | None:
        """The game's message when an evaluation failed, None when it gave a value.

        A failed evaluation comes back as a null `evaluation_return`; the game sends the
        error that explains it on its next debug-loop turn, before anything else.
        """
        if self._custom_data.latest == 0:
            return None  # this Godot forwards no game messages: nothing to wait for
        deadline = time.monotonic() + EVAL_ERROR_WAIT
        returned = None
        while returned is None:
            event = await self._custom_data.next_of(
                since, EVALUATION_RETURN, deadline - time.monotonic()
            )
            if event is None:
                return None  # no custom data on this connection: nothing to tell
            since = event.seq
            data = event.body.get("data") or []
            if data and data[0] == expression:
                returned = data
        if len(returned) < 4 or returned[3] is not None:
            return None  # a value: an evaluation that failed returns null
        while True:
            nxt = await self._custom_data.next_of(since, ANY_MESSAGE, deadline - time.monotonic())
            if nxt is None:
                return None  # a real null
            since = nxt.seq
            if nxt.event == "error":
                return error_text(nxt.body.get("data") or [])
            if not nxt.event.startswith(BACKGROUND_MESSAGES):
                return None  # the game went on to something else: a real null


def frame_keys(frames: list[Args]) -> list[tuple[Any, Any]]:
    """Frames as (function, script): what stays the same while a frame runs on."""
    keys: list[tuple[Any, Any]] = []
    for frame in frames:
        keys.append((frame.get("name"), as_dict(frame.get("source")).get("path")))
    return keys

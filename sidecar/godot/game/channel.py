"""Asking the running game for its scene tree and for one object's properties.

The questions go to the game as `godot/put_msg` (through `DapSession.put_msg`); the
answers come back among the game's `godot/custom_data` messages, which the DAP session
hands to `feed`. Neither `scene:scene_tree` nor `scene:inspect_objects` carries a
request id (docs/GAME_MESSAGES.md), so:

- one request per kind is in flight at a time (an `asyncio.Lock` per kind), and the
  first matching message after it was sent is its answer;
- agents asking the same thing at the same moment share one request and its answer
  (the tree is the same tree; 100 agents must not make 100 round trips);
- an inspect answer is matched by the object ids inside it, as well.

Every wait is bounded: a silent game is a 504 `timeout`, no game a 409 `not_running`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from sidecar.errors import PeerTimeout, RequestError
from sidecar.godot.game.messages import (
    INSPECT_OBJECT,
    INSPECT_OBJECTS,
    SCENE_TREE,
    InspectedObject,
    SceneNode,
    parse_inspect_object,
    parse_inspect_objects,
    parse_scene_tree,
)

TREE_WAIT = 5.0  # seconds a game may take to send its tree (thousands of nodes: ~100 ms)
INSPECT_WAIT = 5.0
# Godot before 4.5 ignores `scene:inspect_objects` silently; this long without any word
# on it and the older `scene:inspect_object` is tried (and kept from then on).
PROBE_WAIT = 1.5
# What an `inspect_objects` of an id that does not exist gets instead of an answer.
SELECTION_INVALIDATED = "remote_selection_invalidated"
# Godot's JSON reader turns every number of a `put_msg` into a double: ids above this
# would reach the game as another number.
MAX_EXACT_ID = 2**53

T = TypeVar("T")


class GameSession(Protocol):
    """What the channel needs of the DAP session (`DapSession`)."""

    @property
    def running(self) -> bool: ...

    async def put_msg(
        self,
        agent: str,
        message: str,
        data: list[Any],
        answer: str,
        *,
        matches: Callable[[list[Any]], bool] | None = None,
        timeout: float | None = None,
    ) -> Any: ...


class _Waiter:
    """One awaited answer: the first fed message of `kinds` whose data `accepts`."""

    def __init__(self, kinds: frozenset[str], accepts: Callable[[str, list[Any]], bool]) -> None:
        self.kinds = kinds
        self.accepts = accepts
        self.future: asyncio.Future[tuple[str, list[Any]]] = (
            asyncio.get_running_loop().create_future()
        )


class GameChannel:
    """The scene tree and object inspection of the running game, shared by every agent."""

    def __init__(self, session: GameSession) -> None:
        self._session = session
        self._waiters: list[_Waiter] = []
        self._tree_lock = asyncio.Lock()
        self._inspect_lock = asyncio.Lock()
        self._shared: dict[Any, asyncio.Future[Any]] = {}
        # (major, minor) when known (set by whoever learns it); decides the inspect message.
        self.godot_version: tuple[int, int] | None = None
        self._old_inspect: bool | None = None  # learnt by probing when the version is unknown
        self.latest_tree: SceneNode | None = None  # the last tree the game sent, asked or not

    # -- the seam with DapSession ------------------------------------------------------

    def feed(self, message: str, data: list[Any]) -> None:
        """One `godot/custom_data` message of the game (called for every one)."""
        for waiter in list(self._waiters):
            if message in waiter.kinds and not waiter.future.done():
                with contextlib.suppress(Exception):  # a malformed one is not ours
                    if waiter.accepts(message, data):
                        waiter.future.set_result((message, data))

    # -- questions ---------------------------------------------------------------------

    async def tree(self, agent: str) -> SceneNode:
        """The game's whole scene tree, as it is now."""
        return await self._shared_answer(("tree",), lambda: self._ask_tree(agent))

    async def inspect(self, agent: str, object_id: int) -> InspectedObject | None:
        """One object's properties; None when the game has no object with that id."""
        if not 0 < object_id < MAX_EXACT_ID:
            raise RequestError(
                f"object id {object_id} cannot be sent to the game exactly (Godot reads the "
                f"numbers of a debugger message as doubles: ids up to 2^53 only)",
                code="invalid_field",
                details={"field": "id"},
            )
        return await self._shared_answer(
            ("inspect", object_id), lambda: self._ask_inspect(agent, object_id)
        )

    async def _shared_answer(self, key: Any, ask: Callable[[], Awaitable[T]]) -> T:
        """The answer of the request for `key` in flight, or of a new one."""
        self._require_running()
        pending = self._shared.get(key)
        if pending is None:
            pending = asyncio.ensure_future(ask())
            self._shared[key] = pending
            pending.add_done_callback(lambda _: self._shared.pop(key, None))
        # Shielded: one agent giving up does not cancel the others' answer.
        result: T = await asyncio.shield(pending)
        return result

    def _require_running(self) -> None:
        if not self._session.running:
            raise RequestError(
                "no game is running; POST /debug/launch first",
                code="not_running",
            )

    async def _ask_tree(self, agent: str) -> SceneNode:
        async with self._tree_lock:
            _, data = await self._ask(
                agent,
                "scene:request_scene_tree",
                [],
                frozenset({SCENE_TREE}),
                lambda _message, _data: True,
                TREE_WAIT,
            )
        tree = parse_scene_tree(data)
        self.latest_tree = tree
        return tree

    async def _ask_inspect(self, agent: str, object_id: int) -> InspectedObject | None:
        async with self._inspect_lock:
            if self._use_old_inspect() is True:
                return await self._inspect_old(agent, object_id, INSPECT_WAIT)
            probing = self._use_old_inspect() is None
            try:
                found = await self._inspect_new(
                    agent, object_id, PROBE_WAIT if probing else INSPECT_WAIT
                )
            except PeerTimeout:
                if not probing:
                    raise
                found = await self._inspect_old(agent, object_id, INSPECT_WAIT)
                self._old_inspect = True  # the newer message went unanswered, this one not
                return found
            self._old_inspect = False
            return found

    def _use_old_inspect(self) -> bool | None:
        if self.godot_version is not None:
            return self.godot_version < (4, 5)
        return self._old_inspect

    async def _inspect_new(self, agent: str, object_id: int, wait: float) -> InspectedObject | None:
        def ours(message: str, data: list[Any]) -> bool:
            if message == SELECTION_INVALIDATED:
                asked = data[0] if data and isinstance(data[0], list) else []
                return object_id in asked
            return any(isinstance(o, list) and o and o[0] == object_id for o in data)

        # false: the game's own runtime selection is left alone.
        message, data = await self._ask(
            agent,
            INSPECT_OBJECTS,
            [[object_id], False],
            frozenset({INSPECT_OBJECTS, SELECTION_INVALIDATED}),
            ours,
            wait,
        )
        if message == SELECTION_INVALIDATED:
            return None
        return next(o for o in parse_inspect_objects(data) if o.object_id == object_id)

    async def _inspect_old(self, agent: str, object_id: int, wait: float) -> InspectedObject | None:
        def ours(_message: str, data: list[Any]) -> bool:
            return not data or data[0] == object_id

        _, data = await self._ask(
            agent, INSPECT_OBJECT, [object_id], frozenset({INSPECT_OBJECT}), ours, wait
        )
        return parse_inspect_object(data)

    async def _ask(
        self,
        agent: str,
        message: str,
        data: list[Any],
        kinds: frozenset[str],
        accepts: Callable[[str, list[Any]], bool],
        wait: float,
    ) -> tuple[str, list[Any]]:
        """Send `message` and wait up to `wait` s for the first fed answer it accepts."""
        waiter = _Waiter(kinds, accepts)
        self._waiters.append(waiter)  # before sending: the game may answer first
        try:
            # The answer is awaited here, through `feed`: put_msg only sends (timeout 0).
            await self._session.put_msg(agent, message, data, next(iter(kinds)), timeout=0.0)
            try:
                return await asyncio.wait_for(asyncio.shield(waiter.future), wait)
            except asyncio.TimeoutError:
                self._require_running()  # the game ended meanwhile: say that instead
                raise PeerTimeout(
                    f"the game did not answer '{message}' within {wait:g} s",
                    details={"godot_message": message},
                ) from None
        finally:
            self._waiters.remove(waiter)

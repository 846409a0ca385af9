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

Screenshots (`scene:rq_screenshot`) do carry a request id: each answer is matched by it.
The game writes the PNG to a temp file and sends its path; the channel reads the file and
deletes it, and deletes the files of answers to its own requests that nobody awaits any
more (a retried request answered late), so no `scr-*.png` is left behind.

Every wait is bounded: a silent game is a 504 `timeout`, no game a 409 `not_running`.
A message the editor's Godot version does not have is a 501 `unsupported_by_godot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sidecar.errors import PeerTimeout, ProtocolError, RequestError, SidecarError
from sidecar.godot.display import INSTALL_HINT
from sidecar.godot.game.messages import (
    ERROR,
    INSPECT_OBJECT,
    INSPECT_OBJECTS,
    SCENE_TREE,
    SCREENSHOT,
    InspectedObject,
    SceneNode,
    parse_error,
    parse_inspect_object,
    parse_inspect_objects,
    parse_scene_tree,
    parse_screenshot,
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

RQ_SCREENSHOT = "scene:rq_screenshot"
REDRAW, REDRAWN = "servers:draw", "servers:drawn"  # a stopped game redraws when asked
SCREENSHOT_WAIT = 10.0  # seconds for a screenshot, retries included (software GL, busy cores)
# A request that reaches a game still starting is dropped without a word (its scene debugger
# is not there yet): every question is sent again when this long passes without an answer,
# the wait doubling each time, within its bounded wait.
RESEND_AFTER = 0.5
# Ids of the bridge's screenshot requests start here: the editor's own Game view numbers
# its requests from 0 on the same game.
FIRST_SCREENSHOT_ID = 1 << 40
SENT_SCREENSHOTS_KEPT = 256  # ids of unanswered requests remembered, to delete late files
# Where the game fails to take one (a headless game has no image), in its `error` message.
SCREENSHOT_FUNCTION = "_msg_rq_screenshot"
NO_DISPLAY_MESSAGE = (
    "the game runs without a display (headless), so it has no picture to take. A headless "
    "editor's games get a virtual display from the bridge when Xvfb is installed: "
    f"{INSTALL_HINT}; then restart the editor. GODOT_BRIDGE_GAME_DISPLAY=off turns that off"
)
# The first Godot release whose game answers each message the bridge sends (read in
# Godot's scene/debugger/scene_debugger.cpp; docs/GAME_MESSAGES.md). Older games ignore
# a message silently, so the version decides, not a wait.
SINCE: dict[str, tuple[int, int]] = {
    "scene:request_scene_tree": (4, 0),
    INSPECT_OBJECT: (4, 0),
    INSPECT_OBJECTS: (4, 5),
    RQ_SCREENSHOT: (4, 5),
    "performance:profile_frame": (4, 0),
}

T = TypeVar("T")


@dataclass(frozen=True)
class Shot:
    """A screenshot of the running game: the PNG the game wrote, read and deleted."""

    width: int
    height: int
    png: bytes
    taken_at: float  # time.time() when its answer came
    round_trip_ms: float  # from the first request sent to the file read
    attempts: int  # requests sent (a game still starting drops the first ones)


class GameSession(Protocol):
    """What the channel needs of the DAP session (`DapSession`)."""

    @property
    def running(self) -> bool: ...

    @property
    def stopped(self) -> Any: ...  # the stop (a breakpoint, a step) while there is one

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
        self._screenshot_ids = itertools.count(FIRST_SCREENSHOT_ID)
        # Ids of requests sent and not answered yet (an OrderedDict used as a bounded set).
        self._sent_screenshots: OrderedDict[int, None] = OrderedDict()

    # -- the seam with DapSession ------------------------------------------------------

    def feed(self, message: str, data: list[Any]) -> None:
        """One `godot/custom_data` message of the game (called for every one)."""
        taken = False
        for waiter in list(self._waiters):
            if message in waiter.kinds and not waiter.future.done():
                with contextlib.suppress(Exception):  # a malformed one is not ours
                    if waiter.accepts(message, data):
                        waiter.future.set_result((message, data))
                        taken = True
        if message == SCREENSHOT:
            self._answered(data, delete=not taken)

    def _answered(self, data: list[Any], *, delete: bool) -> None:
        """A screenshot answer came: forget its request; delete the file of one of ours
        that nobody awaits any more (another game's or the editor's are left alone)."""
        with contextlib.suppress(SidecarError):
            shot = parse_screenshot(data)
            if shot.request_id in self._sent_screenshots:
                del self._sent_screenshots[shot.request_id]
                if delete:
                    with contextlib.suppress(OSError, ValueError):
                        _screenshot_file(shot.png_path).unlink()

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

    async def screenshot(self, agent: str) -> Shot:
        """A PNG of the game's window as it is now (agents asking at once share one)."""
        self.require_message(RQ_SCREENSHOT, "a screenshot of the running game")
        return await self._shared_answer(("screenshot",), lambda: self._ask_screenshot(agent))

    async def fresh_tree(self, agent: str) -> SceneNode:
        """The tree asked now, never the answer of a request already in flight: the game
        handles it after whatever this agent sent before (the game clock relies on it)."""
        self._require_running()
        return await self._ask_tree(agent)

    async def fresh_inspect(self, agent: str, object_id: int) -> InspectedObject | None:
        """`inspect`, asked now (not shared with a request already in flight)."""
        self._require_running()
        return await self._ask_inspect(agent, object_id)

    def require_message(self, message: str, what: str) -> None:
        """A 501 when the editor's Godot is known to be older than `message`."""
        since = SINCE.get(message)
        version = self.godot_version
        if since is None or version is None or version >= since:
            return
        raise SidecarError(
            f"{what} needs Godot {since[0]}.{since[1]} or later (the game message "
            f"'{message}'); this editor runs Godot {version[0]}.{version[1]}: use a newer "
            "Godot for it",
            code="unsupported_by_godot",
            details={"godot_version": f"{version[0]}.{version[1]}", "godot_message": message},
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

    async def _ask_screenshot(self, agent: str) -> Shot:
        started = asyncio.get_running_loop().time()
        asked: list[int] = []

        def new_request() -> list[Any]:
            request_id = next(self._screenshot_ids)
            asked.append(request_id)
            self._sent(request_id)
            return [request_id]

        def ours(message: str, data: list[Any]) -> bool:
            if message == SCREENSHOT:
                return parse_screenshot(data).request_id in asked
            return parse_error(data).function == SCREENSHOT_FUNCTION

        if self._session.stopped is not None:
            # A stopped game draws only when asked: what a step changed is drawn first
            # (the game handles its messages in order, so no need to wait).
            await self._session.put_msg(agent, REDRAW, [], REDRAWN, timeout=0.0)
        # The game's "no image" error also comes before a rendering game's first frame:
        # asked again meanwhile; still so when the time is up, the game has no display.
        message, data = await self._ask(
            agent,
            RQ_SCREENSHOT,
            new_request,
            frozenset({SCREENSHOT, ERROR}),
            ours,
            SCREENSHOT_WAIT,
            not_yet=lambda answer, _data: answer == ERROR,
        )
        if message == ERROR:
            raise RequestError(NO_DISPLAY_MESSAGE, code="no_display")
        shot = parse_screenshot(data)
        png = await asyncio.to_thread(_take_file, shot.png_path)
        return Shot(
            width=shot.width,
            height=shot.height,
            png=png,
            taken_at=time.time(),
            round_trip_ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
            attempts=len(asked),
        )

    def _sent(self, request_id: int) -> None:
        self._sent_screenshots[request_id] = None
        while len(self._sent_screenshots) > SENT_SCREENSHOTS_KEPT:
            self._sent_screenshots.popitem(last=False)

    async def _ask(
        self,
        agent: str,
        message: str,
        data: list[Any] | Callable[[], list[Any]],
        kinds: frozenset[str],
        accepts: Callable[[str, list[Any]], bool],
        wait: float,
        *,
        not_yet: Callable[[str, list[Any]], bool] | None = None,
    ) -> tuple[str, list[Any]]:
        """Send `message` and wait up to `wait` s for the first fed answer it accepts.

        Sent again (`data` called anew when it is a function) after RESEND_AFTER s without
        an answer, the pause doubling: a game still starting drops what it is sent. An
        answer `not_yet` names is kept and the question asked again after the pause; it is
        the answer if nothing better comes in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        waiter = _Waiter(kinds, accepts)
        self._waiters.append(waiter)  # before sending: the game may answer first
        pause, sent = RESEND_AFTER, 0
        last: tuple[str, list[Any]] | None = None
        try:
            while True:
                payload = data() if callable(data) else data
                # The answer is awaited here, through `feed`: put_msg only sends (timeout 0).
                await self._session.put_msg(agent, message, payload, next(iter(kinds)), timeout=0.0)
                sent += 1
                next_send = min(loop.time() + pause, deadline)
                with contextlib.suppress(asyncio.TimeoutError):
                    answer = await asyncio.wait_for(
                        asyncio.shield(waiter.future), max(next_send - loop.time(), 0.0)
                    )
                    if not_yet is None or not not_yet(*answer):
                        return answer
                    last, waiter.future = answer, loop.create_future()
                    await asyncio.sleep(max(next_send - loop.time(), 0.0))
                if loop.time() >= deadline:
                    if last is not None:
                        return last
                    self._require_running()  # the game ended meanwhile: say that instead
                    raise PeerTimeout(
                        f"the game did not answer '{message}' within {wait:g} s "
                        f"({sent} request{'s' if sent > 1 else ''} sent)",
                        details={"godot_message": message},
                    )
                pause *= 2
        finally:
            self._waiters.remove(waiter)


def _screenshot_file(path: str) -> Path:
    """The game's screenshot file; only a `scr-*.png` the game names may be read and
    deleted (whatever else a message says is refused)."""
    file = Path(path)
    if not (file.is_absolute() and file.name.startswith("scr-") and file.suffix == ".png"):
        raise ValueError(f"not a screenshot file of the game: {path!r}")
    return file


def _take_file(path: str) -> bytes:
    """The PNG's bytes; the file is gone afterwards (the game never deletes it)."""
    try:
        file = _screenshot_file(path)
    except ValueError as err:
        raise ProtocolError(str(err), details={"godot_message": SCREENSHOT}) from None
    try:
        data = file.read_bytes()
    except OSError as err:
        raise ProtocolError(
            f"the game's screenshot {path} cannot be read here ({err.strerror}): the bridge "
            "reads the file the game writes, so it must run on the game's machine",
            details={"godot_message": SCREENSHOT},
        ) from None
    with contextlib.suppress(OSError):
        file.unlink()
    return data

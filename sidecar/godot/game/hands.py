"""The bridge's hands in the running game: input, evaluate and set_property (issue 14).

Godot's debugger protocol has no message that injects input or evaluates without a
breakpoint. The addon ships a small game-side scene,
`res://addons/godot_debug_connection/game/agent_hands.tscn`; the bridge puts it into a game
launched from the editor with Godot's own live-edit messages (the ones the editor sends
when a scene is edited while it runs), through `godot/put_msg`:

1. `scene:live_set_root ["/root", <scene file>]`: the live-edit root and the scene file
   whose instances are edited;
2. `scene:live_instantiate_node [".", <hands scene>, <name>]`: the game's LiveEditor
   instantiates the hands under every node of that scene file (its `live_scene_edit_cache`
   holds every node with a `scene_file_path` while a debugger is attached).

The hands move themselves under `/root` (a scene change does not free them), register
`EngineDebugger.register_message_capture("gdbridge", ...)` and say `gdbridge:ready`. The
bridge then sends `gdbridge:<command> [<JSON text>]` and the hands answer
`gdbridge:reply [<JSON text>]` (one JSON string each way: Godot's JSON makes every number
a float and a Vector2 text on the way). Nothing is written to project.godot; an exported
game has no debugger, so nothing can ever put the hands there. docs/GAME_MESSAGES.md tells
the route, why, and what the game sees.

Once per game run (the hands are forgotten at every `set_pid`), lazily at first use; every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from sidecar.errors import PeerTimeout, RequestError, SidecarError
from sidecar.godot.game.channel import GameChannel, GameSession
from sidecar.godot.game.messages import SceneNode

log = logging.getLogger(__name__)

HANDS_SCENE = "res://addons/godot_debug_connection/game/agent_hands.tscn"
HANDS_NAME = "GodotBridgeHands"  # under /root, as agent_hands.gd names itself
READY = "gdbridge:ready"
REPLY = "gdbridge:reply"
LIVE_SET_ROOT = "scene:live_set_root"
LIVE_INSTANTIATE = "scene:live_instantiate_node"
READY_WAIT = 10.0  # seconds for the hands to say ready once injected (a busy game)
INJECT_AGAIN = 2.0  # injected again when this long passes without `ready` (a copy leaves)
ANSWER_WAIT = 10.0  # seconds for an answer, beyond the waits a request asks for itself
SCENE_FILES_TRIED = 4  # scene files of the tree the hands are put under, at most
RUNNING_CHECK = 0.25  # how often a wait looks whether the game ended meanwhile


T = TypeVar("T")


class HandsFailed(RequestError):
    """The hands answered with an error (a bad field, no such node, an evaluate error)."""


@dataclass(frozen=True)
class HandsInfo:
    """What the hands said when they came: their version and where they are."""

    version: int
    path: str


class GameHands:
    """Requests to the game-side hands, for every agent; injects them when needed."""

    def __init__(self, session: GameSession, channel: GameChannel) -> None:
        self._session = session
        self._channel = channel
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[HandsInfo] | None = None
        self._injecting: asyncio.Future[HandsInfo] | None = None
        self.info: HandsInfo | None = None

    # -- the seam with DapSession ------------------------------------------------------

    def feed(self, message: str, data: list[Any]) -> None:
        """One `godot/custom_data` message of the game (called for every one)."""
        if message == "set_pid":  # a new game: its hands are not there yet
            self._forget("the game was launched again")
        elif message == READY:
            self._on_ready(data)
        elif message == REPLY:
            self._on_reply(data)

    def _forget(self, why: str) -> None:
        self.info = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RequestError(f"{why} before it answered", code="not_running"))
        self._pending.clear()

    def _on_ready(self, data: list[Any]) -> None:
        hello = _json_of(data)
        if hello is None:
            return
        info = HandsInfo(int(hello.get("version", 0)), str(hello.get("path", "")))
        self.info = info
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(info)

    def _on_reply(self, data: list[Any]) -> None:
        answer = _json_of(data)
        if answer is None:
            return
        future = self._pending.pop(str(answer.get("request", "")), None)
        if future is not None and not future.done():
            future.set_result(answer)

    # -- requests ----------------------------------------------------------------------

    async def call(self, agent: str, command: str, args: dict[str, Any], wait: float) -> Any:
        """`command` done by the hands (injected first when needed); its result. `wait`:
        the seconds the command itself may take (its own waits), added to ANSWER_WAIT."""
        self._require_running()
        await self.ensure(agent)
        request_id = f"h{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        text = json.dumps({"request": request_id, **args}, separators=(",", ":"))
        try:
            await self._session.put_msg(agent, f"gdbridge:{command}", [text], REPLY, timeout=0.0)
            answer = await self._until(future, ANSWER_WAIT + wait, f"gdbridge:{command}")
        finally:
            self._pending.pop(request_id, None)
        if not answer.get("ok"):
            raise _failure(answer)
        return answer.get("result")

    async def ensure(self, agent: str) -> HandsInfo:
        """The hands of this game run: there already, or put in now (agents asking at the
        same moment share one injection)."""
        if self.info is not None:
            return self.info
        if self._injecting is None or self._injecting.done():
            self._injecting = asyncio.ensure_future(self._inject(agent))
        return await asyncio.shield(self._injecting)

    async def _inject(self, agent: str) -> HandsInfo:
        tree = await self._channel.tree(agent)
        files = scene_files(tree)
        if not files:
            raise RequestError(
                "the running game has no node made from a scene file, so the bridge cannot "
                "put its hands in (it uses Godot's live-edit messages, which work on the "
                "instances of a scene file): input, evaluate and set_property need one",
                code="conflict",
                details={"reason": "no_scene_file"},
            )
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        deadline = loop.time() + READY_WAIT
        attempts = 0
        try:
            while True:
                # One scene file at a time (the hands are instantiated under every instance
                # of it, and all but one leave): the next one when no `ready` came.
                file = files[attempts % len(files)]
                attempts += 1
                await self._session.put_msg(agent, LIVE_SET_ROOT, ["/root", file], "", timeout=0.0)
                await self._session.put_msg(
                    agent, LIVE_INSTANTIATE, [".", HANDS_SCENE, HANDS_NAME], "", timeout=0.0
                )
                pause = min(INJECT_AGAIN, deadline - loop.time())
                with contextlib.suppress(PeerTimeout):
                    return await self._until(self._ready, pause, LIVE_INSTANTIATE)
                if loop.time() >= deadline:
                    raise RequestError(
                        f"the bridge's hands did not come up in the game within {READY_WAIT:g} s "
                        f"(put under the instances of {', '.join(files)} with Godot's live-edit "
                        f"messages): is {HANDS_SCENE} in the project (the addon installed "
                        "whole)? The game's errors (GET /game/errors) may say why",
                        code="conflict",
                        details={"reason": "hands_not_ready", "scene_files": files},
                    )
        finally:
            self._ready = None

    async def _until(
        self,
        future: asyncio.Future[T],
        wait: float,
        message: str,
    ) -> T:
        """The future's result within `wait` s; 409 as soon as the game ends, 504 after."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise PeerTimeout(
                    f"the game's hands did not answer '{message}' within {wait:g} s",
                    details={"godot_message": message},
                )
            with contextlib.suppress(asyncio.TimeoutError):
                return await asyncio.wait_for(asyncio.shield(future), min(left, RUNNING_CHECK))
            self._require_running()

    def _require_running(self) -> None:
        if not self._session.running:
            raise RequestError("no game is running; POST /debug/launch first", code="not_running")


def scene_files(tree: SceneNode) -> list[str]:
    """The scene files the hands can be put under: those of /root's children first (the
    current scene, autoloaded scenes), then deeper ones, each once, the hands' own left out."""
    found: list[str] = []
    for node in [*tree.children, *tree.walk()]:
        file = node.scene_file
        if file and file != HANDS_SCENE and file not in found:
            found.append(file)
    return found[:SCENE_FILES_TRIED]


def _json_of(data: list[Any]) -> dict[str, Any] | None:
    """The one JSON text a hands message carries, as an object (None when it is not)."""
    if len(data) != 1 or not isinstance(data[0], str):
        return None
    with contextlib.suppress(ValueError):
        value = json.loads(data[0])
        if isinstance(value, dict):
            return value
    return None


_KIND_CODES: dict[str, str] = {
    "invalid_field": "invalid_field",
    "not_found": "not_found",
    "evaluate_failed": "evaluate_failed",
}


def _failure(answer: dict[str, Any]) -> SidecarError:
    code = _KIND_CODES.get(str(answer.get("kind")), "bad_peer_message")
    details: dict[str, Any] = {}
    if answer.get("field"):
        details["field"] = str(answer["field"])
    return HandsFailed(
        str(answer.get("error", "the game's hands refused")), code=code, details=details
    )

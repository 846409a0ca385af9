"""The game as the debugger sees it: running or not, stopped where, ended how.

A stop has an epoch: frame ids and variable references handed out during it die with
it (`forget_stop`). The game's process is known by the pid it sends at launch
(`set_pid`), so that an end Godot does not announce can still be told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.errors import RequestError
from sidecar.godot.dap.events import EventLog
from sidecar.godot.identity import ProcessWatch, cmdline, games_of, is_game_of

log = logging.getLogger(__name__)

Args = dict[str, Any]
# After next/stepIn the game stops again within milliseconds; a read arriving in between
# waits this long for that stop instead of failing with 409.
STEP_GRACE = 2.0
# After our terminate, Godot announces the end only if the game's debugger session was up
# (a terminate right after launch gets nothing): past this, the end is inferred.
TERMINATE_WAIT = 2.0
ENDED = frozenset({"terminated", "exited"})
TERMINATED = frozenset({"terminated"})
GAME_KILL_WAIT = 1.0  # between SIGTERM and SIGKILL for a game the editor left behind


@dataclass
class StopInfo:
    reason: str
    epoch: int
    body: Args
    # A breakpoint hit that came while a pause was announced and not yet continued:
    # where the paused game really sits, never to be let run on by itself (hits.py).
    after_pause: bool = False


class GameState:
    """Running, stopped (with the stop's epoch) or not running; and the game's process."""

    def __init__(
        self,
        project: str,
        events: EventLog,
        editor: ProcessWatch | None,
        on_forget: Callable[[], None],
    ) -> None:
        self.project = project
        self._events = events
        self._on_forget = on_forget  # the inspector's ids die with the stop
        self.editor = editor
        self.stop: StopInfo | None = None
        self.running = False
        self.stepping = False  # a next/stepIn was sent and its stop has not come yet
        self.epoch = 0
        self.launch_lock = asyncio.Lock()
        self.launches = 0  # a stop found after connecting is stale once a launch began
        self.game_pid: int | None = None  # from the `set_pid` of the game we launched
        self.pid_wanted = False  # a launch of ours waits for its game's `set_pid`
        self.game_exe: str | None = None  # from the `process` event

    def forget_stop(self) -> None:
        """Frame and variable ids die with the stop that made them."""
        self.stop = None
        self.epoch += 1
        self._on_forget()

    def stopped_now(self, reason: str, body: Args) -> StopInfo:
        """A new stop: the game runs (under the debugger) and sits there."""
        self.forget_stop()
        self.stop = StopInfo(reason, self.epoch, body)
        self.running = True
        self.stepping = False
        return self.stop

    def ended(self) -> None:
        self.forget_stop()
        self.running = self.stepping = False
        if not self.launch_lock.locked():  # else it is the game a launch replaces
            self.game_pid, self.pid_wanted = None, False

    def lost(self) -> None:
        """The adapter went away: what we knew of the game is stale."""
        self.forget_stop()
        self.running = self.stepping = False

    def is_pause_echo(self, body: Args) -> bool:
        return (
            body.get("reason") == "exception"
            and not body.get("text")
            and self.stop is not None
            # A breakpoint hit the pause landed on (issue 14) is that pause too.
            and (self.stop.reason == "paused" or self.stop.after_pause)
        )

    def took_pid(self, data: list[Any]) -> None:
        """The game's `set_pid`: ours only (a game started from the editor's Play
        button is the editor's)."""
        if self.pid_wanted and data and isinstance(data[0], int):
            self.game_pid, self.pid_wanted = data[0], False

    async def stopped(self, command: str) -> StopInfo:
        """The current stop; right after a step, wait briefly for it instead of a 409."""
        deadline = time.monotonic() + STEP_GRACE
        while self.stop is None and self.stepping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await self._events.wait(self._events.latest, remaining)
        return self.require_stopped(command)

    def require_stopped(self, command: str) -> StopInfo:
        if self.stop is None:
            raise self.refusal(command)
        return self.stop

    def refusal(self, command: str) -> RequestError:
        """The 409 for `command` needing a stop the agents have not been shown."""
        state = "running" if self.running else "not running"
        return RequestError(
            f"'{command}' needs the game stopped (at a breakpoint, a step or a pause); "
            f"the game is {state}. Wait for a 'stopped' event in /debug/events, or "
            "POST /debug/pause",
            status=409,
            code="not_stopped",
            details={"command": command, "running": self.running},
        )

    def require_running(self, command: str) -> None:
        if not self.running:
            raise RequestError(
                f"'{command}' needs a running game; POST /debug/launch first",
                status=409,
                code="not_running",
                details={"command": command},
            )

    def gone(self, pid: int | None) -> bool:
        """Whether the game really ended: the one we know by its `set_pid`, else any
        game the editor runs on this project; unknown (no editor pid) is not gone."""
        editor = self.editor.pid if self.editor is not None else None
        if pid is not None:
            return not is_game_of(cmdline(pid), self.project, self.game_exe, editor)
        if editor is None:
            return False  # no process to look at: only Godot's own event says so
        return not games_of(editor, self.project, self.game_exe)

    async def end_if_orphaned(self) -> None:
        """End the game we launched if the editor is gone: nobody else would then."""
        pid, self.game_pid = self.game_pid, None
        if pid is not None and self.editor is not None and self.editor.gone():
            await end_game_process(pid, self.project, self.game_exe, self.editor.pid)


async def end_game_process(
    pid: int, project: str, exe: str | None = None, editor_pid: int | None = None
) -> bool:
    """SIGTERM, then SIGKILL, the game `pid` as long as it still is this editor's game
    on our project (checked before each signal: the pid may be reused meanwhile)."""
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        if not is_game_of(cmdline(pid), project, exe, editor_pid):
            return True  # ended, or the pid now belongs to someone else
        log.info("ending the game (pid %d) launched through the bridge: %s", pid, sig.name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + GAME_KILL_WAIT
        while time.monotonic() < deadline:
            if not cmdline(pid):
                return True
            await asyncio.sleep(0.05)
    return not is_game_of(cmdline(pid), project, exe, editor_pid)

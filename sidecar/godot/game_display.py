"""Where the games of this sidecar's editor render, decided once the addon's link is up.

A GUI editor's games open their window as usual. A headless editor's games get a display:
the one GODOT_BRIDGE_GAME_DISPLAY names (`off`: none), the bridge's Xvfb an earlier sidecar of
the same editor left running for a game, or a new Xvfb of our own (godot/display.py). The
addon is told through the `game_display` editor action and runs the games rendered there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sidecar.godot.display import GameDisplay, Started, VirtualDisplay, accepts

log = logging.getLogger(__name__)

# A display the user names for a headless editor's games (`:N`), or `off`: no display.
GAME_DISPLAY_VARIABLE = "GODOT_BRIDGE_GAME_DISPLAY"
# A launch waits at most this long for the games' display to be decided once linked.
DISPLAY_SETUP_WAIT = 15.0
UNDECIDED = GameDisplay("unknown", None, "the editor has not said yet whether it is headless")

EditorAction = Callable[[str, dict[str, Any], float], Awaitable[Any]]


def godot_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of Godot's version string (`4.6.3.stable.official`), None if none."""
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


class GameDisplayChoice:
    """Decides, once per link, where the editor's games render; owns the Xvfb it starts."""

    def __init__(
        self,
        editor_action: EditorAction,
        editor_pid: int | None,
        on_godot_version: Callable[[tuple[int, int] | None], None],
    ) -> None:
        self._editor_action = editor_action
        self._editor_pid = editor_pid
        self._on_godot_version = on_godot_version
        self.current = UNDECIDED
        self.virtual_display: VirtualDisplay | None = None  # the Xvfb this sidecar started
        self._linked = False
        self._decided = asyncio.Event()
        self._deciding: asyncio.Task[None] | None = None

    def linked(self) -> None:
        """A (new) addon is connected: decide again (an earlier link's question is dropped)."""
        self._linked = True
        if self._deciding is not None:
            self._deciding.cancel()
        self._decided.clear()
        self._deciding = asyncio.ensure_future(self._decide())

    async def ready(self) -> None:
        """Before a launch: the display decided (bounded; served directly: nothing to do)."""
        if not self._linked:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._decided.wait(), DISPLAY_SETUP_WAIT)

    def stopping(self, game_running: bool) -> None:
        """The sidecar is told to stop: an Xvfb no game renders on is ended at once (the
        addon may kill the sidecar as soon as its link is down, before `stop` runs)."""
        if self.virtual_display is not None and not game_running:
            self.virtual_display.terminate()

    async def stop(self, game_running: bool) -> None:
        if self._deciding is not None:
            self._deciding.cancel()
            with contextlib.suppress(BaseException):
                await self._deciding
        if self.virtual_display is None:
            return
        if game_running:
            # The agents' game renders there and outlives this sidecar (issue 11): the
            # Xvfb's keeper ends it with the editor; the next sidecar finds it again.
            await self.virtual_display.leave()
        else:
            await self.virtual_display.stop()

    async def _decide(self) -> None:
        try:
            info = await self._editor_action("editor_info", {}, 10.0)
            self._on_godot_version(godot_version(str(info.get("godot_version", ""))))
            if not info.get("headless"):
                self.current = GameDisplay(
                    "window", None, "the editor has a display: games open their window"
                )
            else:
                chosen = await self._for_headless_editor(str(info.get("game_display") or ""))
                # Said in /status only once the addon runs its games there.
                self.current = await self._tell_addon(chosen)
        except Exception as err:  # the link went, an older addon: games stay as they were
            log.warning("could not give the editor's games a display: %s", err)
            self.current = GameDisplay("headless", None, f"not set up: {err}")
            if self.virtual_display is not None:  # nobody renders there
                await self.virtual_display.stop()
                self.virtual_display = None
        finally:
            self._decided.set()
        say = log.warning if self.current.mode == "headless" else log.info
        say("games of this editor: %s", self.current.as_json())

    async def _tell_addon(self, chosen: GameDisplay) -> GameDisplay:
        """Where the games render once the addon is told `chosen`."""
        if chosen.display is None:
            return chosen
        told = await self._editor_action("game_display", {"display": chosen.display}, 10.0)
        if not (isinstance(told, dict) and told.get("applied")):
            why = told.get("reason") if isinstance(told, dict) else told
            return GameDisplay("headless", None, f"games stay headless: {why}")
        return chosen

    async def _for_headless_editor(self, given: str) -> GameDisplay:
        """`given`: the display the addon's games already have (from an earlier sidecar)."""
        named = os.environ.get(GAME_DISPLAY_VARIABLE, "").strip()
        if named.lower() == "off":
            return GameDisplay("headless", None, f"{GAME_DISPLAY_VARIABLE}=off")
        if named:
            return GameDisplay("virtual", named, f"named by {GAME_DISPLAY_VARIABLE}")
        if self.virtual_display is None and given and await asyncio.to_thread(accepts, given):
            why = "the bridge's Xvfb, started by an earlier sidecar of this editor"
            return GameDisplay("virtual", given, why)
        if self.virtual_display is None:
            self.virtual_display = VirtualDisplay(keep_for=self._editor_pid)
        started = await self.virtual_display.start()
        if isinstance(started, Started):
            why = f"the bridge's Xvfb (its keeper: pid {started.pid})"
            return GameDisplay("virtual", started.display, why)
        self.virtual_display = None
        return GameDisplay("headless", None, started.reason)

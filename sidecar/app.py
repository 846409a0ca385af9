"""The sidecar's application: agents, services and the route table, put together once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from typing import Any

from aiohttp import web

from sidecar import __version__
from sidecar.agents import AgentRegistry
from sidecar.api.debug import register as register_debug
from sidecar.api.editor import register as register_editor
from sidecar.api.frontends import register as register_frontends
from sidecar.api.game import register as register_game
from sidecar.api.game_records import register as register_game_records
from sidecar.api.game_screenshot import register as register_game_screenshot
from sidecar.api.lsp import register as register_lsp
from sidecar.api.status import STATUS
from sidecar.config import Config
from sidecar.errors import TransportError, Unverified, WrongEditor
from sidecar.godot.dap.session import DapSession
from sidecar.godot.display import GameDisplay, Started, VirtualDisplay, accepts
from sidecar.godot.identity import EditorIdentity, editor_of_link, mismatch_message
from sidecar.godot.lsp.session import LspSession
from sidecar.godot.peer import Peer
from sidecar.godot.service import UNVERIFIED, ServiceStatus, State
from sidecar.link.editor_link import EditorActions
from sidecar.web.http import SERVER_LIMITS, RouteTable, make_app
from sidecar.web.operation import Caller, NoArguments

log = logging.getLogger(__name__)

# A display the user names for a headless editor's games (`:N`), or `off`: no display.
GAME_DISPLAY_VARIABLE = "GODOT_BRIDGE_GAME_DISPLAY"
# A launch waits at most this long for the games' display to be decided once linked.
DISPLAY_SETUP_WAIT = 15.0
UNDECIDED = GameDisplay("unknown", None, "the editor has not said yet whether it is headless")

# Without the editor's pid, one DAP attempt waits this long for the LSP's word on whose editor
# it is; then it stays unverified (not connected) and asks again: never trusted by default.
LSP_VERDICT_WAIT = 5.0


class Sidecar:
    """The composition root: everything one sidecar serves, independent of how agent bytes
    reach it (the addon's link or a direct socket)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.agents = AgentRegistry(config.max_clients)
        self.dap_session = DapSession(config)
        self.agents.on_removed = self.dap_session.agent_left  # their breakpoints go too
        self.dap = self.dap_session.status
        self.lsp = ServiceStatus("language_server", config.lsp_port)
        self.lsp_session = LspSession(config, self.lsp)
        # Nothing is sent to a port before it is proven to be our editor's (issue 11).
        editor_pid = config.editor_pid or editor_of_link(config.link_port)
        self.identity = EditorIdentity(editor_pid, config.project)
        self.dap_session.peer.identify = self._identify_dap
        self.lsp_session.peer.identify = self._identify_lsp
        self.routes = RouteTable()
        self._add_status_routes()
        register_debug(
            self.routes,
            self.dap_session,
            lsp=lambda: self.lsp_session,
            others=self._others,
            announce=self._announce,
        )
        register_game(self.routes, self.dap_session)
        register_game_records(self.routes, self.dap_session)
        register_game_screenshot(self.routes, self.dap_session, lambda: self.game_display)
        register_lsp(self.routes, self.lsp_session)
        register_editor(self.routes, self)
        self.mcp = register_frontends(self.routes, self)  # /openapi.json, /, /mcp
        self.app = make_app(self.routes, self.agents, token=config.token or None)
        self._runner: web.AppRunner | None = None
        # Set by the link once the addon is connected; None when serving directly.
        self._editor_link: EditorActions | None = None
        # Where launched games render (decided once the editor says whether it is headless).
        self.game_display = UNDECIDED
        self.virtual_display: VirtualDisplay | None = None  # the Xvfb this sidecar started
        self._display_decided = asyncio.Event()
        self._display_setup: asyncio.Task[None] | None = None
        self.dap_session.before_launch = self._display_ready

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, **SERVER_LIMITS
        )
        await self._runner.setup()
        self.dap_session.start()
        self.lsp_session.start()

    async def stop(self) -> None:
        game_running = self.dap_session.running  # before the session forgets it
        await self.dap_session.stop()
        await self.lsp_session.stop()
        if self._display_setup is not None:
            self._display_setup.cancel()
            with contextlib.suppress(BaseException):
                await self._display_setup
        if self.virtual_display is not None:
            if game_running:
                # The agents' game renders there and outlives this sidecar (issue 11): the
                # Xvfb's keeper ends it with the editor; the next sidecar finds it again.
                await self.virtual_display.leave()
            else:
                await self.virtual_display.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def runner(self) -> web.AppRunner:
        assert self._runner is not None, "Sidecar.start() first"
        return self._runner

    def app_server(self) -> asyncio.Protocol:
        """A new aiohttp protocol for one agent connection."""
        assert self.runner.server is not None
        return self.runner.server()

    async def editor_action(self, name: str, args: dict[str, Any], timeout: float = 30.0) -> Any:
        """Ask the editor (through the addon) to do `name` on its main thread."""
        if self.editor_link is None:
            raise TransportError(
                "no editor behind this sidecar (served directly, or the addon's link is down)",
                code="no_editor",
            )
        return await self.editor_link.action(name, args, timeout)

    @property
    def editor_link(self) -> EditorActions | None:
        return self._editor_link

    @editor_link.setter
    def editor_link(self, link: EditorActions | None) -> None:
        """The link came up (or went): a new addon learns where its games render."""
        self._editor_link = link
        if link is not None:
            if self._display_setup is not None:
                self._display_setup.cancel()  # an earlier link's, still asking
            self._display_decided.clear()
            self._display_setup = asyncio.ensure_future(self._set_up_game_display())

    async def _display_ready(self) -> None:
        """Before a launch: the games' display decided (bounded; served directly: nothing
        to decide)."""
        if self._editor_link is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._display_decided.wait(), DISPLAY_SETUP_WAIT)

    async def _set_up_game_display(self) -> None:
        """Learn the editor's Godot version and whether it is headless; a headless one's
        games get a display: the one GODOT_BRIDGE_GAME_DISPLAY names, else an Xvfb of
        our own (started here, on the event loop's thread: see godot/display.py)."""
        try:
            info = await self.editor_action("editor_info", {}, timeout=10.0)
            self.dap_session.game_channel.godot_version = godot_version(
                str(info.get("godot_version", ""))
            )
            if not info.get("headless"):
                self.game_display = GameDisplay(
                    "window", None, "the editor has a display: games open their window"
                )
            else:
                given = str(info.get("game_display") or "")
                self.game_display = await self._headless_editor_display(given)
                if self.game_display.display is not None:
                    told = await self.editor_action(
                        "game_display", {"display": self.game_display.display}, timeout=10.0
                    )
                    if not (isinstance(told, dict) and told.get("applied")):
                        why = told.get("reason") if isinstance(told, dict) else told
                        self.game_display = GameDisplay(
                            "headless", None, f"games stay headless: {why}"
                        )
        except Exception as err:  # the link went, an older addon: games stay as they were
            log.warning("could not give the editor's games a display: %s", err)
            self.game_display = GameDisplay("headless", None, f"not set up: {err}")
            if self.virtual_display is not None:  # nobody renders there
                await self.virtual_display.stop()
                self.virtual_display = None
        finally:
            self._display_decided.set()
        say = log.warning if self.game_display.mode == "headless" else log.info
        say("games of this editor: %s", self.game_display.as_json())

    async def _headless_editor_display(self, given: str) -> GameDisplay:
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
            self.virtual_display = VirtualDisplay(keep_for=self.identity.editor_pid)
        started = await self.virtual_display.start()
        if isinstance(started, Started):
            why = f"the bridge's Xvfb (its keeper: pid {started.pid})"
            return GameDisplay("virtual", started.display, why)
        self.virtual_display = None
        return GameDisplay("headless", None, started.reason)

    async def _identify_lsp(self, peer: Peer) -> None:
        # Unproven here, the LSP handshake still compares Godot's project root with ours.
        await self.identity.check(self.lsp.name, peer.port)

    async def _identify_dap(self, peer: Peer) -> None:
        """The pid proof; without one, the LSP's project root (same editor, same ports' source).

        Runs before the DAP port is even opened: a DAP client coming and going resets
        another editor's debugger, so only a proven port is connected to.
        """
        if await self.identity.check(self.dap.name, peer.port) is not None:
            return
        lsp = self.lsp_session
        # With a pid, "cannot tell" is a listener hidden from us: asked again at once (the
        # pid proof may come any moment). Without one, the LSP's verdict is the proof.
        wait = LSP_VERDICT_WAIT if self.identity.editor_pid is None else 0.0
        why = (
            "no editor pid to check"
            if self.identity.editor_pid is None
            else f"the system does not show whether editor pid {self.identity.editor_pid} "
            "listens there"
        )
        deadline = time.monotonic() + wait
        while lsp.identified is None and lsp.status.state is not State.WRONG_EDITOR:
            if time.monotonic() >= deadline:
                raise Unverified(
                    f"{UNVERIFIED}: nothing proves yet that port {peer.port} ({self.dap.name}) "
                    f"is served by this sidecar's editor of project {self.config.project} "
                    f"({why}, and the language server has not named its project yet); nothing "
                    "is sent to it until it is proven; checking again",
                    details={"service": self.dap.name, "state": "unverified"},
                )
            await asyncio.sleep(0.1)
        if lsp.identified is False or lsp.status.state is State.WRONG_EDITOR:
            raise WrongEditor(
                mismatch_message(self.dap.name, peer.port, self.config.project, lsp.foreign_root),
                details={"service": self.dap.name, "state": "wrong_editor"},
            )

    def _others(self, identity: str) -> list[str]:
        """Identities of the agents other than `identity`: HTTP connections and MCP sessions
        (served in-process, so not in the AgentRegistry) alike."""
        names = {a.identity for a in self.agents.all()} | self.mcp.sessions.identities()
        names.discard(identity)
        return sorted(names)

    def _announce(self, event: str, body: dict[str, Any]) -> None:
        """An entry in the debug event log every agent reads (held behind a stop being
        announced, like Godot's own events)."""
        self.dap_session.announce(event, body)

    def status(self) -> dict[str, Any]:
        return {
            "overall_ready": self.dap.ready and self.lsp.ready,
            "debug_adapter": self.dap.as_json(),
            "language_server": self.lsp.as_json(),
            "clients": self.agents.as_json(),
            "sidecar": {
                "pid": os.getpid(),
                "version": __version__,
                "project": self.config.project,
                "editor_pid": self.identity.editor_pid,
                "uptime_s": round(time.time() - self.started_at, 3),
            },
            "game": self.dap_session.game_records.summary(),
            "game_display": self.game_display.as_json(),
        }

    def _add_status_routes(self) -> None:
        async def get_status(args: NoArguments, caller: Caller) -> dict[str, Any]:
            return self.status()

        self.routes.serve(STATUS, get_status)


def godot_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of Godot's version string (`4.6.3.stable.official`), None if none."""
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None

"""The sidecar's application: agents, services and the route table, put together once."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from aiohttp import web

from sidecar import __version__
from sidecar.agents import Agent, AgentRegistry
from sidecar.api.control import ControlPolicy
from sidecar.api.control import register as register_control
from sidecar.api.debug import register as register_debug
from sidecar.api.editor import register as register_editor
from sidecar.api.frontends import register as register_frontends
from sidecar.api.game import register as register_game
from sidecar.api.game_clock import register as register_game_clock
from sidecar.api.game_hands import register as register_game_hands
from sidecar.api.game_records import register as register_game_records
from sidecar.api.game_screenshot import register as register_game_screenshot
from sidecar.api.lsp import register as register_lsp
from sidecar.api.status import STATUS
from sidecar.config import Config
from sidecar.control.audit import AuditLog, audit_path
from sidecar.control.lease import ControlLease
from sidecar.errors import TransportError, Unverified, WrongEditor
from sidecar.godot.dap.session import DapSession
from sidecar.godot.game_display import GameDisplayChoice
from sidecar.godot.identity import EditorIdentity, editor_of_link, mismatch_message
from sidecar.godot.lsp.session import LspSession
from sidecar.godot.peer import Peer
from sidecar.godot.service import UNVERIFIED, ServiceStatus, State
from sidecar.link.editor_link import EditorActions
from sidecar.web.http import SERVER_LIMITS, RouteTable, make_app
from sidecar.web.operation import Caller, NoArguments

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
        # The control lease and the audit trail, around every operation by its effect.
        self.control = ControlPolicy(ControlLease(), AuditLog(audit_path(config.project)))
        self.control.announce = self._announce
        self.agents.on_removed = self._agent_left
        self.dap = self.dap_session.status
        self.lsp = ServiceStatus("language_server", config.lsp_port)
        self.lsp_session = LspSession(config, self.lsp)
        # Nothing is sent to a port before it is proven to be our editor's (issue 11).
        editor_pid = config.editor_pid or editor_of_link(config.link_port)
        self.identity = EditorIdentity(editor_pid, config.project)
        self.dap_session.peer.identify = self._identify_dap
        self.lsp_session.peer.identify = self._identify_lsp
        self.routes = RouteTable(policy=self.control)
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
        register_game_screenshot(self.routes, self.dap_session, lambda: self.game_display.current)
        # Time control (issue 14): next_frame needs a game that draws, so it asks the display.
        self.game_clock = register_game_clock(
            self.routes, self.dap_session, lambda: self.game_display.current
        )
        register_game_hands(
            self.routes,
            self.dap_session,
            lambda: self.game_display.current,
            lambda: self.game_clock.state.suspended,
        )
        register_lsp(self.routes, self.lsp_session)
        register_editor(self.routes, self)
        register_control(self.routes, self.control)
        self.mcp = register_frontends(self.routes, self)  # /openapi.json, /, /mcp
        self.app = make_app(self.routes, self.agents, token=config.token or None)
        self._runner: web.AppRunner | None = None
        # Set by the link once the addon is connected; None when serving directly.
        self._editor_link: EditorActions | None = None
        # Where launched games render (decided once the editor says whether it is headless).
        self.game_display = GameDisplayChoice(
            self.editor_action, self.identity.editor_pid, self._learn_godot_version
        )
        self.dap_session.before_launch = self.game_display.ready

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, **SERVER_LIMITS
        )
        await self._runner.setup()
        self.control.audit.load()  # the earlier records, read before any request comes
        self.dap_session.start()
        self.lsp_session.start()

    def stopping(self) -> None:
        """Told to stop (a signal): what must not wait for `stop` happens now."""
        self.game_display.stopping(self.dap_session.running)

    async def stop(self) -> None:
        game_running = self.dap_session.running  # before the session forgets it
        await self.dap_session.stop()
        await self.lsp_session.stop()
        await self.game_display.stop(game_running)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.control.audit.close()

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
            self.game_display.linked()

    def _learn_godot_version(self, version: tuple[int, int] | None) -> None:
        self.dap_session.game_channel.godot_version = version

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

    def _agent_left(self, agent: Agent) -> None:
        """A connection closed: its breakpoints go, and a lease taken without X-Agent-Id."""
        self.dap_session.agent_left(agent)
        self.control.agent_left(agent)

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
            "game": {**self.dap_session.game_records.summary(), "clock": self.game_clock.status()},
            "game_display": self.game_display.current.as_json(),
            "control": self.control.status(),
            "lsp_requests": self.lsp_session.traffic(),
        }

    def _add_status_routes(self) -> None:
        async def get_status(args: NoArguments, caller: Caller) -> dict[str, Any]:
            return self.status()

        self.routes.serve(STATUS, get_status)

"""The sidecar's application: agents, services and the route table, put together once."""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from . import __version__
from .agents import AgentRegistry
from .config import Config
from .dap import DapSession
from .debug_api import register as register_debug
from .errors import TransportError
from .http import RouteTable, json_body, make_app
from .lsp import LspSession
from .lsp_api import register as register_lsp
from .service import ServiceStatus

DEBUG_COMMANDS = (
    "launch",
    "setBreakpoints",
    "continue",
    "pause",
    "next",
    "stepIn",
    "stepOut",
    "evaluate",
    "stackTrace",
    "scopes",
    "variables",
    "threads",
    "terminate",
)
LSP_METHODS = (
    "didOpen",
    "didChange",
    "didSave",
    "didClose",
    "completion",
    "hover",
    "definition",
    "declaration",
    "references",
    "documentSymbol",
)


class Bridge:
    """Everything one sidecar serves, independent of how agent bytes reach it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = time.time()
        self.agents = AgentRegistry(config.max_clients)
        self.dap_session = DapSession(config)
        self.dap = self.dap_session.status
        self.lsp = ServiceStatus("language_server", config.lsp_port)
        self.lsp_session = LspSession(config, self.lsp)
        self.routes = RouteTable()
        self._add_status_routes()
        register_debug(self.routes, self.dap_session, lsp=lambda: self.lsp_session)
        register_lsp(self.routes, self.lsp_session)
        self.app = make_app(self.routes, self.agents)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self.dap_session.start()
        self.lsp_session.start()

    async def stop(self) -> None:
        await self.dap_session.stop()
        await self.lsp_session.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def runner(self) -> web.AppRunner:
        assert self._runner is not None, "Bridge.start() first"
        return self._runner

    def app_server(self) -> Any:
        """A new aiohttp protocol for one agent connection."""
        assert self.runner.server is not None
        return self.runner.server()

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
                "uptime_s": round(time.time() - self.started_at, 3),
            },
        }

    def _add_status_routes(self) -> None:
        async def get_status(request: web.Request) -> dict[str, Any]:
            return self.status()

        self.routes.add("GET", "/status", get_status, "Services' state and connected agents")


def _add_unavailable_routes(
    routes: RouteTable,
    prefix: str,
    names: tuple[str, ...],
    status: ServiceStatus,
    what: str,
) -> None:
    """Endpoints of a service this sidecar cannot reach yet: 503 until it connects."""

    async def unavailable(request: web.Request) -> Any:
        await json_body(request)  # a malformed request is the agent's to fix first
        raise TransportError(
            f"the {what} is {status.state.value}: Godot's server on port {status.port} "
            "is not connected; retry later",
            code="not_connected",
            details={"service": status.name},
        )

    for name in names:
        routes.add("POST", prefix + name, unavailable, f"{what}: {name}")

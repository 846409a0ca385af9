"""`/mcp`: the bridge as a Model Context Protocol server (Streamable HTTP).

This module is what the bridge loads at start: the route, the session list the
dashboard shows, and a handler that imports the MCP SDK and the tools (mcp_tools.py)
with the first `/mcp` request. The SDK takes about a second to import; a sidecar that
restarts should spend that only once somebody uses MCP.

No GET: the server never speaks first (no notifications, sampling or elicitation), so it
offers no standalone event stream and GET is answered 405, as the spec allows. An open
stream would also hold up the sidecar's shutdown for as long as a client kept it.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from .http import RouteTable
from .local import RouteCaller

MCP_PATH = "/mcp"
MAX_SESSIONS = 100
SESSION_IDLE_TIMEOUT = 30 * 60.0


@dataclass
class McpSession:
    identity: str
    client: str | None
    started_at: float = field(default_factory=time.time)
    last_call: float = field(default_factory=time.time)
    calls: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "client": self.client,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "calls": self.calls,
        }


class McpSessions:
    """MCP sessions that have called a tool, for `/dashboard/state`.

    A session leaves with its DELETE, or once idle as long as the SDK keeps it.
    """

    def __init__(self, idle: float = SESSION_IDLE_TIMEOUT) -> None:
        self.idle = idle
        self._by_id: dict[str, McpSession] = {}

    def seen(self, session_id: str, identity: str, client: str | None) -> None:
        session = self._by_id.get(session_id)
        if session is None:
            self._expire()
            session = self._by_id[session_id] = McpSession(identity, client)
        session.identity = identity
        session.last_call = time.time()
        session.calls += 1

    def forget(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

    def _expire(self) -> None:
        horizon = time.time() - self.idle
        for sid in [s for s, v in self._by_id.items() if v.last_call < horizon]:
            del self._by_id[sid]

    def as_json(self) -> list[dict[str, Any]]:
        self._expire()
        return [s.as_json() for s in self._by_id.values()]


class _Server(Protocol):
    async def handle(self, request: web.Request) -> web.StreamResponse: ...


class McpEndpoint:
    """`/mcp`'s handler: builds the MCP server (mcp_tools.McpBridge) on first use."""

    def __init__(self, caller: RouteCaller) -> None:
        self.caller = caller
        self.sessions = McpSessions()
        self._server: _Server | None = None
        self._loading: asyncio.Lock | None = None

    async def server(self) -> _Server:
        if self._server is None:
            self._loading = self._loading or asyncio.Lock()
            async with self._loading:
                if self._server is None:
                    # In a thread: the import must not stall the other agents' requests.
                    tools = await asyncio.to_thread(
                        importlib.import_module, ".mcp_tools", __package__
                    )
                    self._server = tools.McpBridge(self.caller, self.sessions)
        return self._server

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await (await self.server()).handle(request)


def register(routes: RouteTable, caller: RouteCaller) -> McpEndpoint:
    """Serve `/mcp`: POST JSON-RPC messages, DELETE to end the session."""
    endpoint = McpEndpoint(caller)
    summary = "Model Context Protocol (Streamable HTTP): {}"
    routes.add("POST", MCP_PATH, endpoint.handle, summary.format("send JSON-RPC messages"))
    routes.add("DELETE", MCP_PATH, endpoint.handle, summary.format("end the session"))
    return endpoint

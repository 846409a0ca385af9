"""`/mcp`: the bridge as a Model Context Protocol server (Streamable HTTP).

This module is what the bridge loads at start: the route, the session list the
dashboard shows, and a handler that imports the MCP SDK and the server (server.py, whose
tools are the operations the route table serves) with the first `/mcp` request. The SDK
takes about a second to import; a sidecar that restarts should spend that only once
somebody uses MCP.

No GET: the server never speaks first (no notifications, sampling or elicitation), so it
offers no standalone event stream and GET is answered 405, as the spec allows. An open
stream would also hold up the sidecar's shutdown for as long as a client kept it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from sidecar.web.http import RouteTable

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
MAX_SESSIONS = 100
# MCP hosts that never end their session (the MCP Inspector CLI, one per run) must not
# hold slots for long: an idle session goes after 5 minutes (GODOT_BRIDGE_MCP_IDLE, s).
SESSION_IDLE_TIMEOUT = 5 * 60.0
IDLE_ENV = "GODOT_BRIDGE_MCP_IDLE"

# Called with the agent identity of a session that ended (DELETE, expiry, eviction).
SessionEnd = Callable[[str], Awaitable[None]]


def idle_timeout_from_env(default: float = SESSION_IDLE_TIMEOUT) -> float:
    """GODOT_BRIDGE_MCP_IDLE (seconds, > 0), else `default`."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %g", IDLE_ENV, raw, default)
        return default
    return value if 0 < value < float("inf") else default


def session_identity(session_id: str) -> str:
    """The agent an MCP session acts as unless its client sends X-Agent-Id."""
    return f"mcp-{session_id[:8]}"


@dataclass
class McpSession:
    identity: str
    client: str | None = None
    started_at: float = field(default_factory=time.time)
    calls: int = 0
    # For expiry and eviction: when a request last ended, and how many are being served.
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "client": self.client,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "calls": self.calls,
        }


class McpSessions:
    """The open MCP sessions: how recently each was used, and their tool calls.

    The SDK's session manager holds the sessions themselves; this is what the bridge
    needs to end idle ones early, evict the least recently used when the table is full,
    and show them on the dashboard. A session leaves with its DELETE, its expiry or its
    eviction.
    """

    def __init__(self, idle: float = SESSION_IDLE_TIMEOUT) -> None:
        self.idle = idle
        self._by_id: dict[str, McpSession] = {}

    def opened(self, session_id: str) -> None:
        self._by_id.setdefault(session_id, McpSession(session_identity(session_id)))

    def begin(self, session_id: str) -> None:
        session = self._by_id.get(session_id)
        if session is not None:
            session.in_flight += 1

    def end(self, session_id: str) -> None:
        session = self._by_id.get(session_id)
        if session is not None:
            session.in_flight = max(0, session.in_flight - 1)
            session.last_used = time.monotonic()

    def seen(self, session_id: str, identity: str, client: str | None) -> None:
        """A tool call in the session (as `identity`)."""
        session = self._by_id.get(session_id)
        if session is None:
            session = self._by_id[session_id] = McpSession(identity)
        session.identity = identity
        session.client = client or session.client
        session.last_used = time.monotonic()
        session.calls += 1

    def remove(self, session_id: str | None) -> McpSession | None:
        return self._by_id.pop(session_id, None) if session_id else None

    def ids(self) -> list[str]:
        return list(self._by_id)

    def identities(self) -> set[str]:
        """The agents the open sessions act as (they share the services like HTTP agents)."""
        return {s.identity for s in self._by_id.values()}

    def expired(self, now: float | None = None) -> list[str]:
        """Sessions with no request in flight and none for longer than `idle`."""
        horizon = (time.monotonic() if now is None else now) - self.idle
        return [sid for sid, s in self._by_id.items() if not s.in_flight and s.last_used < horizon]

    def least_recently_used_idle(self, among: Any) -> str | None:
        """The idle session of `among` (session ids) used longest ago, if any."""
        idle = [(s.last_used, sid) for sid, s in self._by_id.items() if not s.in_flight]
        idle = [pair for pair in idle if pair[1] in among]
        return min(idle)[1] if idle else None

    def as_json(self) -> list[dict[str, Any]]:
        """The sessions that have called a tool, for `/dashboard/state`."""
        return [s.as_json() for s in self._by_id.values() if s.calls]


class _Server(Protocol):
    async def handle(self, request: web.Request) -> web.StreamResponse: ...


class McpEndpoint:
    """`/mcp`'s handler: builds the MCP server (server.McpService) on first use."""

    def __init__(self, routes: RouteTable, on_end: SessionEnd | None = None) -> None:
        self.routes = routes
        self.on_end = on_end
        self.sessions = McpSessions(idle_timeout_from_env())
        self._server: _Server | None = None
        self._loading: asyncio.Lock | None = None

    async def server(self) -> _Server:
        if self._server is None:
            self._loading = self._loading or asyncio.Lock()
            async with self._loading:
                if self._server is None:
                    # In a thread: the import must not stall the other agents' requests.
                    server = await asyncio.to_thread(
                        importlib.import_module, ".server", __package__
                    )
                    self._server = server.McpService(self.routes, self.sessions, self.on_end)
        return self._server

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await (await self.server()).handle(request)


def register(routes: RouteTable, on_end: SessionEnd | None = None) -> McpEndpoint:
    """Serve `/mcp`: POST JSON-RPC messages, DELETE to end the session. Its tools are the
    operations `routes` serves, however many are served by the time an agent asks.

    `on_end(identity)` runs when a session ends however it ends (its breakpoints go).
    """
    endpoint = McpEndpoint(routes, on_end)
    summary = "Model Context Protocol (Streamable HTTP): {}"
    routes.add("POST", MCP_PATH, endpoint.handle, summary.format("send JSON-RPC messages"))
    routes.add("DELETE", MCP_PATH, endpoint.handle, summary.format("end the session"))
    return endpoint

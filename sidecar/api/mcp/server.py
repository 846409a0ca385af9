"""The MCP server behind `/mcp` (see endpoint.py): the official `mcp` SDK, its sessions.

Imported on the first `/mcp` request only: the SDK takes about a second to import, which a
restarting sidecar should not spend before it serves REST agents again.

The SDK's Streamable HTTP session manager is an ASGI application; `asgi.serve` runs it
inside the bridge's aiohttp app, behind the same middleware as every REST route (Host,
Origin and token checks, agent counting, errors). The tools are the operations the
sidecar serves (tools.py): a call runs the operation's own handler, so MCP and REST
share one implementation, one validation and one set of defaults.

Identity: an MCP session is an agent of its own, `mcp-<first 8 hex of its session id>`,
so breakpoints set in one session are not another session's. A client that sends
`X-Agent-Id` is known by that name instead, as on the REST side. To get sessions from
clients that would otherwise pick the stateless 2026 protocol, `server/discover` is
declined: the SDK client then falls back to the `initialize` handshake, which opens a
session (the documented fallback; the SDK's go server does the same).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND, CallToolResult
from mcp_types import Tool as McpTool

from sidecar import __version__
from sidecar.agents import clean_agent_name
from sidecar.api.mcp.endpoint import (
    MAX_SESSIONS,
    MCP_PATH,
    McpSessions,
    SessionEnd,
    session_identity,
)
from sidecar.api.mcp.tools import OperationTools
from sidecar.web import asgi
from sidecar.web.http import RouteTable, identity_of
from sidecar.web.operation import Caller

log = logging.getLogger(__name__)
# The SDK logs every session and every refused tool call at INFO: the agent's business,
# not the editor console's (REST 4xx answers are not logged either).
logging.getLogger("mcp").setLevel(logging.WARNING)

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
INSTRUCTIONS = (
    "Drive one live Godot editor shared with other agents: its debugger (breakpoints, "
    "launch, step, stack, variables, evaluate, events) and its GDScript language server "
    "(completion, hover, definition, diagnostics), plus hash-checked file edits. "
    "Breakpoints you set are yours; the game and the event log are shared. Debug lines "
    "are 1-based; LSP line/character are 0-based."
)


async def _sessions_please(ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
    """Decline the stateless era's `server/discover`, so clients open a session."""
    if ctx.method == "server/discover":
        raise MCPError(
            METHOD_NOT_FOUND,
            "this server keeps one agent identity per MCP session: use initialize",
        )
    return await call_next(ctx)


def security_settings() -> TransportSecuritySettings:
    """The SDK's own DNS-rebinding check, agreeing with sidecar/guard.py."""
    hosts = [h for name in _LOOPBACK for h in (name, f"{name}:*")]
    origins = [f"{scheme}://{h}" for scheme in ("http", "https") for h in hosts]
    return TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)


class OperationServer(MCPServer[Any]):
    """The SDK's server with the operations as its tools.

    `list_tools` and `call_tool` are the SDK's own seams for what a server offers: the
    tools' schemas come from the declarations rather than from Python signatures, and a
    call hands the arguments as they came to the operation, which validates them.
    """

    def __init__(self, tools: OperationTools, identity: Callable[[Context[Any, Any]], str]) -> None:
        super().__init__(
            "godot_debug_connection",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level="WARNING",
        )
        self.tools = tools
        self.identity = identity  # the agent a call in this context acts as

    async def list_tools(self) -> list[McpTool]:
        return self.tools.list()

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        # The SDK reads it to check `Mcp-Param` headers before the call is served.
        tool = self.tools.get(name)
        return None if tool is None else tool.tool.input_schema

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        tool = self.tools.get(name)
        if tool is None:
            raise ToolError(f"Unknown tool: {name}")
        if context is None:
            raise ToolError(f"{name}: called outside an MCP request")
        caller = Caller(self.identity(context), connection_scoped=False)
        return await tool.call(arguments, caller)


class McpService:
    """The MCP server, its session manager, and the tools."""

    def __init__(
        self, routes: RouteTable, sessions: McpSessions, on_end: SessionEnd | None = None
    ) -> None:
        self.sessions = sessions
        self.on_end = on_end
        self._opening = 0  # requests without a session id being served now
        self.server = OperationServer(OperationTools(routes), self.identity)
        self.server.middleware.append(_sessions_please)
        # Creates the session manager (the returned Starlette app is not used).
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            json_response=True,
            # The sweep below ends idle sessions itself (and says so); the SDK's own
            # timeout is the backstop should the sweep ever be late.
            session_idle_timeout=sessions.idle * 2,
            max_sessions=MAX_SESSIONS,
            transport_security=security_settings(),
        )
        self.manager = self.server.session_manager
        self._running: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- serving ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await self._ensure_running()
        session_id = request.headers.get("Mcp-Session-Id")
        if session_id:
            return await self._in_session(request, session_id)
        return await self._opening_request(request)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        state = {"bridge_identity": identity_of(request)}
        return await asgi.serve(self.manager.handle_request, request, state)

    async def _opening_request(self, request: web.Request) -> web.StreamResponse:
        """A request without a session: an `initialize` opens one, if there is room."""
        self._opening += 1
        try:
            if request.method == "POST":
                await self._make_room()
            response = await self._serve(request)
        finally:
            self._opening -= 1
        opened = response.headers.get("Mcp-Session-Id")
        if opened and opened in self._open_sessions():
            self.sessions.opened(opened)
        return response

    async def _in_session(self, request: web.Request, session_id: str) -> web.StreamResponse:
        self.sessions.begin(session_id)
        try:
            response = await self._serve(request)
        finally:
            self.sessions.end(session_id)
        if session_id not in self._open_sessions():  # its DELETE, or it had expired
            await self._ended(session_id)
        return response

    def _open_sessions(self) -> dict[str, Any]:
        # The SDK offers no public view of its sessions; this is the table that its
        # `max_sessions` check counts (StreamableHTTPSessionManager._admit_session).
        return self.manager._server_instances

    async def _make_room(self) -> None:
        """At the session limit, end the least recently used idle session.

        Otherwise the SDK answers `503 Too many open sessions` until one expires: MCP
        hosts that never DELETE their session would lock every client out. An evicted
        client gets 404 for its old session id, on which MCP clients initialize anew.
        """
        while len(self._open_sessions()) + self._opening > MAX_SESSIONS:
            victim = self.sessions.least_recently_used_idle(self._open_sessions())
            if victim is None:
                return  # every session is busy: the SDK refuses this one (503)
            log.info("MCP session %s evicted: %d sessions open", victim[:8], MAX_SESSIONS)
            await self._close(victim)

    async def _close(self, session_id: str) -> None:
        transport = self._open_sessions().get(session_id)
        if transport is not None:
            # The SDK's own way to end a session (as on its idle timeout): forgotten at
            # once, its transport terminated.
            await self.manager._discard_session(session_id, transport)
        await self._ended(session_id)

    async def _ended(self, session_id: str) -> None:
        """The session is gone: its agent's breakpoints go with it."""
        if self.sessions.remove(session_id) is None:
            return
        if self.on_end is not None:
            try:
                await self.on_end(session_identity(session_id))
            except Exception:
                log.exception("cleaning up after MCP session %s failed", session_id[:8])

    async def _sweep(self) -> None:
        """End sessions idle for longer than `sessions.idle`; notice those the SDK ended."""
        interval = min(30.0, max(0.05, self.sessions.idle / 5))
        while True:
            await asyncio.sleep(interval)
            try:
                open_now = self._open_sessions()
                for sid in self.sessions.ids():
                    if sid not in open_now:
                        await self._ended(sid)
                for sid in self.sessions.expired():
                    log.info("MCP session %s ended: idle %g s", sid[:8], self.sessions.idle)
                    await self._close(sid)
            except Exception:
                log.exception("MCP session sweep failed")

    async def _ensure_running(self) -> None:
        """Start the session manager with the first request; it lives as long as the loop."""
        if self._running is None:
            self._running = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(self._running), name="mcp-sessions")
        await asyncio.shield(self._running)

    async def _run(self, started: asyncio.Future[None]) -> None:
        try:
            async with self.manager.run():
                started.set_result(None)
                await self._sweep()  # until the loop cancels us
        except Exception as exc:
            log.exception("MCP session manager failed")
            if not started.done():
                started.set_exception(exc)

    # -- who calls ----------------------------------------------------------------------

    def identity(self, ctx: Context[Any, Any]) -> str:
        """The agent a tool call acts as (and the session's call is counted)."""
        headers = ctx.headers or {}
        session_id = headers.get("mcp-session-id")
        named = clean_agent_name(headers.get("x-agent-id"))
        identity = named or (session_identity(session_id) if session_id else self._fallback(ctx))
        if session_id:
            self.sessions.seen(session_id, identity, _client_name(ctx))
        return identity

    @staticmethod
    def _fallback(ctx: Context[Any, Any]) -> str:
        """A request without a session (the stateless protocol): its connection's agent."""
        scope = getattr(ctx.request_context.request, "scope", None) or {}
        return str(scope.get("state", {}).get("bridge_identity") or "mcp")


def _client_name(ctx: Context[Any, Any]) -> str | None:
    params = ctx.session.client_params
    info = params.client_info if params is not None else None
    return f"{info.name} {info.version}".strip() if info is not None else None

"""The MCP server behind `/mcp` (see mcp_api.py): the official `mcp` SDK and the tools.

Imported on the first `/mcp` request only: the SDK takes about a second to import, which a
restarting sidecar should not spend before it serves REST agents again.

The SDK's Streamable HTTP session manager is an ASGI application; `asgi.serve` runs it
inside the bridge's aiohttp app, behind the same middleware as every REST route (Host,
Origin and token checks, agent counting, errors). Each tool calls the REST route's own
handler through `local.RouteCaller`, so MCP and REST share one implementation.

Identity: an MCP session is an agent of its own, `mcp-<first 8 hex of its session id>`,
so breakpoints set in one session are not another session's. A client that sends
`X-Agent-Id` is known by that name instead, as on the REST side. To get sessions from
clients that would otherwise pick the stateless 2026 protocol, `server/discover` is
declined: the SDK client then falls back to the `initialize` handshake, which opens a
session (the documented fallback; the SDK's go server does the same).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

from aiohttp import web
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND

from sidecar import __version__
from sidecar.agents import clean_agent_name
from sidecar.api.mcp.endpoint import (
    MAX_SESSIONS,
    MCP_PATH,
    McpSessions,
    SessionEnd,
    session_identity,
)
from sidecar.errors import BridgeError
from sidecar.web import asgi
from sidecar.web.http import identity_of
from sidecar.web.local import RouteCaller

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


class McpBridge:
    """The MCP server, its session manager, and the tools."""

    def __init__(
        self, caller: RouteCaller, sessions: McpSessions, on_end: SessionEnd | None = None
    ) -> None:
        self.caller = caller
        self.sessions = sessions
        self.on_end = on_end
        self._opening = 0  # requests without a session id being served now
        self.server: MCPServer[Any] = MCPServer(
            "godot_debug_connection",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level="WARNING",
        )
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
        add_debug_tools(self)
        add_lsp_tools(self)

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

    # -- calling the REST handlers ---------------------------------------------------------

    def identity(self, ctx: Context) -> str:
        headers = ctx.headers or {}
        session_id = headers.get("mcp-session-id")
        named = clean_agent_name(headers.get("x-agent-id"))
        identity = named or (session_identity(session_id) if session_id else self._fallback(ctx))
        if session_id:
            self.sessions.seen(session_id, identity, _client_name(ctx))
        return identity

    @staticmethod
    def _fallback(ctx: Context) -> str:
        """A request without a session (the stateless protocol): its connection's agent."""
        scope = getattr(ctx.request_context.request, "scope", None) or {}
        return str(scope.get("state", {}).get("bridge_identity") or "mcp")

    async def call(
        self, ctx: Context, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        try:
            return await self.caller.call(method, path, body, self.identity(ctx))
        except BridgeError as err:
            raise ToolError(json.dumps({"http_status": err.status, **err.body()})) from None


def _client_name(ctx: Context) -> str | None:
    params = ctx.session.client_params
    info = params.client_info if params is not None else None
    return f"{info.name} {info.version}".strip() if info is not None else None


def _position(path: str, line: int, character: int) -> dict[str, Any]:
    return {"textDocument": {"uri": path}, "position": {"line": line, "character": character}}


STEPS = {"over": "/debug/next", "in": "/debug/stepIn", "out": "/debug/stepOut"}


def add_debug_tools(mcp: McpBridge) -> None:
    tool = mcp.server.tool

    @tool(description="The bridge: Godot's DAP and LSP connections and the connected agents.")
    async def status(ctx: Context) -> dict[str, Any]:
        return await mcp.call(ctx, "GET", "/status")

    @tool(
        description="Replace YOUR breakpoints in one .gd file (1-based lines; [] clears them). "
        "Conditions are not supported."
    )
    async def set_breakpoints(ctx: Context, path: str, lines: list[int]) -> dict[str, Any]:
        body = {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]}
        return await mcp.call(ctx, "POST", "/debug/setBreakpoints", body)

    @tool(description="Your breakpoints per file (everyone=true: every agent's).")
    async def breakpoints(ctx: Context, everyone: bool = False) -> dict[str, Any]:
        return await mcp.call(ctx, "GET", "/debug/breakpoints", {"all": everyone})

    @tool(
        description="Clear YOUR breakpoints (in one file, or all files); everyone=true with "
        "a path clears every agent's breakpoints in that file."
    )
    async def clear_breakpoints(
        ctx: Context, path: str | None = None, everyone: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"everyone": everyone}
        if path is not None:
            body["source"] = {"path": path}
        return await mcp.call(ctx, "POST", "/debug/clearBreakpoints", body)

    @tool(description="Run the game under the debugger: scene 'main', 'current' or a path.")
    async def launch(ctx: Context, scene: str = "main") -> dict[str, Any]:
        return await mcp.call(ctx, "POST", "/debug/launch", {"scene": scene})

    @tool(name="continue", description="Resume the stopped game (shared by all agents).")
    async def continue_(ctx: Context) -> dict[str, Any]:
        return await mcp.call(ctx, "POST", "/debug/continue", {})

    @tool(description="Pause the running game.")
    async def pause(ctx: Context) -> dict[str, Any]:
        return await mcp.call(ctx, "POST", "/debug/pause", {})

    @tool(description="Step the stopped game: over (next line), in, or out of the function.")
    async def step(ctx: Context, kind: Literal["over", "in", "out"] = "over") -> dict[str, Any]:
        return await mcp.call(ctx, "POST", STEPS[kind], {})

    @tool(description="Stop the game.")
    async def terminate(ctx: Context) -> dict[str, Any]:
        return await mcp.call(ctx, "POST", "/debug/terminate", {})

    @tool(description="Frames of the stopped game (levels=0: all).")
    async def stack_trace(ctx: Context, levels: int = 0) -> dict[str, Any]:
        return await mcp.call(ctx, "POST", "/debug/stackTrace", {"levels": levels})

    @tool(
        description="Variables: of one variablesReference, or else the locals and members of "
        "frame frame_id (0 = top)."
    )
    async def variables(
        ctx: Context, frame_id: int = 0, variables_reference: int | None = None
    ) -> dict[str, Any]:
        if variables_reference is not None:
            body = {"variablesReference": variables_reference}
            return await mcp.call(ctx, "POST", "/debug/variables", body)
        return await _frame_variables(mcp, ctx, frame_id)

    @tool(description="Evaluate a GDScript expression in a frame of the stopped game.")
    async def evaluate(ctx: Context, expression: str, frame_id: int = 0) -> dict[str, Any]:
        body = {"expression": expression, "frameId": frame_id}
        return await mcp.call(ctx, "POST", "/debug/evaluate", body)

    @tool(
        description="Debug events numbered above 'since' (stopped, output, ...), waiting up to "
        "'wait' seconds for the first; pass the answer's 'next' as 'since' to read on."
    )
    async def events(
        ctx: Context, since: int = 0, wait: float = 0.0, limit: int = 100
    ) -> dict[str, Any]:
        body = {"since": since, "wait": wait, "limit": limit}
        return await mcp.call(ctx, "GET", "/debug/events", body)


async def _frame_variables(mcp: McpBridge, ctx: Context, frame: int) -> dict[str, Any]:
    scopes = await mcp.call(ctx, "POST", "/debug/scopes", {"frameId": frame})
    out: dict[str, Any] = {"frameId": frame, "scopes": []}
    for scope in scopes.get("scopes", []):
        entry = dict(scope)
        if scope.get("name") != "Globals" and not scope.get("expensive"):
            ref = {"variablesReference": scope["variablesReference"]}
            entry["variables"] = (await mcp.call(ctx, "POST", "/debug/variables", ref))["variables"]
        out["scopes"].append(entry)
    return out


def add_lsp_tools(mcp: McpBridge) -> None:
    tool = mcp.server.tool

    @tool(
        description="Completion at a 0-based line/character of a .gd file: the names starting "
        "with the word left of the cursor (or with 'prefix'; '' for every name), best first."
    )
    async def completion(
        ctx: Context,
        path: str,
        line: int,
        character: int,
        prefix: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        body = {**_position(path, line, character), "limit": limit}
        if prefix is not None:
            body["prefix"] = prefix
        return await mcp.call(ctx, "POST", "/lsp/completion", body)

    @tool(description="Hover documentation at a 0-based line/character.")
    async def hover(ctx: Context, path: str, line: int, character: int) -> dict[str, Any]:
        answer = await mcp.call(ctx, "POST", "/lsp/hover", _position(path, line, character))
        return {"hover": answer}

    @tool(description="Where the symbol at a 0-based line/character is defined.")
    async def definition(ctx: Context, path: str, line: int, character: int) -> dict[str, Any]:
        answer = await mcp.call(ctx, "POST", "/lsp/definition", _position(path, line, character))
        return {"locations": answer or []}

    @tool(description="Godot's diagnostics (errors, warnings) for a file, waiting up to 'wait' s.")
    async def diagnostics(ctx: Context, path: str, wait: float = 0.0) -> dict[str, Any]:
        return await mcp.call(ctx, "GET", "/lsp/diagnostics", {"uri": path, "wait": wait})

    @tool(
        description="Read a project file (any text file): its text, or lines start_line.."
        "end_line (1-based, inclusive), with the sha256 of the whole file to pass to "
        "apply_changes as expected_sha256."
    )
    async def read_file(
        ctx: Context, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> dict[str, Any]:
        body = {"uri": path, "start_line": start_line, "end_line": end_line}
        body = {k: v for k, v in body.items() if v is not None}
        return await mcp.call(ctx, "POST", "/edit/read", body)

    @tool(
        description="Write a project file: the whole 'text', or LSP 'edits' against the current "
        "content; pass expected_sha256 (from your last read) to refuse a stale overwrite."
    )
    async def apply_changes(
        ctx: Context,
        path: str,
        text: str | None = None,
        edits: list[dict[str, Any]] | None = None,
        expected_sha256: str | None = None,
    ) -> dict[str, Any]:
        body = {"uri": path, "text": text, "edits": edits, "expected_sha256": expected_sha256}
        body = {k: v for k, v in body.items() if v is not None}
        return await mcp.call(ctx, "POST", "/edit/applyChanges", body)

    @tool(description="Make the editor (and a running game) reload scripts changed on disk.")
    async def reload(ctx: Context, paths: list[str] | None = None) -> dict[str, Any]:
        body = {} if paths is None else {"paths": paths}
        return await mcp.call(ctx, "POST", "/execute/reload", body)

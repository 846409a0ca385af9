"""`GET /` and `/dashboard`: one static HTML page; `GET /dashboard/state`: what it shows.

The page (dashboard.html, plain HTML and JavaScript, no build step) polls the state
once a second: the services, connected agents and MCP sessions, breakpoints, recent
debug events and diagnostics counts, the control lease's holder and the latest audit
records. Everything here only reads.

Its live game panel reads the game's own endpoints directly (/game/screenshot,
/game/tree, /game/errors), and only while someone watches: the page is visible and,
for the screenshot and the tree, a game runs (`game` here). A hidden page asks nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, Protocol

from aiohttp import web
from pydantic import Field

from sidecar.project.documents import DocumentStore
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Operation

DEFAULT_EVENTS = 30
AUDIT_ROWS = 20
MAX_EVENTS = 500
# LSP DiagnosticSeverity
ERROR, WARNING = 1, 2


class _EventLog(Protocol):
    @property
    def latest(self) -> int: ...

    async def read(self, since: int, wait: float, limit: int) -> dict[str, Any]: ...


class _Stop(Protocol):
    @property
    def reason(self) -> str: ...


class _Dap(Protocol):
    @property
    def events(self) -> _EventLog: ...

    @property
    def running(self) -> bool: ...

    @property
    def stopped(self) -> _Stop | None: ...

    def breakpoints(self, agent: str | None = None) -> dict[str, Any]: ...

    # frontends.register, which takes this source, forgets an MCP session's breakpoints.
    async def forget_agent(self, identity: str) -> None: ...


class _Lsp(Protocol):
    @property
    def documents(self) -> DocumentStore: ...


class _Control(Protocol):
    def newest(self, count: int) -> list[dict[str, Any]]: ...


class DashboardSource(Protocol):
    """What the dashboard reads of `app.Sidecar`."""

    @property
    def dap_session(self) -> _Dap: ...

    @property
    def control(self) -> _Control: ...

    @property
    def lsp_session(self) -> _Lsp: ...

    def status(self) -> dict[str, Any]: ...


McpSessionList = Callable[[], list[dict[str, Any]]]


class StateArguments(Arguments):
    events: int = Field(
        DEFAULT_EVENTS,
        description=f"how many of the latest debug events to include (cut to 0..{MAX_EVENTS})",
    )


class DiagnosticsCount(Answer):
    path: str = Field(description="res:// path")
    errors: int
    warnings: int
    other: int
    version: int | None = Field(description="the document version they are for")


class GameRun(Answer):
    running: bool = Field(description="a game runs (stopped at a breakpoint counts)")
    stopped: str | None = Field(description="why it is stopped (breakpoint, ...); null: not")


class DashboardState(Answer):
    status: dict[str, Any] = Field(description="what GET /status answers")
    events: dict[str, Any] = Field(description="the latest debug events, as /debug/events")
    breakpoints: dict[str, Any] = Field(description="every agent's breakpoints")
    documents: list[dict[str, Any]] = Field(description="the shared open LSP documents")
    diagnostics: list[DiagnosticsCount] = Field(description="per file, Godot's latest")
    mcp_sessions: list[dict[str, Any]] = Field(description="MCP sessions that called a tool")
    game: GameRun = Field(
        description="whether a game runs: the page asks for its screenshot and tree only then"
    )
    audit: list[dict[str, Any]] = Field(
        description=f"the latest {AUDIT_ROWS} audit records, newest first (GET /audit)"
    )


DASHBOARD_STATE = Operation(
    name="dashboard_state",
    path="/dashboard/state",
    methods=("GET",),
    summary="what the dashboard shows, as one JSON answer",
    arguments=StateArguments,
    answer=DashboardState,
    errors=("invalid_field",),
    tool=False,
    tags=("bridge",),
)

OPERATIONS = (DASHBOARD_STATE,)


def page() -> str:
    return resources.files(__package__).joinpath("dashboard.html").read_text(encoding="utf-8")


def diagnostics_counts(documents: DocumentStore) -> list[dict[str, Any]]:
    """Per file: how many errors, warnings and other diagnostics Godot published last."""
    out = []
    for rel, entry in sorted(documents.all_diagnostics().items()):
        severities = [d.get("severity") for d in entry.items if isinstance(d, dict)]
        errors, warnings = severities.count(ERROR), severities.count(WARNING)
        out.append(
            {
                "path": f"res://{rel}",
                "errors": errors,
                "warnings": warnings,
                "other": len(severities) - errors - warnings,
                "version": entry.version,
            }
        )
    return out


async def state(
    source: DashboardSource, mcp_sessions: McpSessionList, events: int
) -> dict[str, Any]:
    log = source.dap_session.events
    documents = source.lsp_session.documents
    return {
        "status": source.status(),
        "events": await log.read(max(log.latest - events, 0), 0.0, max(events, 1)),
        "breakpoints": source.dap_session.breakpoints(None),
        "documents": [doc.summary() for doc in documents.documents()],
        "diagnostics": diagnostics_counts(documents),
        "mcp_sessions": mcp_sessions(),
        "game": game_run(source.dap_session),
        "audit": source.control.newest(AUDIT_ROWS),
    }


def game_run(dap: _Dap) -> dict[str, Any]:
    stop = dap.stopped
    return {"running": dap.running, "stopped": stop.reason if stop is not None else None}


def register(routes: RouteTable, source: DashboardSource, mcp_sessions: McpSessionList) -> None:
    """Add `GET /`, `GET /dashboard` and `GET /dashboard/state`."""

    async def html(request: web.Request) -> web.Response:
        return web.Response(
            text=page(),
            content_type="text/html",
            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
        )

    async def dashboard_state(args: StateArguments, caller: Caller) -> dict[str, Any]:
        return await state(source, mcp_sessions, min(max(args.events, 0), MAX_EVENTS))

    routes.add(
        "GET",
        "/",
        html,
        "the dashboard: services, agents, debug events, diagnostics (the page needs no token; "
        "with one, open /#token=<token> so that it can read /dashboard/state)",
    )
    routes.add("GET", "/dashboard", html, "the dashboard (same as /)")
    routes.serve(DASHBOARD_STATE, dashboard_state)

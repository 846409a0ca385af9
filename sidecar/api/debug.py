"""HTTP endpoints of the debug adapter: `/debug/*`, `/connect`, `/disconnect`.

A request's JSON body (or query, for the read-only GETs) is the DAP request's
`arguments`; the `result` sent back is the DAP response's `body`. All the protocol work
is in `dap.DapSession`; this module only maps HTTP onto it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import Field

from sidecar.errors import RequestError, TransportError
from sidecar.godot.dap.session import DapSession
from sidecar.web.http import RouteTable, agent_of, identity_of, json_body, require
from sidecar.web.operation import Answer, Arguments, Caller, Operation

# (command, read-only, what it does) in the order the 404 listing shows them.
COMMANDS: tuple[tuple[str, bool, str], ...] = (
    ("launch", False, "run the game under the debugger (scene: main, current or a path)"),
    ("setBreakpoints", False, "replace your breakpoints in one file"),
    ("clearBreakpoints", False, "clear your breakpoints (everyone=true: all in one file)"),
    ("continue", False, "resume the stopped game"),
    ("pause", False, "pause the running game"),
    ("next", False, "step over"),
    ("stepIn", False, "step into"),
    ("stepOut", False, "step out (emulated)"),
    ("stackTrace", True, "frames of the stopped game"),
    ("scopes", True, "scopes of a frame"),
    ("variables", True, "variables of a scope or value"),
    ("evaluate", False, "evaluate an expression in a frame"),
    ("threads", True, "the game's threads"),
    ("terminate", False, "stop the game"),
)


class EventsArguments(Arguments):
    since: int = Field(0, ge=0, description="read the events numbered above this one")
    wait: float = Field(
        0.0, ge=0, description="seconds to wait for the first event (long-poll; at most 30)"
    )
    limit: int = Field(500, ge=1, description="most events in one answer")


class DebugEvent(Answer):
    seq: int = Field(description="position in the event log, from 1")
    time: float = Field(description="epoch seconds")
    event: str = Field(
        description="DAP event: stopped, output, process, breakpoint, terminated, exited, ...; "
        "and the bridge's own: breakpoints_cleared, service_disconnected (POST "
        "/disconnect: `service`, `by`, `reason`, `forced`, `others`, `reconnect_in_s`), "
        "`stopped` with reason `recovered` and `terminated` with reason `inferred`"
    )
    body: dict[str, Any] = Field(
        description="the DAP event's body; a `stopped` at a breakpoint adds `source`, `line` "
        "and `hit_by` (the agents with a breakpoint there); a stop the bridge found after "
        "reconnecting has reason `recovered`; a game end the bridge saw but Godot did "
        "not announce (after a terminate) is a `terminated` with reason `inferred`"
    )


class EventsPage(Answer):
    events: list[DebugEvent]
    next: int = Field(description="pass as 'since' to read on from here")
    latest: int = Field(description="newest event number")
    dropped: int = Field(description="events after 'since' that fell out of the bounded log")


EVENTS = Operation(
    name="events",
    path="/debug/events",
    methods=("GET", "POST"),
    summary="debug events after 'since', waiting up to 'wait' s for the first (long-poll)",
    arguments=EventsArguments,
    answer=EventsPage,
    tags=("debug",),
)

OPERATIONS = (EVENTS,)

LspProvider = Callable[[], Any]
# Who else is connected (identities other than the one given), and how to tell every agent.
OthersProvider = Callable[[str], list[str]]
Announce = Callable[[str, dict[str, Any]], None]

# After POST /disconnect the services reconnect by themselves after this many seconds (unless
# the request says otherwise): one agent must not switch a shared editor off for good.
RESUME_AFTER = 5.0
MAX_RESUME_AFTER = 600.0


def register(
    routes: RouteTable,
    session: DapSession,
    *,
    lsp: LspProvider | None = None,
    others: OthersProvider | None = None,
    announce: Announce | None = None,
) -> None:
    """Add the debug endpoints; `lsp()` gives the LSP service for /connect, if any."""
    for command, read_only, summary in COMMANDS:
        handler = _command_handler(session, command)
        routes.add("POST", f"/debug/{command}", handler, f"debug adapter: {summary}")
        if read_only:
            routes.add("GET", f"/debug/{command}", handler, f"debug adapter: {summary}")

    async def events(args: EventsArguments, caller: Caller) -> Any:
        return await session.wait_events(args.since, args.wait, args.limit)

    async def breakpoints(request: web.Request) -> Any:
        args = await json_body(request)
        everyone = args.get("all") is True
        identity = identity_of(request)
        return {
            "agent": identity,
            "breakpoints": session.breakpoints(None if everyone else identity),
        }

    routes.serve(EVENTS, events)
    summary = "your breakpoints per file (all=true: every agent's)"
    routes.add("GET", "/debug/breakpoints", breakpoints, summary)

    services = _Services(session, lsp, others, announce)
    routes.add("POST", "/connect", services.connect, "connect to Godot's DAP and LSP now")
    routes.add("POST", "/disconnect", services.disconnect, "disconnect from Godot's DAP/LSP")


CONNECTION_SCOPED_WARNING = (
    "these breakpoints belong to this connection ({identity}) and are removed when it "
    "closes (curl opens a new one for every call); send an X-Agent-Id header to keep "
    "them under a name of your own"
)


def _command_handler(session: DapSession, command: str) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> Any:
        args = await json_body(request)
        identity = identity_of(request)
        result = await session.call(command, identity, args)
        if command == "setBreakpoints" and _connection_scoped(request) and result["breakpoints"]:
            result = {**result, "warning": CONNECTION_SCOPED_WARNING.format(identity=identity)}
        return result

    handle.__name__ = f"debug_{command}"
    return handle


def _connection_scoped(request: web.Request) -> bool:
    """An agent known only by its connection (no X-Agent-Id): its breakpoints die with it."""
    agent = agent_of(request)
    return agent is not None and agent.name is None


def _int_arg(args: dict[str, Any], name: str, default: int) -> int:
    return require(args, name, int) if args.get(name) is not None else default


def _number_arg(args: dict[str, Any], name: str, default: float) -> float:
    return float(require(args, name, (int, float))) if args.get(name) is not None else default


class _Services:
    """POST /connect and /disconnect for one or both of Godot's servers."""

    def __init__(
        self,
        session: DapSession,
        lsp: LspProvider | None,
        others: OthersProvider | None = None,
        announce: Announce | None = None,
    ) -> None:
        self.session = session
        self.lsp = lsp
        self.others = others
        self.announce = announce

    def _chosen(self, args: dict[str, Any]) -> dict[str, Any]:
        service = args.get("service")
        if service is not None:
            service = require(args, "service", str)
            if service not in ("dap", "lsp"):
                raise RequestError(
                    'field \'service\' must be "dap" or "lsp" (or left out for both)',
                    code="invalid_field",
                    details={"field": "service"},
                )
        chosen: dict[str, Any] = {}
        if service in (None, "dap"):
            chosen["debug_adapter"] = self.session
        lsp = self.lsp() if self.lsp is not None else None
        if service in (None, "lsp") and _is_connectable(lsp):
            chosen["language_server"] = lsp
        elif service == "lsp":
            raise TransportError(
                "the language server cannot be connected by this sidecar yet",
                code="not_available",
                details={"service": "language_server"},
            )
        return chosen

    async def connect(self, request: web.Request) -> Any:
        chosen = self._chosen(await json_body(request))
        for service in chosen.values():
            await _maybe_await(service.connect())
        result = {name: _status(service) for name, service in chosen.items()}
        failed = [name for name, state in result.items() if state.get("state") != "connected"]
        if failed:
            raise TransportError(
                f"could not connect to {', '.join(failed)}: "
                + "; ".join(str(result[n].get("last_error") or "not connected") for n in failed)
                + "; it keeps retrying in the background",
                code="not_connected",
                details={"services": result},
            )
        return result

    async def disconnect(self, request: web.Request) -> Any:
        """Switch services off for everyone: refused (409) while others are connected unless
        forced; announced in /debug/events; they come back by themselves after a pause."""
        args = await json_body(request)
        chosen = self._chosen(args)
        force = args.get("force") is not None and require(args, "force", bool)
        reason = require(args, "reason", str) if args.get("reason") is not None else None
        resume_after = _number_arg(args, "resume_after", RESUME_AFTER)
        if not 0 <= resume_after <= MAX_RESUME_AFTER:
            raise RequestError(
                f"'resume_after' must be between 0 and {MAX_RESUME_AFTER:g} seconds",
                code="invalid_field",
                details={"field": "resume_after"},
            )
        who = identity_of(request)
        others = self.others(who) if self.others is not None else []
        if others and not force:
            raise RequestError(
                f"{len(others)} other agent(s) are connected ({', '.join(others[:10])}) and share "
                "these services; disconnecting would switch them off for everyone. Send "
                '{"force": true} to do it anyway: it is announced in /debug/events and the '
                f"services reconnect by themselves after 'resume_after' s ({RESUME_AFTER:g})",
                status=409,
                code="conflict",
                details={"agents": others},
            )
        why = reason or "POST /disconnect"
        for name, service in chosen.items():
            service.status.taken_down(why, who)
            await service.disconnect(f"disconnected by {who}: {why}", resume_after=resume_after)
            if self.announce is not None:
                self.announce(
                    "service_disconnected",
                    {
                        "service": name,
                        "by": who,
                        "reason": why,
                        "forced": bool(force),
                        "others": others,
                        "reconnect_in_s": resume_after,
                    },
                )
        return {name: _status(service) for name, service in chosen.items()}


def _is_connectable(service: Any) -> bool:
    return callable(getattr(service, "connect", None)) and callable(
        getattr(service, "disconnect", None)
    )


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _status(service: Any) -> dict[str, Any]:
    status = getattr(service, "status", None)
    as_json = getattr(status, "as_json", None)
    return as_json() if callable(as_json) else {}

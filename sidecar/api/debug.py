"""HTTP endpoints of the debug adapter: `/debug/*`, `/connect`, `/disconnect`.

Each endpoint is declared once here as an `Operation`: its arguments model is the DAP
request's `arguments` (the JSON body, or the query for the read-only GETs) with DAP's
own field names, and its answer the DAP response's `body`. Lines are 1-based, as DAP
and the editor count them. All the protocol work is in `godot.dap.session.DapSession`;
this module only maps the operations onto it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from sidecar.api.shapes import SCRIPT_PATTERN, ServiceStatus
from sidecar.errors import RequestError, TransportError
from sidecar.godot.dap.breakpoints import HIT_GRAMMAR, HitCondition, log_parts
from sidecar.godot.dap.breakpoints import SourceBreakpoint as BookBreakpoint
from sidecar.godot.dap.inspector import THREAD_ID
from sidecar.godot.dap.session import DapSession
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Method, NoArguments, Operation

# After POST /disconnect the services reconnect by themselves after this many seconds (unless
# the request says otherwise): one agent must not switch a shared editor off for good.
RESUME_AFTER = 5.0
MAX_RESUME_AFTER = 600.0

# What any request that reaches Godot's adapter can answer beyond its own codes.
_ADAPTER = ("missing_field", "invalid_field", "not_connected", "connection_lost", "timeout")
_GODOT = (*_ADAPTER, "godot_error")
# A file named by `source.path`.
_PATH = ("not_found", "outside_project")


# -- arguments -----------------------------------------------------------------------

PATH_DOC = (
    "a project file: res://, project-relative, absolute or file:// (a file:// URI may "
    "escape spaces as %20)"
)


class Source(Arguments):
    path: str = Field(
        min_length=1,
        description=f"the script, {PATH_DOC}",
        examples=["res://player.gd"],
        json_schema_extra=SCRIPT_PATTERN,
    )


CONDITIONAL = (
    "Godot's adapter ignores it: the bridge emulates it, per agent, by evaluating in the "
    "stopped frame and letting the game run on by itself when no agent wants the stop (see "
    "README, 'Conditional breakpoints, hit counts, logpoints')"
)


class SourceBreakpoint(Arguments):
    line: int = Field(ge=1, description="1-based line of the script", examples=[12])
    condition: str | None = Field(
        None,
        description="a GDScript expression over the stopped frame (locals, members): "
        "the game stops for you only when it is true; one that fails to evaluate stops "
        "it, the error in the `stopped` event's `hits`. " + CONDITIONAL,
        examples=["counter >= 300"],
    )
    hitCondition: str | None = Field(
        None,
        description=f"stop only at some hits (counted when the condition holds, from 1; "
        f"your counts in a file start again when you set its breakpoints): {HIT_GRAMMAR}. "
        "Anything else is a 400 naming the field. " + CONDITIONAL,
        examples=["5", ">= 5", "== 5", "% 10 == 0"],
    )
    logMessage: str | None = Field(
        None,
        description="a logpoint: never stops; at each hit (with condition and "
        "hitCondition met) an `output` event (category console, `agent`: you) with this "
        "text, each {expression} replaced by its value in the stopped frame ({{ and }} "
        "for braces). " + CONDITIONAL,
        examples=["counter is {counter}, twice {n * 2}"],
    )

    @field_validator("condition", "logMessage", "hitCondition", mode="after")
    @classmethod
    def _blank_is_absent(cls, value: str | None) -> str | None:
        # DAP clients send "" for a field cleared in their UI.
        return value if value is None or value.strip() else None

    @field_validator("hitCondition", mode="after")
    @classmethod
    def _a_hit_condition(cls, value: str | None) -> str | None:
        if value is not None:
            HitCondition.parse(value)  # its ValueError is the 400's sentence
        return value

    @field_validator("logMessage", mode="after")
    @classmethod
    def _a_log_message(cls, value: str | None) -> str | None:
        if value is not None:
            log_parts(value)
        return value

    def spec(self) -> BookBreakpoint:
        return BookBreakpoint(self.line, self.condition, self.hitCondition, self.logMessage)


class SetBreakpointsArguments(Arguments):
    source: Source = Field(description="the script whose breakpoints (yours) are replaced")
    breakpoints: list[SourceBreakpoint] | None = Field(
        None,
        description="your breakpoints in this file, replacing those you had there; "
        "left out (and no `lines`): yours in this file are cleared",
    )
    lines: list[Annotated[int, Field(ge=1)]] | None = Field(
        None,
        description="DAP's older form: 1-based lines; used when `breakpoints` is left out",
    )


class ClearBreakpointsArguments(Arguments):
    # `everyone` needs `source`, said in the schema too (JSON Schema's if/then).
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"everyone": {"const": True}}, "required": ["everyone"]},
            "then": {"required": ["source"], "properties": {"source": {"type": "object"}}},
        }
    )

    everyone: bool = Field(
        False,
        description="every agent's breakpoints in `source` (needs `source`: everyone's "
        "are cleared one file at a time; announced in /debug/events)",
    )
    source: Source | None = Field(
        None,
        validate_default=True,
        description="only this file's; left out: yours in every file (required with `everyone`)",
    )

    @field_validator("source")
    @classmethod
    def _needed_by_everyone(cls, source: Source | None, info: ValidationInfo) -> Source | None:
        if source is None and info.data.get("everyone"):
            # A 400 missing_field naming `source`, as before the declarations.
            raise PydanticCustomError(
                "missing", "'everyone': true needs 'source': cleared one file at a time"
            )
        return source


class LaunchArguments(Arguments):
    scene: str = Field(
        "main",
        min_length=1,
        description="main (the project's main scene), current (the editor's open scene) "
        f"or a .tscn/.scn file ({PATH_DOC})",
        examples=["main", "res://levels/level1.tscn"],
    )
    noDebug: bool = Field(False, description="run without the debugger (no stops)")
    playArgs: list[str] = Field(
        default_factory=list, description="command-line arguments for the game"
    )


THREAD_DOC = "Godot debugs one thread, always 1"


def _a_frame(frame: int) -> int:
    if frame < 0:
        raise ValueError(
            f"frameId {frame} is not a frame: frames are numbered from 0 (the top one); "
            "see /debug/stackTrace"
        )
    return frame


def _a_reference(ref: int) -> int:
    if ref <= 0:
        # Godot's references start at 1 (0 means "no children"): never one handed out.
        raise ValueError(
            f"variablesReference {ref} was not handed out during this stop (references "
            "are positive); take one from /debug/scopes, a variable or an evaluate result"
        )
    return ref


# The old sentences say what to do instead; the schema still says the bound.
FrameId = Annotated[
    int, AfterValidator(_a_frame), WithJsonSchema({"type": "integer", "minimum": 0})
]
VariablesReference = Annotated[
    int, AfterValidator(_a_reference), WithJsonSchema({"type": "integer", "minimum": 1})
]


class ThreadArguments(Arguments):
    threadId: int = Field(THREAD_ID, description=THREAD_DOC)


class StackTraceArguments(ThreadArguments):
    startFrame: int = Field(0, ge=0, description="first frame to answer, 0 the top one")
    levels: int = Field(0, ge=0, description="most frames to answer; 0: all")


class ScopesArguments(Arguments):
    frameId: FrameId = Field(
        description="a frame of the current stop, numbered from 0 (the top one); see "
        "/debug/stackTrace",
    )


class VariablesArguments(Arguments):
    variablesReference: VariablesReference = Field(
        description="a reference handed out during this stop (by /debug/scopes, a "
        "variable or an evaluate result); references die when the game runs on",
    )
    filter: Literal["indexed", "named"] | None = Field(None, description="DAP's filter")
    start: int | None = Field(None, ge=0, description="first child, for paging")
    count: int | None = Field(None, ge=0, description="children to answer, for paging")


class EvaluateArguments(Arguments):
    expression: str = Field(description="a GDScript expression", examples=["a + b"])
    frameId: FrameId = Field(
        0,
        description="the frame to evaluate in, from 0 (the top one); it must have an "
        "instance (a static function's frame has no self)",
    )
    context: str | None = Field(None, description="DAP's context (watch, repl, hover, ...)")


class BreakpointsArguments(Arguments):
    everyone: bool = Field(False, alias="all", description="every agent's, not just yours")


class ConnectArguments(Arguments):
    service: Literal["dap", "lsp"] | None = Field(None, description="dap or lsp; left out: both")


class DisconnectArguments(ConnectArguments):
    force: bool = Field(
        False, description="disconnect although other agents are connected (else 409)"
    )
    reason: str | None = Field(None, description="why, for the others (in /debug/events)")
    resume_after: float = Field(
        RESUME_AFTER,
        ge=0,
        le=MAX_RESUME_AFTER,
        description="seconds before the services reconnect by themselves",
    )


class EventsArguments(Arguments):
    since: int = Field(0, ge=0, description="read the events numbered above this one")
    wait: float = Field(
        0.0, ge=0, description="seconds to wait for the first event (long-poll; at most 30)"
    )
    limit: int = Field(500, ge=1, description="most events in one answer")


# -- answers -------------------------------------------------------------------------


class SourceAnswer(Answer):
    path: str = Field(description="absolute, or res:// in the bridge's own fields")


class Breakpoint(Answer):
    id: int = Field(description="the bridge's id of this line, the same in every answer")
    line: int = Field(description="1-based")
    verified: bool
    message: str | None = Field(None, description="why it is not verified")
    source: SourceAnswer | None = None


class SetBreakpointsAnswer(Answer):
    breakpoints: list[Breakpoint] = Field(description="yours in this file, in your order")
    warning: str | None = Field(
        None, description="set without X-Agent-Id: they go when this connection closes"
    )


class ClearedBreakpoints(Answer):
    path: str = Field(description="res:// path")
    agent: str
    lines: list[int] = Field(description="1-based")


class ClearBreakpointsAnswer(Answer):
    cleared: list[ClearedBreakpoints]


class LaunchAnswer(Answer):
    scene: str = Field(description="main, current or the scene's res:// path")


class ContinueAnswer(Answer):
    allThreadsContinued: bool


class PauseAnswer(Answer):
    alreadyStopped: bool | None = Field(None, description="the game was stopped already")


class StepOutAnswer(Answer):
    steps: int = Field(description="`next`s taken (Godot has no stepOut)")
    stopped: bool | None = None
    continued: bool | None = Field(None, description="the outermost frame: it ran on")
    in_caller: bool | None = None
    reason: str | None = Field(None, description="another stop came first (a breakpoint)")
    returned: bool | None = None
    caller_finished: bool | None = None
    text: str | None = Field(None, description="where it stopped instead, in words")
    limitReached: bool | None = None


class StackFrame(Answer):
    id: int = Field(description="frameId, from 0 (the top frame)")
    name: str
    line: int = Field(description="1-based")
    source: SourceAnswer | None = None


class StackTraceAnswer(Answer):
    stackFrames: list[StackFrame]
    totalFrames: int


class Scope(Answer):
    name: str = Field(description="Locals, Members or Globals")
    variablesReference: int


class ScopesAnswer(Answer):
    scopes: list[Scope]


class Variable(Answer):
    name: str
    value: str
    type: str | None = None
    variablesReference: int = Field(description="children's reference; 0: none")


class VariablesAnswer(Answer):
    variables: list[Variable]


class EvaluateAnswer(Answer):
    result: str
    type: str | None = None
    variablesReference: int = Field(0, description="children's reference; 0: none")


class Thread(Answer):
    id: int
    name: str


class ThreadsAnswer(Answer):
    threads: list[Thread]


class BreakpointLine(Answer):
    line: int = Field(description="1-based")
    condition: str | None = Field(None, description="as set")
    hitCondition: str | None = Field(None, description="as set")
    logMessage: str | None = Field(None, description="as set")
    hitCount: int | None = Field(
        None,
        description="with a condition, hitCondition or logMessage: its hits so far "
        "(counted when the condition held; from 0 again when its owner sets the file's "
        "breakpoints)",
    )


class BreakpointsAnswer(Answer):
    agent: str = Field(description="your identity")
    breakpoints: dict[str, dict[str, list[BreakpointLine]]] = Field(
        description="res:// path → agent → lines"
    )


class DebugEvent(Answer):
    seq: int = Field(description="position in the event log, from 1")
    time: float = Field(description="epoch seconds")
    event: str = Field(
        description="DAP event: stopped, output, process, breakpoint, terminated, exited, ...; "
        "and the bridge's own: breakpoints_cleared, service_disconnected (POST "
        "/disconnect: `service`, `by`, `reason`, `forced`, `others`, `reconnect_in_s`), "
        "lease (the control lease: `action` taken, renewed, forced, released, expired or "
        "dropped, `holder`, `by`, `expires_at`, `previous`, `reason`), "
        "`stopped` with reason `recovered` and `terminated` with reason `inferred`"
    )
    body: dict[str, Any] = Field(
        description="the DAP event's body; a `stopped` at a breakpoint adds `source`, `line` "
        "and `hit_by` (the agents whose breakpoint stopped it: a plain one, or a condition "
        "true / hit count reached / condition failing to evaluate, those in `hits`: "
        "`agent`, `why`, `hitCount`, `error`); a stop nobody wanted is never announced "
        "(the game runs on by itself), a logpoint is an `output` with `agent` and "
        "`logpoint`: true; a pause asked for while the bridge was deciding such a stop "
        "is that stop, announced with reason `paused` and `paused_by`; a stop the bridge "
        "found after reconnecting has reason `recovered`; a game end the bridge saw but Godot did "
        "not announce (after a terminate) is a `terminated` with reason `inferred`"
    )


class EventsPage(Answer):
    events: list[DebugEvent]
    next: int = Field(description="pass as 'since' to read on from here")
    latest: int = Field(description="newest event number")
    dropped: int = Field(description="events after 'since' that fell out of the bounded log")


class Services(Answer):
    debug_adapter: ServiceStatus | None = None
    language_server: ServiceStatus | None = None


# -- the operations ------------------------------------------------------------------

_STOPPED = (*_GODOT, "not_stopped")
_READ: tuple[Method, ...] = ("GET", "POST")

LAUNCH = Operation(
    name="launch",
    effect="control",
    path="/debug/launch",
    summary="debug adapter: run the game under the debugger (scene: main, current or a path)",
    description="A game already running is ended first. Its stops appear in /debug/events.",
    arguments=LaunchArguments,
    answer=LaunchAnswer,
    errors=(*_GODOT, *_PATH),
    tags=("debug",),
)
SET_BREAKPOINTS = Operation(
    name="set_breakpoints",
    effect="change",
    path="/debug/setBreakpoints",
    summary="debug adapter: replace your breakpoints in one file",
    description="Each agent's breakpoints are kept apart; Godot gets the union per file. "
    "Lines are 1-based. condition, hitCondition and logMessage work per agent (the "
    "bridge decides at each stop whether anyone wants it; a logpoint never stops): a "
    "hitCondition or logMessage that does not parse is a 400 naming the field.",
    arguments=SetBreakpointsArguments,
    answer=SetBreakpointsAnswer,
    errors=(*_GODOT, *_PATH, "not_a_script"),
    tags=("debug",),
)
CLEAR_BREAKPOINTS = Operation(
    name="clear_breakpoints",
    effect="change",
    path="/debug/clearBreakpoints",
    summary="debug adapter: clear your breakpoints (everyone=true: all in one file)",
    description="Works while the adapter is away too: the next connection gets the rest.",
    arguments=ClearBreakpointsArguments,
    answer=ClearBreakpointsAnswer,
    errors=(*_GODOT, "outside_project", "not_a_script"),
    tags=("debug",),
)
CONTINUE = Operation(
    name="continue",
    effect="control",
    path="/debug/continue",
    summary="debug adapter: resume the stopped game",
    arguments=ThreadArguments,
    answer=ContinueAnswer,
    errors=_STOPPED,
    tags=("debug",),
)
PAUSE = Operation(
    name="pause",
    effect="control",
    path="/debug/pause",
    summary="debug adapter: pause the running game",
    arguments=ThreadArguments,
    answer=PauseAnswer,
    errors=(*_GODOT, "not_running"),
    tags=("debug",),
)
NEXT = Operation(
    name="next",
    effect="control",
    path="/debug/next",
    summary="debug adapter: step over",
    arguments=ThreadArguments,
    answer=Answer,
    errors=_STOPPED,
    tags=("debug",),
)
STEP_IN = Operation(
    name="step_in",
    effect="control",
    path="/debug/stepIn",
    summary="debug adapter: step into",
    arguments=ThreadArguments,
    answer=Answer,
    errors=_STOPPED,
    tags=("debug",),
)
STEP_OUT = Operation(
    name="step_out",
    effect="control",
    path="/debug/stepOut",
    summary="debug adapter: step out (emulated)",
    description="Godot has no stepOut: `next` until the game is back in the caller.",
    arguments=ThreadArguments,
    answer=StepOutAnswer,
    errors=_STOPPED,
    tags=("debug",),
)
STACK_TRACE = Operation(
    name="stack_trace",
    path="/debug/stackTrace",
    methods=_READ,
    summary="debug adapter: frames of the stopped game",
    arguments=StackTraceArguments,
    answer=StackTraceAnswer,
    errors=_STOPPED,
    tags=("debug",),
)
SCOPES = Operation(
    name="scopes",
    path="/debug/scopes",
    methods=_READ,
    summary="debug adapter: scopes of a frame",
    arguments=ScopesArguments,
    answer=ScopesAnswer,
    errors=_STOPPED,
    tags=("debug",),
)
VARIABLES = Operation(
    name="variables",
    path="/debug/variables",
    methods=_READ,
    summary="debug adapter: variables of a scope or value",
    arguments=VariablesArguments,
    answer=VariablesAnswer,
    errors=_STOPPED,
    tags=("debug",),
)
EVALUATE = Operation(
    name="evaluate",
    path="/debug/evaluate",
    summary="debug adapter: evaluate an expression in a frame",
    description="Only while the game is stopped (409 otherwise); a failed evaluation is "
    "a 422 with the game's message.",
    arguments=EvaluateArguments,
    answer=EvaluateAnswer,
    errors=(*_STOPPED, "evaluate_failed"),
    tags=("debug",),
)
THREADS = Operation(
    name="threads",
    path="/debug/threads",
    methods=_READ,
    summary="debug adapter: the game's threads",
    arguments=NoArguments,
    answer=ThreadsAnswer,
    errors=_GODOT,
    tags=("debug",),
)
TERMINATE = Operation(
    name="terminate",
    effect="control",
    path="/debug/terminate",
    summary="debug adapter: stop the game",
    arguments=NoArguments,
    answer=Answer,
    errors=_GODOT,
    tags=("debug",),
)
EVENTS = Operation(
    name="events",
    path="/debug/events",
    methods=_READ,
    summary="debug events after 'since', waiting up to 'wait' s for the first (long-poll)",
    arguments=EventsArguments,
    answer=EventsPage,
    errors=("invalid_field",),
    tags=("debug",),
)
BREAKPOINTS = Operation(
    name="breakpoints",
    path="/debug/breakpoints",
    methods=("GET",),
    summary="your breakpoints per file (all=true: every agent's)",
    arguments=BreakpointsArguments,
    answer=BreakpointsAnswer,
    errors=("invalid_field",),
    tags=("debug",),
)
CONNECT = Operation(
    name="connect",
    # Drives nothing (it only brings the bridge's own connections back): audited, and open
    # to everyone under a lease, so any agent can repair a dead connection.
    effect="change",
    path="/connect",
    summary="connect to Godot's DAP and LSP now",
    arguments=ConnectArguments,
    answer=Services,
    errors=("invalid_field", "not_connected", "not_available"),
    tags=("services",),
)
DISCONNECT = Operation(
    name="disconnect",
    effect="control",
    path="/disconnect",
    summary="disconnect from Godot's DAP/LSP",
    description="Switches the services off for everyone: refused (409 conflict) while "
    "others are connected unless forced; announced in /debug/events; they come back by "
    "themselves after resume_after seconds.",
    arguments=DisconnectArguments,
    answer=Services,
    errors=("invalid_field", "conflict", "not_available"),
    tags=("services",),
)

OPERATIONS: tuple[Operation[Any], ...] = (
    LAUNCH,
    SET_BREAKPOINTS,
    CLEAR_BREAKPOINTS,
    CONTINUE,
    PAUSE,
    NEXT,
    STEP_IN,
    STEP_OUT,
    STACK_TRACE,
    SCOPES,
    VARIABLES,
    EVALUATE,
    THREADS,
    TERMINATE,
    EVENTS,
    BREAKPOINTS,
    CONNECT,
    DISCONNECT,
)

LspProvider = Callable[[], Any]
# Who else is connected (identities other than the one given), and how to tell every agent.
OthersProvider = Callable[[str], list[str]]
Announce = Callable[[str, dict[str, Any]], None]

CONNECTION_SCOPED_WARNING = (
    "these breakpoints belong to this connection ({identity}) and are removed when it "
    "closes (curl opens a new one for every call); send an X-Agent-Id header to keep "
    "them under a name of your own"
)


def register(
    routes: RouteTable,
    session: DapSession,
    *,
    lsp: LspProvider | None = None,
    others: OthersProvider | None = None,
    announce: Announce | None = None,
) -> None:
    """Serve the debug operations; `lsp()` gives the LSP service for /connect, if any."""
    commands = _Commands(session)
    routes.serve(LAUNCH, commands.launch)
    routes.serve(SET_BREAKPOINTS, commands.set_breakpoints)
    routes.serve(CLEAR_BREAKPOINTS, commands.clear_breakpoints)
    routes.serve(CONTINUE, commands.continue_)
    routes.serve(PAUSE, commands.pause)
    routes.serve(NEXT, commands.next)
    routes.serve(STEP_IN, commands.step_in)
    routes.serve(STEP_OUT, commands.step_out)
    routes.serve(STACK_TRACE, commands.stack_trace)
    routes.serve(SCOPES, commands.scopes)
    routes.serve(VARIABLES, commands.variables)
    routes.serve(EVALUATE, commands.evaluate)
    routes.serve(THREADS, commands.threads)
    routes.serve(TERMINATE, commands.terminate)

    async def events(args: EventsArguments, caller: Caller) -> Any:
        return await session.wait_events(args.since, args.wait, args.limit)

    async def breakpoints(args: BreakpointsArguments, caller: Caller) -> Any:
        agent = None if args.everyone else caller.identity
        return {"agent": caller.identity, "breakpoints": session.breakpoints(agent)}

    routes.serve(EVENTS, events)
    routes.serve(BREAKPOINTS, breakpoints)
    services = _Services(session, lsp, others, announce)
    routes.serve(CONNECT, services.connect)
    routes.serve(DISCONNECT, services.disconnect)


class _Commands:
    """The DAP commands: each operation's arguments handed to the session as they are."""

    def __init__(self, session: DapSession) -> None:
        self.session = session

    async def launch(self, args: LaunchArguments, caller: Caller) -> Any:
        return await self.session.launch(caller.identity, args.scene, args.noDebug, args.playArgs)

    async def set_breakpoints(self, args: SetBreakpointsArguments, caller: Caller) -> Any:
        lines: list[int | BookBreakpoint]
        if args.breakpoints is not None:
            lines = [b.spec() for b in args.breakpoints]
        else:
            lines = list(args.lines or [])
        result = await self.session.set_breakpoints(caller.identity, args.source.path, lines)
        if caller.connection_scoped and result["breakpoints"]:
            warning = CONNECTION_SCOPED_WARNING.format(identity=caller.identity)
            result = {**result, "warning": warning}
        return result

    async def clear_breakpoints(self, args: ClearBreakpointsArguments, caller: Caller) -> Any:
        path = args.source.path if args.source is not None else None
        return await self.session.clear_breakpoints(caller.identity, path, args.everyone)

    async def continue_(self, args: ThreadArguments, caller: Caller) -> Any:
        return await self.session.continue_(caller.identity, args.threadId)

    async def pause(self, args: ThreadArguments, caller: Caller) -> Any:
        return await self.session.pause(caller.identity, args.threadId)

    async def next(self, args: ThreadArguments, caller: Caller) -> Any:
        return await self.session.next(caller.identity, args.threadId)

    async def step_in(self, args: ThreadArguments, caller: Caller) -> Any:
        return await self.session.step_in(caller.identity, args.threadId)

    async def step_out(self, args: ThreadArguments, caller: Caller) -> Any:
        return await self.session.step_out(caller.identity, args.threadId)

    async def stack_trace(self, args: StackTraceArguments, caller: Caller) -> Any:
        return await self.session.stack_trace(
            caller.identity, args.threadId, args.startFrame, args.levels
        )

    async def scopes(self, args: ScopesArguments, caller: Caller) -> Any:
        return await self.session.scopes(caller.identity, args.frameId)

    async def variables(self, args: VariablesArguments, caller: Caller) -> Any:
        return await self.session.variables(
            caller.identity,
            args.variablesReference,
            filter=args.filter,
            start=args.start,
            count=args.count,
        )

    async def evaluate(self, args: EvaluateArguments, caller: Caller) -> Any:
        return await self.session.evaluate(
            caller.identity, args.expression, args.frameId, args.context
        )

    async def threads(self, args: NoArguments, caller: Caller) -> Any:
        return await self.session.threads(caller.identity)

    async def terminate(self, args: NoArguments, caller: Caller) -> Any:
        return await self.session.terminate(caller.identity)


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

    def _chosen(self, service: str | None) -> dict[str, Any]:
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

    async def connect(self, args: ConnectArguments, caller: Caller) -> Any:
        chosen = self._chosen(args.service)
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

    async def disconnect(self, args: DisconnectArguments, caller: Caller) -> Any:
        """Switch services off for everyone: refused (409) while others are connected unless
        forced; announced in /debug/events; they come back by themselves after a pause."""
        chosen = self._chosen(args.service)
        who = caller.identity
        others = self.others(who) if self.others is not None else []
        if others and not args.force:
            raise RequestError(
                f"{len(others)} other agent(s) are connected ({', '.join(others[:10])}) and share "
                "these services; disconnecting would switch them off for everyone. Send "
                '{"force": true} to do it anyway: it is announced in /debug/events and the '
                f"services reconnect by themselves after 'resume_after' s ({RESUME_AFTER:g})",
                status=409,
                code="conflict",
                details={"agents": others},
            )
        why = args.reason or "POST /disconnect"
        for name, service in chosen.items():
            service.status.taken_down(why, who)
            await service.disconnect(
                f"disconnected by {who}: {why}", resume_after=args.resume_after
            )
            if self.announce is not None:
                self.announce(
                    "service_disconnected",
                    {
                        "service": name,
                        "by": who,
                        "reason": why,
                        "forced": args.force,
                        "others": others,
                        "reconnect_in_s": args.resume_after,
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

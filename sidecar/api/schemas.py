"""Request and answer schemas of every endpoint, keyed by (method, path).

The route table (`http.RouteTable`) says what is served; this module says what each
endpoint takes and answers, with examples. `openapi.py` joins the two into the OpenAPI
document and HTTP_API.md, and tests/test_openapi.py fails when a route has no entry here
or an entry has no route, so neither can drift from what the server does.

Schemas are JSON Schema 2020-12 (what OpenAPI 3.1 uses); `ref("Name")` points into
`COMPONENTS`. A GET endpoint's `body` schema describes its query parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), desc: str = "", **props: Schema) -> Schema:
    """An object with `props`; `required` lists the ones that must be there."""
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return _described(out, desc)


def arr(items: Schema, description: str = "") -> Schema:
    return _described({"type": "array", "items": items}, description)


def string(description: str = "", **kw: Any) -> Schema:
    return _described({"type": "string", **kw}, description)


def integer(description: str = "", **kw: Any) -> Schema:
    return _described({"type": "integer", **kw}, description)


def number(description: str = "", **kw: Any) -> Schema:
    return _described({"type": "number", **kw}, description)


def boolean(description: str = "") -> Schema:
    return _described({"type": "boolean"}, description)


def nullable(schema: Schema) -> Schema:
    return _described({"anyOf": [schema, {"type": "null"}]}, schema.get("description", ""))


def any_json(description: str = "") -> Schema:
    return _described({}, description)


def _described(schema: Schema, description: str) -> Schema:
    if description:
        schema["description"] = description
    return schema


# -- shared shapes ------------------------------------------------------------------------

COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        ("status", "error"),
        status={"const": "error"},
        error=obj(
            ("code", "message"),
            code=string("machine word, e.g. missing_field, not_stopped, stale_hash"),
            message=string("what went wrong and what to do about it"),
            field=string("the request field at fault (400)"),
        ),
    ),
    "ServiceStatus": obj(
        ("service", "port", "state", "ready", "retry_count"),
        service=string("debug_adapter or language_server"),
        port=integer("Godot's port for it"),
        state=string(
            "starting: the editor has not served the port yet (probed every 0.25 s); "
            "wrong_editor: another editor serves the port, nothing is sent to it",
            enum=[
                "disconnected",
                "starting",
                "connecting",
                "connected",
                "error",
                "reconnecting",
                "wrong_editor",
            ],
        ),
        ready=boolean("connected and usable"),
        retry_count=integer("failed attempts since the last success"),
        last_activity=nullable(string("ISO 8601 UTC time of the last message")),
        last_error=nullable(string()),
        state_since=nullable(string()),
        next_retry_in_s=nullable(number("seconds until the next automatic attempt")),
        message=string("the state in words, and why when not connected"),
        down_reason=nullable(string("why an agent disconnected it (POST /disconnect)")),
        down_by=nullable(string("the agent that disconnected it")),
    ),
    "Agent": obj(
        ("id", "identity", "connected_at", "requests"),
        id=integer("the addon's client id of the connection"),
        agent=nullable(string("the X-Agent-Id it sent, if any")),
        identity=string("the key its breakpoints and documents are kept under"),
        peer=string("address:port"),
        connected_at=string("ISO 8601 UTC"),
        requests=integer("requests served on this connection"),
    ),
    "Status": obj(
        ("overall_ready", "debug_adapter", "language_server", "clients", "sidecar"),
        overall_ready=boolean("both services connected"),
        debug_adapter=ref("ServiceStatus"),
        language_server=ref("ServiceStatus"),
        clients=obj(
            ("active", "max", "agents"),
            active=integer(),
            max=integer("most agents at once (GODOT_BRIDGE_MAX_CLIENTS)"),
            agents=arr(ref("Agent")),
        ),
        sidecar=obj(
            pid=integer(),
            version=string(),
            project=string(),
            editor_pid=nullable(integer("the editor its ports must belong to; null: unchecked")),
            uptime_s=number(),
        ),
    ),
    "DebugEvent": obj(
        ("seq", "time", "event", "body"),
        seq=integer("position in the event log, from 1"),
        time=number("epoch seconds"),
        event=string(
            "DAP event: stopped, output, process, breakpoint, terminated, exited, ...; "
            "and the bridge's own: breakpoints_cleared, service_disconnected (POST "
            "/disconnect: `service`, `by`, `reason`, `forced`, `others`, `reconnect_in_s`), "
            "`stopped` with reason `recovered` and `terminated` with reason `inferred`"
        ),
        body=any_json(
            "the DAP event's body; a `stopped` at a breakpoint adds `source`, `line` and "
            "`hit_by` (the agents with a breakpoint there); a stop the bridge found after "
            "reconnecting has reason `recovered`; a game end the bridge saw but Godot did "
            "not announce (after a terminate) is a `terminated` with reason `inferred`"
        ),
    ),
    "EventsPage": obj(
        ("events", "next", "latest", "dropped"),
        events=arr(ref("DebugEvent")),
        next=integer("pass as 'since' to read on from here"),
        latest=integer("newest event number"),
        dropped=integer("events after 'since' that fell out of the bounded log"),
    ),
    "SourceBreakpoint": obj(
        ("line",),
        desc="`condition`, `hitCondition` and `logMessage` are refused (400): Godot ignores them",
        line=integer("1-based", minimum=1),
    ),
    "Breakpoint": obj(
        ("line", "verified"),
        id=integer(
            "the bridge's id of this line: the same in every answer, `breakpoint` event and "
            "`stopped.hitBreakpointIds`, for every agent"
        ),
        line=integer(),
        verified=boolean("Godot accepted it, and the line can run (not blank or a comment)"),
        source=any_json(),
        message=string("why it is not verified"),
    ),
    "StackFrame": obj(
        ("id", "name", "line"),
        id=integer("frameId for scopes/evaluate"),
        name=string(),
        line=integer(),
        column=integer(),
        source=any_json(),
    ),
    "Scope": obj(
        ("name", "variablesReference"),
        name=string("Locals, Members or Globals"),
        variablesReference=integer(),
        expensive=boolean(),
        presentationHint=string(),
    ),
    "Variable": obj(
        ("name", "value", "variablesReference"),
        name=string(),
        value=string(),
        type=string(),
        variablesReference=integer("non-zero: has children, read them with /debug/variables"),
    ),
    "Position": obj(
        ("line", "character"),
        line=integer("0-based", minimum=0),
        character=integer("0-based, UTF-16 code units", minimum=0),
    ),
    "Range": obj(("start", "end"), start=ref("Position"), end=ref("Position")),
    "Location": obj(("uri", "range"), uri=string(), range=ref("Range")),
    "TextDocument": obj(
        ("uri",),
        uri=string("res://, project-relative, absolute or file:// path of a project file"),
        version=integer(),
        text=string(),
        languageId=string(),
    ),
    "Diagnostic": obj(
        ("range", "message"),
        range=ref("Range"),
        severity=integer("1 error, 2 warning, 3 information, 4 hint"),
        code=any_json(),
        source=string(),
        message=string(),
    ),
    "TextEdit": obj(("range", "newText"), range=ref("Range"), newText=string()),
    "Document": obj(
        ("uri", "path", "version", "open_by"),
        uri=string("Godot's file:// URI"),
        path=string("res:// path"),
        version=integer("the sidecar's version of the shared document"),
        open_by=obj(desc="agent identity → times it opened the document"),
    ),
    "Services": obj(debug_adapter=ref("ServiceStatus"), language_server=ref("ServiceStatus")),
}

# Every error code, by HTTP status, for HTTP_API.md.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("invalid_json", "missing_field", "invalid_field", "missing_host", "not_text"),
    401: ("unauthorized",),
    403: ("forbidden_origin", "forbidden_path", "outside_project"),
    404: ("not_found", "no_such_file"),
    405: ("method_not_allowed",),
    408: ("request_timeout",),
    409: ("not_stopped", "not_running", "stale_hash", "conflict", "not_open", "not_open_by_agent"),
    413: ("body_too_large",),
    415: ("unsupported_media_type",),
    421: ("misdirected_request",),
    422: ("evaluate_failed",),
    500: ("internal_error",),
    502: ("godot_error", "lsp_error", "bad_peer_message", "editor_action_failed"),
    503: ("not_connected", "no_editor", "not_available", "connection_lost", "peer_closed"),
    504: ("timeout",),
}

STATUS_TEXT: dict[int, str] = {
    400: "bad JSON, a missing or wrong-typed field (named in `error.field`)",
    401: "a token is configured and the request lacks `Authorization: Bearer <token>`",
    403: "a web page's Origin, or a path outside the project",
    404: "unknown endpoint (the answer lists them) or file",
    405: "method not allowed on this path (see `Allow`)",
    408: "the request body did not arrive in time",
    409: "conflict: the game is not stopped/running, stale hash or document version",
    413: "request body over 1 MiB",
    415: "a request body without `Content-Type: application/json`",
    421: "the Host header is not 127.0.0.1, localhost or [::1]",
    422: "the game could not evaluate the expression (Godot's message in `error.message`)",
    500: "a bug in the sidecar (see its log)",
    502: "Godot answered with an error",
    503: "Godot's server not connected, no editor, bridge full or restarting (`Retry-After`)",
    504: "Godot did not answer in time (GODOT_BRIDGE_TIMEOUT, 10 s)",
}


@dataclass(frozen=True)
class Operation:
    """What one (method, path) takes and answers."""

    tag: str
    result: Schema
    body: Schema | None = None
    errors: tuple[int, ...] = ()
    example: Any = None  # request body (or query) example
    answer: Any = None  # `result` example
    notes: str = ""
    # The answer is not the {"status", "result"} envelope but this media type as is.
    raw: str | None = None
    # The result's fields sit at the top level beside "status": "ok" (GET /status, the seed's).
    flat: bool = False


def both(path: str, op: Operation) -> dict[tuple[str, str], Operation]:
    """The same operation as GET (query parameters) and POST (JSON body)."""
    return {("GET", path): op, ("POST", path): op}


# -- debug adapter -----------------------------------------------------------------------

THREAD = obj(threadId=integer("always 1 in Godot; may be left out"))


def service_example(name: str, port: int, state: str = "connected") -> dict[str, Any]:
    return {
        "service": name,
        "port": port,
        "state": state,
        "ready": state == "connected",
        "retry_count": 0,
        "last_activity": "2026-11-28T14:59:51Z",
        "last_error": None,
        "state_since": "2026-11-28T14:59:48Z",
        "next_retry_in_s": None,
        "message": state,
        "down_reason": None,
        "down_by": None,
    }


STATUS_EXAMPLE = {
    "overall_ready": True,
    "debug_adapter": service_example("debug_adapter", 6006),
    "language_server": service_example("language_server", 6005),
    "clients": {
        "active": 1,
        "max": 100,
        "agents": [
            {
                "id": 7,
                "agent": "alice",
                "identity": "alice",
                "peer": "127.0.0.1:41522",
                "connected_at": "2026-11-28T14:59:48Z",
                "requests": 12,
            }
        ],
    },
    "sidecar": {
        "pid": 5136,
        "version": "0.1.0",
        "project": "/home/me/game",
        "editor_pid": 5120,
        "uptime_s": 61.2,
    },
}
EMPTY = obj()
DEBUG_ERRORS = (409, 502, 503, 504)
STEP_NOTE = "The game runs on; its next stop arrives as a `stopped` event in `/debug/events`."


def _debug(summary_answer: Schema, **kw: Any) -> Operation:
    return Operation(tag="debug", result=summary_answer, **kw)


DEBUG: dict[tuple[str, str], Operation] = {
    ("POST", "/debug/launch"): _debug(
        obj(scene=string()),
        body=obj(
            scene=string("main (default), current, or a .tscn/.scn path"),
            noDebug=boolean("run without breakpoints"),
            playArgs=arr(string(), "extra command-line arguments for the game"),
        ),
        errors=(502, 503, 504),
        example={"scene": "main"},
        answer={"scene": "main"},
        notes="A running game is stopped first. Every agent's breakpoints are sent again.",
    ),
    ("POST", "/debug/setBreakpoints"): _debug(
        obj(
            ("breakpoints",),
            breakpoints=arr(ref("Breakpoint")),
            warning=string("set without X-Agent-Id: they go when this connection closes"),
        ),
        body=obj(
            ("source",),
            source=obj(("path",), path=string("a .gd file: res://, project-relative or absolute")),
            breakpoints=arr(ref("SourceBreakpoint"), "your whole set for this file; [] clears"),
            lines=arr(integer(), "DAP's older form of 'breakpoints'"),
        ),
        errors=(403, 502, 503, 504),
        example={"source": {"path": "res://demo/main.gd"}, "breakpoints": [{"line": 14}]},
        answer={"breakpoints": [{"id": 1, "line": 14, "verified": True}]},
        notes=(
            "Replaces only **your** breakpoints in the file; Godot gets every agent's union. "
            "Only GDScript (`.gd`) files take breakpoints; `condition`, `hitCondition` and "
            "`logMessage` are refused (400) until they are implemented. Without "
            "`X-Agent-Id` the breakpoints belong to the connection and are removed when it "
            "closes (the answer's `warning` says so). A blank line, a comment or a declaration "
            "that runs no code (`signal`, `extends`, `class_name`) is answered unverified with "
            "a `message`: the game never stops there."
        ),
    ),
    ("POST", "/debug/clearBreakpoints"): _debug(
        obj(
            ("cleared",),
            cleared=arr(obj(path=string(), agent=string(), lines=arr(integer()))),
        ),
        body=obj(
            source=obj(("path",), path=string("one file; all files when left out")),
            everyone=boolean("every agent's breakpoints in that file (needs 'source')"),
        ),
        errors=(403, 502, 504),
        example={"source": {"path": "res://demo/main.gd"}, "everyone": True},
        answer={"cleared": [{"path": "res://demo/main.gd", "agent": "client-7", "lines": [14]}]},
        notes=(
            "Clears **your** breakpoints (one file, or all), or deliberately everyone's in "
            "one file. Announced in `/debug/events` as `breakpoints_cleared` "
            "`{by, path, everyone, cleared}`."
        ),
    ),
    ("POST", "/debug/continue"): _debug(
        obj(allThreadsContinued=boolean()),
        body=THREAD,
        errors=DEBUG_ERRORS,
        example={"threadId": 1},
        answer={"allThreadsContinued": True},
        notes=STEP_NOTE,
    ),
    ("POST", "/debug/pause"): _debug(
        obj(alreadyStopped=boolean()),
        body=THREAD,
        errors=DEBUG_ERRORS,
        example={"threadId": 1},
        answer={},
    ),
    ("POST", "/debug/next"): _debug(
        EMPTY, body=THREAD, errors=DEBUG_ERRORS, example={}, answer={}, notes=STEP_NOTE
    ),
    ("POST", "/debug/stepIn"): _debug(
        EMPTY, body=THREAD, errors=DEBUG_ERRORS, example={}, answer={}, notes=STEP_NOTE
    ),
    ("POST", "/debug/stepOut"): _debug(
        obj(
            steps=integer("`next` steps taken"),
            stopped=boolean(),
            continued=boolean("the outermost frame: it continued instead"),
            reason=string(),
            in_caller=boolean("stopped in the caller: the old stack less its top frame"),
            returned=boolean("not in the caller: it returned too"),
            caller_finished=boolean("the caller had nothing left to run after the call"),
            text=string("where it stopped instead, in words"),
        ),
        body=THREAD,
        errors=DEBUG_ERRORS,
        example={},
        answer={"steps": 2, "stopped": True, "in_caller": True},
        notes=(
            "Godot has no stepOut: `next` until the stack is the old one less its top frame "
            "(by function and script). When the call was the caller's last line, the caller "
            "returns too and the game stops at whatever line runs next: the answer says so "
            "(`in_caller: false`, `caller_finished: true`, `text`)."
        ),
    ),
    **both(
        "/debug/stackTrace",
        _debug(
            obj(
                ("stackFrames", "totalFrames"),
                stackFrames=arr(ref("StackFrame")),
                totalFrames=integer(),
            ),
            body=obj(threadId=integer(), startFrame=integer(), levels=integer("0: all")),
            errors=DEBUG_ERRORS,
            example={"threadId": 1},
            answer={
                "stackFrames": [{"id": 0, "name": "_process", "line": 14, "column": 0}],
                "totalFrames": 1,
            },
        ),
    ),
    **both(
        "/debug/scopes",
        _debug(
            obj(("scopes",), scopes=arr(ref("Scope"))),
            body=obj(("frameId",), frameId=integer("from /debug/stackTrace")),
            errors=(400, *DEBUG_ERRORS),
            notes="A frame id not in this stop's stack is 400; a stop with no stack is 409.",
            example={"frameId": 0},
            answer={
                "scopes": [
                    {"name": "Locals", "variablesReference": 1, "expensive": False},
                    {"name": "Members", "variablesReference": 2, "expensive": False},
                ]
            },
        ),
    ),
    **both(
        "/debug/variables",
        _debug(
            obj(("variables",), variables=arr(ref("Variable"))),
            body=obj(
                ("variablesReference",),
                variablesReference=integer("from /debug/scopes or a variable"),
                filter=string("indexed or named"),
                start=integer(),
                count=integer(),
            ),
            errors=(400, *DEBUG_ERRORS),
            notes=(
                "Only references handed out during the current stop (by scopes, variables "
                "or evaluate) are accepted; any other is 400 at once."
            ),
            example={"variablesReference": 1},
            answer={
                "variables": [{"name": "a", "type": "int", "value": "2", "variablesReference": 0}]
            },
        ),
    ),
    ("POST", "/debug/evaluate"): _debug(
        obj(("result",), result=string(), variablesReference=integer(), type=string()),
        body=obj(
            ("expression",),
            expression=string("a GDScript expression"),
            frameId=integer("default 0, the top frame"),
            context=string("watch, repl or hover"),
        ),
        errors=(400, 409, 422, 502, 503, 504),
        example={"expression": "a + b", "frameId": 0},
        answer={"result": "5", "variablesReference": 0},
        notes=(
            "An expression the game cannot evaluate (a syntax error, an unknown name) is 422 "
            "`evaluate_failed` with Godot's message; a real null is `<null>`. A frame id "
            "not in this stop's stack is 400; a stop with no stack (a pause between "
            "frames) is 409."
        ),
    ),
    **both(
        "/debug/threads",
        _debug(
            obj(("threads",), threads=arr(obj(id=integer(), name=string()))),
            body=EMPTY,
            errors=(502, 503, 504),
            example={},
            answer={"threads": [{"id": 1, "name": "Main"}]},
        ),
    ),
    ("POST", "/debug/terminate"): _debug(
        EMPTY,
        body=EMPTY,
        errors=(502, 503, 504),
        example={},
        answer={},
        notes=(
            "The end is always announced in `/debug/events`: when Godot says nothing (a game "
            "terminated before its debugger session was up), the bridge appends a "
            '`terminated` event with `"reason": "inferred"` once the game is gone (at most '
            "~2 s)."
        ),
    ),
    **both(
        "/debug/events",
        _debug(
            ref("EventsPage"),
            body=obj(
                since=integer("read events numbered above this (default 0)"),
                wait=number("seconds to wait for the first new event (long-poll, ≤ 30)"),
                limit=integer("most events in one answer (default 500)", minimum=1),
            ),
            errors=(400,),
            example={"since": 0, "wait": 5},
            answer={
                "events": [
                    {
                        "seq": 7,
                        "time": 1795877990.1,
                        "event": "stopped",
                        "body": {"reason": "breakpoint", "threadId": 1},
                    }
                ],
                "next": 7,
                "latest": 7,
                "dropped": 0,
            },
            notes="One numbered log shared by every agent; each reads from where it left off.",
        ),
    ),
    ("GET", "/debug/breakpoints"): _debug(
        obj(
            ("agent", "breakpoints"),
            agent=string("your identity"),
            breakpoints=obj(desc="res:// path → agent identity → [{line, condition?}]"),
        ),
        body=obj(all=boolean("everyone's, not only yours")),
        example={"all": False},
        answer={"agent": "alice", "breakpoints": {"res://demo/main.gd": {"alice": [{"line": 14}]}}},
    ),
    ("POST", "/connect"): Operation(
        tag="services",
        result=ref("Services"),
        body=obj(service=string("dap or lsp; both when left out", enum=["dap", "lsp"])),
        errors=(400, 503),
        example={"service": "dap"},
        answer={"debug_adapter": service_example("debug_adapter", 6006)},
        notes="Connect now instead of waiting for the next automatic retry.",
    ),
    ("POST", "/disconnect"): Operation(
        tag="services",
        result=ref("Services"),
        body=obj(
            service=string("dap or lsp; both when left out", enum=["dap", "lsp"]),
            force=boolean("disconnect although other agents are connected (else 409)"),
            reason=string("why, shown in /status and the event"),
            resume_after=number("seconds until they reconnect by themselves (default 5, max 600)"),
        ),
        errors=(400, 409),
        example={"service": "lsp", "force": True, "reason": "restarting the language server"},
        answer={"language_server": service_example("language_server", 6005, "disconnected")},
        notes="The services are shared: while other agents are connected this is refused (409 "
        "`conflict`, naming them) unless `force` is true. A disconnect is announced in "
        "`/debug/events` (event `service_disconnected` with `service`, `by`, `reason`), "
        "`/status` shows `down_reason` and `down_by`, and the services reconnect by themselves "
        "after `resume_after` seconds (or at the next `POST /connect`).",
    ),
}

# -- language server ---------------------------------------------------------------------

DOC = obj(
    ("textDocument",),
    textDocument=ref("TextDocument"),
    uri=string("shortcut for textDocument.uri"),
)
AT = obj(
    ("textDocument", "position"),
    textDocument=ref("TextDocument"),
    position=ref("Position"),
)
LSP_ERRORS = (400, 403, 502, 503, 504)
AT_EXAMPLE = {
    "textDocument": {"uri": "res://demo/main.gd"},
    "position": {"line": 8, "character": 20},
}
LOCATION = {
    "uri": "file:///project/demo/main.gd",
    "range": {"start": {"line": 20, "character": 5}, "end": {"line": 20, "character": 16}},
}


def _lsp(result: Schema, **kw: Any) -> Operation:
    return Operation(tag="lsp", result=result, **kw)


def _position(method: str, result: Schema, answer: Any) -> Operation:
    return _lsp(result, body=AT, errors=LSP_ERRORS, example=AT_EXAMPLE, answer=answer)


LOCATIONS = nullable(arr(ref("Location")))

LSP: dict[tuple[str, str], Operation] = {
    ("POST", "/lsp/didOpen"): _lsp(
        {
            "allOf": [
                ref("Document"),
                obj(
                    created=boolean("you are the first to open it"),
                    text_matches=boolean("the shared text is the one you sent"),
                    text=string("the shared text, when it differs from yours"),
                ),
            ]
        },
        body=DOC,
        errors=(400, 403, 404, 503),
        example={"textDocument": {"uri": "res://demo/main.gd"}},
        answer={
            "uri": "file:///project/demo/main.gd",
            "path": "res://demo/main.gd",
            "version": 1,
            "open_by": {"alice": 1},
            "created": True,
            "text_matches": True,
        },
        notes="Without `text` the shared copy or the file on disk is used.",
    ),
    ("POST", "/lsp/didChange"): _lsp(
        obj(uri=string(), path=string(), version=integer()),
        body=obj(
            ("textDocument", "contentChanges"),
            textDocument=ref("TextDocument"),
            contentChanges=arr(
                obj(text=string(), range=ref("Range")), "full text, or ranges (incremental)"
            ),
        ),
        errors=(400, 403, 409, 503),
        example={
            "textDocument": {"uri": "res://demo/main.gd", "version": 2},
            "contentChanges": [{"text": "extends Node\n"}],
        },
        answer={"uri": "file:///project/demo/main.gd", "path": "res://demo/main.gd", "version": 2},
        notes="A `textDocument.version` other than the shared version + 1 is a 409.",
    ),
    ("POST", "/lsp/didSave"): _lsp(
        obj(uri=string(), path=string()),
        body=DOC,
        errors=(400, 403, 409, 503),
        example={"textDocument": {"uri": "res://demo/main.gd"}},
        answer={"uri": "file:///project/demo/main.gd", "path": "res://demo/main.gd"},
    ),
    ("POST", "/lsp/didClose"): _lsp(
        {"allOf": [ref("Document"), obj(closed_in_godot=boolean("you were the last holder"))]},
        body=DOC,
        errors=(400, 403, 409),
        example={"textDocument": {"uri": "res://demo/main.gd"}},
        answer={
            "uri": "file:///project/demo/main.gd",
            "path": "res://demo/main.gd",
            "version": 2,
            "open_by": {},
            "closed_in_godot": True,
        },
    ),
    ("POST", "/lsp/completion"): _lsp(
        obj(
            ("items", "total", "truncated"),
            items=arr(obj(label=string(), kind=integer(), insertText=string())),
            total=integer("items before the limit"),
            truncated=boolean(),
            prefix=string("what was filtered on: 'prefix' or the word before the cursor"),
            isIncomplete=boolean(),
        ),
        body={
            "allOf": [
                AT,
                obj(
                    prefix=string(
                        "keep items starting with this, any case (default: the identifier "
                        'characters left of the cursor; "" keeps every item)'
                    ),
                    limit=integer("most items (default 100, 0 = all)", minimum=0),
                ),
            ]
        },
        errors=LSP_ERRORS,
        example={
            "textDocument": {"uri": "res://demo/main.gd"},
            "position": {"line": 9, "character": 4},
            "limit": 2,
        },
        answer={
            "items": [
                {"label": "print()", "kind": 3},
                {"label": "print_orphan_nodes()", "kind": 2},
            ],
            "total": 9,
            "truncated": True,
            "prefix": "pri",
            "isIncomplete": False,
        },
        notes="Godot answers every name in scope; the sidecar keeps those starting with "
        "the word being typed (or `prefix`), best matches first.",
    ),
    ("POST", "/lsp/hover"): _position(
        "hover",
        nullable(obj(contents=any_json(), range=ref("Range"))),
        {"contents": {"kind": "markdown", "value": "func add_numbers(a: int, b: int) -> int"}},
    ),
    ("POST", "/lsp/definition"): _position("definition", LOCATIONS, [LOCATION]),
    ("POST", "/lsp/declaration"): _position("declaration", LOCATIONS, [LOCATION]),
    ("POST", "/lsp/references"): _position("references", LOCATIONS, [LOCATION]),
    ("POST", "/lsp/signatureHelp"): _position(
        "signatureHelp",
        nullable(obj(signatures=arr(any_json()), activeSignature=integer())),
        {"signatures": [{"label": "func add_numbers(a: int, b: int) -> int"}]},
    ),
    ("POST", "/lsp/documentSymbol"): _lsp(
        nullable(arr(any_json("DocumentSymbol"))),
        body=DOC,
        errors=LSP_ERRORS,
        example={"textDocument": {"uri": "res://demo/main.gd"}},
        answer=[{"name": "add_numbers", "kind": 6, "detail": "func add_numbers(a: int, b: int)"}],
    ),
    **both(
        "/lsp/diagnostics",
        _lsp(
            obj(
                ("uri", "path", "diagnostics"),
                uri=string(),
                path=string(),
                open=boolean("some agent holds it open"),
                document_version=integer(),
                version=nullable(integer("document version the diagnostics are for")),
                stale=boolean("older than the document"),
                diagnostics=arr(ref("Diagnostic")),
            ),
            body=obj(
                uri=string("the file (or textDocument.uri in a POST)"),
                wait=number("seconds to wait for fresh diagnostics (≤ 60)"),
            ),
            errors=(400, 403, 404, 503, 504),
            example={"uri": "res://demo/main.gd"},
            answer={
                "uri": "file:///project/demo/main.gd",
                "path": "res://demo/main.gd",
                "open": False,
                "document_version": 3,
                "version": 3,
                "stale": False,
                "diagnostics": [],
            },
            notes="A file no one holds open is opened briefly to get Godot's diagnostics. "
            "Only `.gd` scripts: any other file is a 400 (on every /lsp endpoint).",
        ),
    ),
    ("POST", "/edit/applyChanges"): Operation(
        tag="edit",
        result=obj(
            ("path", "sha256", "created"),
            path=string(),
            uri=string(),
            sha256=string("hash of the new content"),
            previous_sha256=nullable(string()),
            created=boolean(),
            bytes=integer(),
            lsp=string("notified, not_a_script or not_connected"),
            version=integer(),
            diagnostics=nullable(arr(ref("Diagnostic"))),
            diagnostics_version=nullable(integer()),
        ),
        body=obj(
            ("uri",),
            uri=string("the file to write, inside the project"),
            text=string("the whole new content"),
            edits=arr(ref("TextEdit"), "or edits against the current content"),
            expected_sha256=nullable(string("the sha256 you last read; stale → 409")),
        ),
        errors=(400, 403, 409),
        example={
            "uri": "res://demo/extra.gd",
            "text": "extends Node\n",
            "expected_sha256": None,
        },
        answer={
            "path": "res://demo/extra.gd",
            "sha256": "3ad39db1…",
            "previous_sha256": None,
            "created": True,
            "bytes": 13,
            "lsp": "notified",
            "diagnostics": [],
        },
        notes="Atomic write; Godot's language server is told and its diagnostics returned. "
        "Any text file of the project may be written; for a file that is not a `.gd` script "
        "the language server is left out (`lsp`: `not_a_script`).",
    ),
    **both(
        "/edit/read",
        Operation(
            tag="edit",
            result=obj(
                ("uri", "text", "sha256", "line_count", "start_line", "end_line"),
                uri=string("res:// path"),
                text=string("the lines asked for (or the whole file), line ends as on disk"),
                sha256=string("of the whole file: pass it as applyChanges' expected_sha256"),
                line_count=integer("lines in the file (a final line end starts no new line)"),
                start_line=integer("first line in `text` (1-based)"),
                end_line=integer("last line in `text` (1-based, inclusive)"),
            ),
            body=obj(
                ("uri",),
                uri=string("the file, inside the project (any text file)"),
                start_line=integer("first line to return, from 1 (default 1)", minimum=1),
                end_line=integer(
                    "last line to return, inclusive (default and past the end: the last)",
                    minimum=1,
                ),
            ),
            errors=(400, 403, 404),
            example={"uri": "res://demo/main.gd", "start_line": 1, "end_line": 2},
            answer={
                "uri": "res://demo/main.gd",
                "text": "extends Node\n## Demo game that the tests launch under the debugger.\n",
                "sha256": "5f1c0b2e…",
                "line_count": 29,
                "start_line": 1,
                "end_line": 2,
            },
            notes="The file on disk (not an agent's unsaved LSP document), under the same "
            "path rules as applyChanges: outside the project or in `.godot/` is 403.",
        ),
    ),
}

# -- editor, meta and the rest -----------------------------------------------------------

HTML = {"type": "string", "contentMediaType": "text/html"}

OTHER: dict[tuple[str, str], Operation] = {
    ("GET", "/status"): Operation(
        tag="services",
        result=ref("Status"),
        answer=STATUS_EXAMPLE,
        flat=True,
        notes='The seed\'s shape: these fields sit at the top level beside `"status": "ok"`, '
        'with no `result` wrapper (`status["overall_ready"]`).',
    ),
    ("GET", "/health"): Operation(
        tag="services",
        result=obj(healthy={"const": True}),
        answer={"healthy": True},
    ),
    ("POST", "/execute/reload"): Operation(
        tag="edit",
        result=obj(
            rescanned=boolean(),
            scripts=arr(string(), "res:// paths recompiled"),
            removed=arr(string()),
            game_running=boolean(),
            game_reloaded=boolean(
                "the running game reloads them on its next frame (false while it is stopped: "
                "see game_reload)"
            ),
            game_reload=string(
                "what the game does: not_running, nothing_to_reload, next_frame, or "
                "pending_until_resume (stopped in the debugger: Godot reloads when it runs on)",
                enum=["not_running", "nothing_to_reload", "next_frame", "pending_until_resume"],
            ),
            errors=arr(obj(path=string(), message=string(), line=integer())),
            documents=arr(string(), "open LSP documents that took the new text"),
        ),
        body=obj(paths=arr(string(), "scripts to reload; default: every changed .gd")),
        errors=(400, 403, 502, 503, 504),
        example={"paths": ["res://demo/main.gd"]},
        answer={
            "rescanned": True,
            "scripts": ["res://demo/main.gd"],
            "removed": [],
            "game_running": False,
            "game_reloaded": False,
            "game_reload": "not_running",
            "errors": [],
            "documents": [],
        },
    ),
    ("GET", "/openapi.json"): Operation(
        tag="meta",
        result=obj(("openapi", "paths"), openapi=string(), paths=obj()),
        raw="application/json",
        notes="This document (OpenAPI 3.1), as served.",
    ),
    ("GET", "/"): Operation(
        tag="meta", result=HTML, raw="text/html", notes="The dashboard (same as /dashboard)."
    ),
    ("GET", "/dashboard"): Operation(
        tag="meta",
        result=HTML,
        raw="text/html",
        notes="Services, agents, debug events, diagnostics; polls /dashboard/state.",
    ),
    ("GET", "/dashboard/state"): Operation(
        tag="meta",
        result=obj(
            ("status", "events", "diagnostics", "mcp_sessions"),
            status=ref("Status"),
            events=ref("EventsPage"),
            breakpoints=obj(desc="res:// path → agent → lines"),
            diagnostics=arr(
                obj(path=string(), errors=integer(), warnings=integer(), other=integer())
            ),
            documents=arr(ref("Document")),
            mcp_sessions=arr(
                obj(
                    identity=string("the agent identity its tools act as"),
                    client=nullable(string("the MCP client's name and version")),
                    started_at=string(),
                    calls=integer("tool calls"),
                )
            ),
        ),
        body=obj(events=integer("how many recent debug events (default 30)", minimum=0)),
        example={"events": 30},
        notes="Everything the dashboard shows, in one read-only answer.",
    ),
}

MCP_BODY = obj(
    ("jsonrpc",),
    jsonrpc={"const": "2.0"},
    id=any_json(),
    method=string("initialize, tools/list, tools/call, ..."),
    params=any_json(),
)
MCP_NOTES = (
    "Model Context Protocol, Streamable HTTP transport (the official `mcp` SDK). "
    "Answers are JSON-RPC, not the bridge's envelope; the Host/Origin/token checks "
    "apply. Each MCP session is an agent of its own (`mcp-<session id>`) unless the "
    "client sends `X-Agent-Id`. Answers are plain JSON; there is no server-to-client "
    "stream (GET is 405): the server never speaks first. A session ends with its DELETE, "
    "after 5 minutes idle (GODOT_BRIDGE_MCP_IDLE) or, when 100 are open, as the least "
    "recently used idle one; its id then answers 404 and an `mcp-` agent's breakpoints go."
)

MCP: dict[tuple[str, str], Operation] = {
    ("POST", "/mcp"): Operation(
        tag="mcp",
        result=any_json("a JSON-RPC response (or an SSE stream of them)"),
        body=MCP_BODY,
        raw="application/json",
        example={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        notes=MCP_NOTES,
    ),
    ("DELETE", "/mcp"): Operation(
        tag="mcp",
        result=any_json(),
        raw="application/json",
        notes="End the MCP session named by `Mcp-Session-Id`.",
    ),
}

SCHEMAS: dict[tuple[str, str], Operation] = {**OTHER, **DEBUG, **LSP, **MCP}

TAGS: dict[str, str] = {
    "services": "The bridge and its connections to Godot",
    "debug": "Godot's debug adapter (DAP), shared by every agent",
    "lsp": "Godot's language server (LSP), shared documents",
    "edit": "Files and the editor",
    "mcp": "Model Context Protocol",
    "meta": "Discovery and the dashboard",
}

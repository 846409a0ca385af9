"""`gdbridge` (or `python -m sidecar.client.cli`): the bridge from a shell.

    gdbridge status
    gdbridge break res://demo/main.gd:14
    gdbridge launch --wait stopped
    gdbridge stack
    gdbridge eval counter
    gdbridge events --follow
    gdbridge complete res://demo/main.gd:10:5
    gdbridge read res://demo/main.gd:1-20
    gdbridge edit res://demo/main.gd --if-unchanged < main.gd
    gdbridge screenshot -o game.png
    gdbridge tree --path Main --depth 2
    gdbridge input --action ui_right --frames 30 -o after.png
    gdbridge game-eval "position.x" --path Main/Player
    gdbridge set Main/Player position '{"x": 100, "y": 200}'

Positions on the command line and in what it prints are 1-based `FILE:LINE[:COLUMN]`, as
editors and compilers print them, and files are always printed as `res://` paths. An empty
answer prints one line saying so (`no result`), never nothing. `--json` (before or after
the command) prints the answer's `result` as JSON instead (one line per event with
`events --follow`). Exit status: 0 done, 1 the bridge refused (the error on stderr), 2 bad
command line, 3 no bridge, 141 the reader of the output went away (`| head`).

The bridge is `--url`, else GODOT_BRIDGE_URL, else http://127.0.0.1:8080; you are
`--agent`, else GODOT_BRIDGE_AGENT, else "gdbridge", so that breakpoints set by one command
are yours in the next.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.client.client import (
    BridgeClient,
    BridgeError,
    BridgeHTTPError,
    BridgeUnreachable,
    DebugEvent,
    given,
)

DEFAULT_AGENT = "gdbridge"
BACKLOG = 10  # events --follow starts with this many past events, as tail -f does
NO_RESULT = "no result"
STATE_ENV = "GDBRIDGE_STATE"  # where `read` remembers the sha256 `edit --if-unchanged` uses
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
EXIT_PIPE = 128 + getattr(signal, "SIGPIPE", 13)  # what a shell reports for SIGPIPE


class CliError(BridgeError):
    """A failure found by the CLI itself (no event in time, no sha256 remembered...)."""

    def __init__(self, message: str, code: str = "cli_error") -> None:
        super().__init__(message)
        self.code = code


# -- locations on the command line -------------------------------------------------------


def split_location(text: str, parts: int) -> tuple[str, list[int]]:
    """`res://a.gd:10:5` → ("res://a.gd", [10, 5]) with `parts` numbers, 1-based."""
    pieces = text.rsplit(":", parts)
    if len(pieces) != parts + 1 or not all(p.isdigit() and int(p) > 0 for p in pieces[1:]):
        shape = "FILE:LINE" + (":COLUMN" if parts == 2 else "")
        raise argparse.ArgumentTypeError(f"{text!r} is not {shape} (1-based numbers)")
    return pieces[0], [int(p) for p in pieces[1:]]


def file_line(text: str) -> tuple[str, int]:
    path, (line,) = split_location(text, 1)
    return path, line


def file_position(text: str) -> tuple[str, int, int]:
    """FILE:LINE:COLUMN (1-based) → path and the LSP's 0-based line and character."""
    path, (line, column) = split_location(text, 2)
    return path, line - 1, column - 1


_LINES = re.compile(r"(\d+)(?:-(\d+))?")


def file_lines(text: str) -> tuple[str, int | None, int | None]:
    """FILE[:START[-END]] (1-based, inclusive) → path, start, end (None: not given)."""
    path, sep, tail = text.rpartition(":")
    found = _LINES.fullmatch(tail) if sep else None
    if found is None:  # no range; `C:/x.gd` or `res://x.gd` stay whole
        return text, None, None
    start = int(found.group(1))
    end = int(found.group(2)) if found.group(2) else None
    if start < 1 or (end is not None and end < start - 1):
        raise argparse.ArgumentTypeError(f"{text!r}: lines are 1-based, START-END with END ≥ START")
    return path, start, end


# -- paths as res:// ---------------------------------------------------------------------


@dataclass
class Paths:
    """Prints every file the same way, `res://...`, whatever form the bridge answered in
    (Godot's LSP says file://, its debugger absolute paths). The project root is asked of
    `/status` once, and only when an answer needs it."""

    client: BridgeClient
    _roots: list[str] | None = None

    def res(self, path: str) -> str:
        if path.startswith("res://"):
            return path
        local = _local_path(path)
        if not os.path.isabs(local) and not re.match(r"[A-Za-z]:[\\/]", local):
            rel = local.replace("\\", "/")
            while rel.startswith("./"):
                rel = rel[2:]
            return "res://" + rel
        for root in self.roots():
            for candidate in {local, os.path.realpath(local)}:
                candidate = candidate.replace("\\", "/")
                if candidate.startswith(root + "/"):
                    return "res://" + candidate[len(root) + 1 :]
        return local  # outside the project: the real path is the truth

    def roots(self) -> list[str]:
        if self._roots is None:
            self._roots = []
            try:
                project = str(self.client.status().get("sidecar", {}).get("project") or "")
            except BridgeError:
                project = ""
            if project:
                root = project.replace("\\", "/").rstrip("/")
                self._roots = sorted({root, os.path.realpath(root).replace("\\", "/")})
        return self._roots


def _local_path(path: str) -> str:
    """A file:// URI as a local path (`file:///C:/x` → `C:/x`); other paths unchanged."""
    if not path.startswith("file://"):
        return path
    local = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
    return local[1:] if re.match(r"/[A-Za-z]:/", local) else local


def location(path: str, line: int | str | None = None, column: int | None = None) -> str:
    """`res://a.gd:14:5`: the one way files and places are printed (1-based)."""
    text = path
    if line is not None:
        text += f":{line}"
        if column:
            text += f":{column}"
    return text


def lsp_location(paths: Paths, uri: str, pos: dict[str, Any]) -> str:
    """An LSP position (0-based line and character) printed 1-based."""
    return location(paths.res(uri), int(pos["line"]) + 1, int(pos["character"]) + 1)


# -- what `read` remembers for `edit --if-unchanged` ------------------------------------


def state_file() -> Path:
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "gdbridge" / "read.json"


def _state_key(client: BridgeClient, res_path: str) -> str:
    return f"{client.url} {client.agent} {res_path}"


def _load_state() -> dict[str, str]:
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_sha(client: BridgeClient, res_path: str, sha256: str) -> None:
    """Keep the sha256 of the file as this agent last saw it (best effort)."""
    state = _load_state()
    state[_state_key(client, res_path)] = sha256
    path = state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        print(f"gdbridge: cannot remember the sha256 in {path}: {err}", file=sys.stderr)


def remembered_sha(client: BridgeClient, res_path: str) -> str | None:
    return _load_state().get(_state_key(client, res_path))


# -- commands ----------------------------------------------------------------------------


@dataclass
class Ctx:
    client: BridgeClient
    args: argparse.Namespace
    paths: Paths = field(init=False)

    def __post_init__(self) -> None:
        self.paths = Paths(self.client)


Command = Callable[[Ctx], Any]
PRINTED = object()  # what a command returns that has printed its output itself


def cmd_status(x: Ctx) -> Any:
    return x.client.status()


def cmd_health(x: Ctx) -> Any:
    return x.client.get("/health")


def cmd_connect(x: Ctx) -> Any:
    return x.client.connect(x.args.service)


def cmd_disconnect(x: Ctx) -> Any:
    a = x.args
    return x.client.disconnect(a.service, a.force, a.reason, a.resume_after)


def cmd_lease(x: Ctx) -> Any:
    a = x.args
    if a.action == "take":
        return x.client.take_lease(a.ttl, a.force, a.reason)
    if a.action == "release":
        return x.client.release_lease()
    return x.client.control_lease()


def cmd_audit(x: Ctx) -> Any:
    a = x.args
    return x.client.audit(a.since, a.agent_filter, a.kind, a.limit, a.wait)


def cmd_break(x: Ctx) -> Any:
    c, out = x.client, []
    for path, line in x.args.locations:
        a = x.args
        bps = (
            c.remove_breakpoint(path, line)
            if a.delete
            else c.add_breakpoint(
                path,
                line,
                condition=a.condition,
                hit_condition=a.hit_condition,
                log_message=a.log_message,
            )
        )
        out.append({"path": path, "breakpoints": bps})
    return out


def cmd_clear(x: Ctx) -> Any:
    if not x.args.files:
        return x.client.clear_breakpoints()
    cleared: list[Any] = []
    for path in x.args.files:
        cleared += x.client.clear_breakpoints(path, everyone=x.args.everyone).get("cleared", [])
    return {"cleared": cleared}


def cmd_breakpoints(x: Ctx) -> Any:
    return x.client.breakpoints(everyone=x.args.all)


def _maybe_wait(x: Ctx, since: int, result: Any) -> Any:
    """The action's result, and with --wait the event that followed it."""
    if not x.args.wait:
        return result
    event = x.client.wait_for(x.args.wait, since, x.args.wait_timeout)
    if event is None:
        raise CliError(f"no '{x.args.wait}' event within {x.args.wait_timeout:g} s", "timeout")
    return {"result": result, "event": event}


def cmd_launch(x: Ctx) -> Any:
    since = x.client.events()["latest"] if x.args.wait else 0
    return _maybe_wait(x, since, x.client.launch(x.args.scene, no_debug=x.args.no_debug))


def _action(method: Callable[[BridgeClient], Any]) -> Command:
    def run(x: Ctx) -> Any:
        since = x.client.events()["latest"] if x.args.wait else 0
        return _maybe_wait(x, since, method(x.client))

    return run


def cmd_threads(x: Ctx) -> Any:
    return x.client.threads()


def cmd_stack(x: Ctx) -> Any:
    return x.client.stack_trace(x.args.levels)


def cmd_vars(x: Ctx) -> Any:
    c = x.client
    if x.args.ref is not None:
        return c.variables(x.args.ref)
    scopes = c.scopes(**given(frame_id=x.args.frame))["scopes"]
    return {
        s["name"]: c.variables(s["variablesReference"])["variables"]
        for s in scopes
        if s["name"] != "Globals"
    }


def cmd_eval(x: Ctx) -> Any:
    return x.client.evaluate(x.args.expression, x.args.frame)


def cmd_events(x: Ctx) -> Any:
    c, a = x.client, x.args
    if not a.follow:
        return c.events(a.since, limit=a.limit)
    since = a.since if a.since is not None else max(c.events()["latest"] - BACKLOG, 0)
    for event in c.follow(since):
        emit(json.dumps(event) if a.json else event_text(event, x.paths))
        if a.until and event["event"] == a.until:
            break
    return PRINTED


def cmd_complete(x: Ctx) -> Any:
    path, line, character = x.args.position
    return x.client.completion(path, line, character, x.args.prefix, x.args.limit)


def _at(method: Callable[..., Any]) -> Command:
    def run(x: Ctx) -> Any:
        return method(x.client, *x.args.position)

    return run


def cmd_symbols(x: Ctx) -> Any:
    return x.client.document_symbols(x.args.file)


def cmd_diagnostics(x: Ctx) -> Any:
    return x.client.diagnostics(x.args.file, x.args.wait)


def _document(method: Callable[[BridgeClient, str], Any]) -> Command:
    def run(x: Ctx) -> Any:
        return method(x.client, x.args.file)

    return run


def cmd_read(x: Ctx) -> Any:
    path, start, end = x.args.range
    answer = x.client.read_file(path, start, end)
    remember_sha(x.client, x.paths.res(str(answer.get("uri", path))), answer["sha256"])
    return answer


def cmd_edit(x: Ctx) -> Any:
    a = x.args
    path, start, end = a.range
    text = _new_text(a)
    expected = a.expect_sha256
    if a.if_unchanged:
        expected = remembered_sha(x.client, x.paths.res(path))
        if expected is None:
            raise CliError(
                f"no sha256 remembered for {x.paths.res(path)}: `gdbridge read` it first "
                "(or give --expect-sha256)",
                code="no_sha256",
            )
    if start is None or end is None:  # _check_usage: both or neither
        answer = x.client.apply_changes(path, text=text, expected_sha256=expected)
    else:
        span = {"start": {"line": start - 1, "character": 0}, "end": {"line": end, "character": 0}}
        edits = [{"range": span, "newText": text}]
        answer = x.client.apply_changes(path, edits=edits, expected_sha256=expected)
    remember_sha(x.client, x.paths.res(str(answer.get("path", path))), answer["sha256"])
    return answer


def _new_text(a: argparse.Namespace) -> str:
    if a.text is not None:
        return str(a.text)
    if a.text_file and a.text_file != "-":
        return Path(a.text_file).read_text(encoding="utf-8")
    if sys.stdin.isatty():
        raise CliError("give the new text: --text, --text-file F, or on stdin", "missing_field")
    return sys.stdin.read()


def cmd_reload(x: Ctx) -> Any:
    return x.client.reload(x.args.paths or None)


def cmd_tree(x: Ctx) -> Any:
    return x.client.game_tree(x.args.path, x.args.depth)


def cmd_node(x: Ctx) -> Any:
    a = x.args
    names = a.properties.split(",") if a.properties else None
    return x.client.game_node(a.path, a.id, names)


def cmd_errors(x: Ctx) -> Any:
    a = x.args
    return x.client.game_errors(a.since, a.wait, a.limit, a.warnings)


def cmd_monitors(x: Ctx) -> Any:
    return x.client.game_monitors(x.args.names, x.args.history)


def cmd_clock(x: Ctx) -> Any:
    return x.client.game_clock()


def cmd_suspend(x: Ctx) -> Any:
    return x.client.game_suspend()


def cmd_resume(x: Ctx) -> Any:
    return x.client.game_resume()


def cmd_advance(x: Ctx) -> Any:
    a = x.args
    until = _until(a.until) if a.until else None
    return x.client.game_advance(a.frames, until, a.timeout)


def cmd_time_scale(x: Ctx) -> Any:
    return x.client.game_time_scale(x.args.scale)


COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def _until(text: str) -> dict[str, Any]:
    """`Main/Mover position.x >= 100` → {path, property, op, value} (value read as JSON
    when it is JSON: 100, true, "text"; else as the text itself); `Main/Mover <anything
    else>` → {path, expression}: a Godot Expression on that node."""
    parts = text.split(None, 3)
    if len(parts) < 2:
        raise CliError(
            "--until takes 'PATH PROPERTY OP VALUE' (Main/Mover position.x >= 100) or "
            f"'PATH EXPRESSION' (Main/Mover frames % 10 == 0), not {text!r}",
            "invalid_field",
        )
    if len(parts) == 4 and parts[2] in COMPARISONS:
        path, prop, op, raw = parts
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw if len(raw.split()) == 1 else None  # more words: an expression
        if value is not None or raw == "null":
            return {"path": path, "property": prop, "op": op, "value": value}
    path, expression = text.split(None, 1)
    return {"path": path, "expression": expression.strip()}


def cmd_screenshot(x: Ctx) -> Any:
    """The screenshot's size; with -o the PNG written to that file as well."""
    shot = x.client.game_screenshot(x.args.max_width)
    png = base64.b64decode(shot.pop("data"))
    if x.args.output:
        out = Path(x.args.output)
        (sys.stdout.buffer.write(png) if x.args.output == "-" else out.write_bytes(png))
        shot["file"] = x.args.output
    return shot


def cmd_input(x: Ctx) -> Any:
    """Steps from a JSON list, or one step from --action/--key/--text (with --frames)."""
    a = x.args
    steps: list[dict[str, Any]] = json.loads(a.steps) if a.steps else []
    held = {"frames": a.frames} if a.frames is not None else {}
    if a.action:
        steps.append({"type": "action", "action": a.action, **held})
    if a.key:
        steps.append({"type": "key", "key": a.key, **held})
    if a.text:
        steps.append({"type": "text", "text": a.text})
    result = x.client.game_input(steps, True if a.output else None)
    shot = result.get("screenshot")
    if a.output and shot:
        png = base64.b64decode(shot.pop("data"))
        (sys.stdout.buffer.write(png) if a.output == "-" else Path(a.output).write_bytes(png))
        shot["file"] = a.output
    return result


def cmd_game_eval(x: Ctx) -> Any:
    return x.client.game_evaluate(x.args.expression, x.args.path, x.args.id)


def cmd_set(x: Ctx) -> Any:
    a = x.args
    try:
        value = json.loads(a.value)
    except ValueError:
        value = a.value  # plain text: a string (a name, "#ff0000")
    return x.client.game_set_property(a.property, value, a.path)


def cmd_call(x: Ctx) -> Any:
    body = json.loads(x.args.body) if x.args.body else None
    return x.client.request(x.args.method.upper(), x.args.path, body)


# -- human output ------------------------------------------------------------------------


def emit(text: str) -> None:
    print(text, flush=True)


def human(command: str, result: Any, x: Ctx) -> str:
    """The text form of `result` for people; indented JSON for what has none."""
    render = RENDER.get(command)
    if result is None or result == []:
        return NO_RESULT
    if render is not None:
        try:
            return render(result, x)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError):
            pass  # a shape this CLI does not know yet: show it whole rather than fail
    return json.dumps(result, indent=2, ensure_ascii=False)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return ",".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def _pairs(body: dict[str, Any], skip: Iterable[str], paths: Paths) -> str:
    """`key=value ...` of a small answer, paths as res://."""
    out = []
    for key, value in body.items():
        if key in skip or value is None or value == [] or value == {}:
            continue
        if key in ("path", "uri", "file") and isinstance(value, str):
            value = paths.res(value)
        out.append(f"{key}={_scalar(value)}")
    return " ".join(out)


def _service_text(name: str, svc: dict[str, Any]) -> str:
    """`language_server: disconnected on port 6005 by alice (restarting it)`."""
    state = str(svc["state"])
    port = f" on port {svc['port']}" if svc.get("port") else ""
    by = f" by {svc['down_by']}" if svc.get("down_by") else ""
    why: list[str] = []
    for key in ("message", "down_reason", "last_error"):
        text = str(svc.get(key) or "")
        if text and text != state and not any(text in w for w in why):
            why.append(text)
    return f"{name}: {state}{port}{by}" + (f" ({'; '.join(why)})" if why else "")


def _status_text(s: Any, x: Ctx) -> str:
    lines = [f"ready: {_scalar(bool(s['overall_ready']))}"]
    lines += [_service_text(k, s[k]) for k in ("debug_adapter", "language_server")]
    side = s.get("sidecar") or {}
    if side.get("project"):
        lines.append(f"project: {side['project']}")
    clients = s["clients"]
    lines.append(f"agents: {clients['active']} of {clients['max']}")
    lines += [
        f"  {a['identity']} (client {a['id']}, {a['requests']} requests, since {a['connected_at']})"
        for a in clients.get("agents", [])
    ]
    return "\n".join(lines)


def _services_text(r: Any, x: Ctx) -> str:
    lines = [_service_text(k, v) for k, v in r.items() if isinstance(v, dict) and "state" in v]
    rest = _pairs({k: v for k, v in r.items() if not isinstance(v, dict)}, (), x.paths)
    return "\n".join([*lines, rest] if rest else lines) or NO_RESULT


def _breakpoints_text(items: Any, x: Ctx) -> str:
    lines = []
    for item in items:
        path = x.paths.res(item["path"])
        for bp in item["breakpoints"]:
            mark = "verified" if bp.get("verified") else f"not verified: {bp.get('message', '')}"
            lines.append(f"{location(path, bp['line'])} {mark}")
        if not item["breakpoints"]:
            lines.append(f"{path}: no breakpoints of yours")
    return "\n".join(lines)


def _cleared_text(r: Any, x: Ctx) -> str:
    lines = [
        f"{location(x.paths.res(c['path']), line)} cleared ({c.get('agent', '?')})"
        for c in r["cleared"]
        for line in c.get("lines", [])
    ]
    return "\n".join(lines) or "no breakpoints to clear"


def _all_breakpoints_text(r: Any, x: Ctx) -> str:
    lines = [
        f"{location(x.paths.res(path), bp['line'])} ({agent})"
        for path, agents in r["breakpoints"].items()
        for agent, bps in agents.items()
        for bp in bps
    ]
    return "\n".join(lines) or f"no breakpoints ({r['agent']})"


def event_text(event: DebugEvent | dict[str, Any], paths: Paths) -> str:
    """`#7 stopped breakpoint res://a.gd:14 hit_by=alice`: number, event, what it says."""
    body = event.get("body") or {}
    name = event["event"]
    if not isinstance(body, dict):
        detail = _scalar(body)
    elif name == "output":
        detail = str(body.get("output", "")).rstrip()
    elif name == "stopped":
        detail = _stopped_text(body, paths)
    elif name == "breakpoints_cleared":
        detail = _cleared_event_text(body, paths)
    else:
        detail = _pairs(body, (), paths)
    return f"#{event['seq']} {name} {detail}".rstrip()


def _stopped_text(body: dict[str, Any], paths: Paths) -> str:
    """The reason, the place when the bridge knows it, then whatever else it says."""
    source: dict[str, Any] = body["source"] if isinstance(body.get("source"), dict) else {}
    where = ""
    if source.get("path") and body.get("line"):
        where = location(paths.res(str(source["path"])), body["line"])
    skip = ("reason", "threadId", "allThreadsStopped", "preserveFocusHint", "source", "line")
    parts = [str(body.get("reason", "")), where, _pairs(body, skip, paths)]
    return " ".join(p for p in parts if p)


def _cleared_event_text(body: dict[str, Any], paths: Paths) -> str:
    """`by=alice res://a.gd:14,20 (alice)` and why, when the bridge cleared them itself."""
    cleared = [
        f"{location(paths.res(str(c['path'])), ','.join(map(str, c.get('lines', []))))} "
        f"({c.get('agent', '?')})"
        for c in body.get("cleared") or []
        if isinstance(c, dict) and c.get("path")
    ]
    head = _pairs(body, ("cleared", "path", "everyone", "reason"), paths)
    tail = f"({body['reason']})" if body.get("reason") else ""
    everyone = "everyone's:" if body.get("everyone") else ""
    return " ".join(p for p in (head, everyone, "; ".join(cleared), tail) if p)


def _action_text(command: str) -> Callable[[Any, Ctx], str]:
    def render(r: Any, x: Ctx) -> str:
        waited = isinstance(r, dict) and "event" in r and "result" in r
        result = r["result"] if waited else r
        extra = _pairs(result or {}, ("allThreadsContinued",), x.paths)
        lines = [f"{command}: ok" + (f" {extra}" if extra else "")]
        if waited:
            lines.append(event_text(r["event"], x.paths))
        return "\n".join(lines)

    return render


def _threads_text(r: Any, x: Ctx) -> str:
    return "\n".join(f"#{t['id']} {t.get('name', '')}".rstrip() for t in r["threads"]) or NO_RESULT


def _frame_location(frame: dict[str, Any], x: Ctx) -> str:
    source = frame.get("source") or {}
    path = source.get("path") or source.get("name") or "?"
    return location(x.paths.res(str(path)), frame.get("line"), frame.get("column") or None)


def _stack_text(r: Any, x: Ctx) -> str:
    lines = [f"#{f['id']} {f['name']} {_frame_location(f, x)}" for f in r["stackFrames"]]
    return "\n".join(lines) or "no frames"


def _variable_text(v: dict[str, Any]) -> str:
    kind = f": {v['type']}" if v.get("type") else ""
    ref = f" (ref {v['variablesReference']})" if v.get("variablesReference") else ""
    return f"  {v['name']}{kind} = {v['value']}{ref}"


def _vars_text(r: Any, x: Ctx) -> str:
    scopes = r if "variables" not in r else {"variables": r["variables"]}
    lines = []
    for scope, variables in scopes.items():
        lines.append(f"{scope}:" if variables else f"{scope}: none")
        lines += [_variable_text(v) for v in variables]
    return "\n".join(lines) or NO_RESULT


def _eval_text(r: Any, x: Ctx) -> str:
    ref = f" (ref {r['variablesReference']})" if r.get("variablesReference") else ""
    return f"{r['result']}{ref}"


def _events_text(r: Any, x: Ctx) -> str:
    lines = [event_text(e, x.paths) for e in r["events"]]
    return "\n".join(lines) or f"no events (latest #{r['latest']})"


def _completion_text(r: Any, x: Ctx) -> str:
    items = r["items"] if isinstance(r, dict) else r or []
    more = (
        f"\n… {r['total'] - len(items)} more" if isinstance(r, dict) and r.get("truncated") else ""
    )
    return "\n".join(str(i["label"]) for i in items) + more if items else NO_RESULT


# Godot's hover says "Defined in [res://a.gd](file:///home/me/game/a.gd)": the text will do.
_FILE_LINK = re.compile(r"\[([^\]]*)\]\(file://[^)]*\)")


def _markup(content: Any) -> str:
    """MarkupContent, a MarkedString or a list of MarkedStrings, as text."""
    if isinstance(content, list):
        return "\n\n".join(t for t in (_markup(c) for c in content) if t)
    text = content.get("value", "") if isinstance(content, dict) else content or ""
    return _FILE_LINK.sub(r"\1", str(text)).strip()


def _hover_text(r: Any, x: Ctx) -> str:
    return (_markup(r.get("contents")) if r else "") or NO_RESULT


def _locations_text(r: Any, x: Ctx) -> str:
    items = r if isinstance(r, list) else [r] if r else []
    lines = []
    for loc in items:
        uri = loc.get("uri") or loc["targetUri"]  # Location or LocationLink
        rng = loc.get("range") or loc.get("targetSelectionRange") or loc["targetRange"]
        lines.append(lsp_location(x.paths, uri, rng["start"]))
    return "\n".join(lines) or NO_RESULT


def _signature_text(r: Any, x: Ctx) -> str:
    signatures = (r or {}).get("signatures") or []
    return "\n".join(str(s["label"]) for s in signatures) or NO_RESULT


SYMBOL_KINDS = (
    "file module namespace package class method property field constructor enum interface "
    "function variable constant string number boolean array object key null enum_member "
    "struct event operator type_parameter"
).split()


def _symbol_lines(symbols: list[Any], path: str, depth: int, x: Ctx) -> list[str]:
    lines = []
    for s in symbols:
        kind = s.get("kind", 0)
        name = SYMBOL_KINDS[kind - 1] if 0 < kind <= len(SYMBOL_KINDS) else "symbol"
        if "location" in s:  # SymbolInformation: flat, with its own uri
            where = lsp_location(x.paths, s["location"]["uri"], s["location"]["range"]["start"])
        else:
            rng = s.get("selectionRange") or s["range"]
            where = lsp_location(x.paths, path, rng["start"])
        lines.append(f"{where} {'  ' * depth}{name} {s['name']}")
        lines += _symbol_lines(s.get("children") or [], path, depth + 1, x)
    return lines


def _symbols_text(r: Any, x: Ctx) -> str:
    path = x.paths.res(x.args.file)
    return "\n".join(_symbol_lines(r or [], path, 0, x)) or NO_RESULT


SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}


def _diagnostic_lines(path: str, diagnostics: list[Any], x: Ctx) -> list[str]:
    return [
        f"{lsp_location(x.paths, path, d['range']['start'])}: "
        f"{SEVERITY.get(d.get('severity'), 'note')}: {d['message']}"
        for d in diagnostics
    ]


def _diagnostics_text(r: Any, x: Ctx) -> str:
    path = x.paths.res(r.get("path") or r["uri"])
    stale = " (stale)" if r.get("stale") else ""
    lines = _diagnostic_lines(path, r["diagnostics"], x)
    return "\n".join(lines) + stale if lines else f"{path}: no diagnostics{stale}"


DONE = {"open": "opened", "save": "saved", "close": "closed"}


def _document_text(r: Any, x: Ctx) -> str:
    """`res://a.gd: opened, version 1, open by alice ×1` for open, save and close."""
    parts = [f"{x.paths.res(r.get('path') or r['uri'])}: {DONE[x.args.command]}"]
    if r.get("version") is not None:
        parts.append(f"version {r['version']}")
    holders = ", ".join(f"{agent} ×{n}" for agent, n in (r.get("open_by") or {}).items())
    if holders:
        parts.append(f"open by {holders}")
    if r.get("closed_in_godot"):
        parts.append("closed in Godot")
    return ", ".join(parts)


def _read_text(r: Any, x: Ctx) -> str:
    path = x.paths.res(r["uri"])
    span = location(path, r["start_line"]) + f"-{r['end_line']}"
    head = f"{span} (of {r['line_count']} lines) sha256 {r['sha256']}"
    body = [f"{n:>6}\t{t}" for n, t in enumerate(str(r["text"]).splitlines(), r["start_line"])]
    return "\n".join([head, *body])


def _edit_text(r: Any, x: Ctx) -> str:
    path = x.paths.res(r["path"])
    what = "created" if r.get("created") else "written"
    lines = [f"{path}: {what}, {r.get('bytes', '?')} bytes, sha256 {r['sha256']}"]
    if r.get("lsp") not in (None, "notified"):
        lines.append(f"lsp: {r['lsp']}")
    if "diagnostics" in r:
        found = _diagnostic_lines(path, r["diagnostics"] or [], x)
        lines += found or [f"{path}: no diagnostics"]
    return "\n".join(lines)


def _reload_text(r: Any, x: Ctx) -> str:
    lines = [f"{x.paths.res(p)} reloaded" for p in r.get("scripts", [])]
    lines += [f"{x.paths.res(p)} removed" for p in r.get("removed", [])]
    lines = lines or ["no scripts reloaded"]
    lines += [f"error: {_scalar(e)}" for e in r.get("errors", [])]
    rest = _pairs(r, ("scripts", "removed", "errors", "documents", "rescanned"), x.paths)
    return "\n".join([*lines, rest] if rest else lines)


def _tree_lines(node: dict[str, Any], depth: int) -> list[str]:
    kind = node.get("class") or node.get("script") or "?"
    more = f" (+{node['truncated']} below)" if node.get("truncated") else ""
    lines = ["  " * depth + f"{node['name']}: {kind} #{node['id']}{more}"]
    for child in node.get("children", []):
        lines += _tree_lines(child, depth + 1)
    return lines


def _tree_text(r: Any, x: Ctx) -> str:
    lines = _tree_lines(r["root"], 0)
    return "\n".join([*lines, f"{r['node_count']} nodes in the game"])


def _node_text(r: Any, x: Ctx) -> str:
    script = f" ({r['script']})" if r.get("script") else ""
    lines = [f"{r.get('path') or '#' + r['id']}: {r['class']}{script}"]
    for section in r["sections"]:
        if section.get("category"):
            lines.append(f"[{section['category']}]")
        for name, value in section["properties"].items():
            lines.append(f"  {name} = {json.dumps(value['value'], ensure_ascii=False)}")
    return "\n".join(lines)


def _game_errors_text(r: Any, x: Ctx) -> str:
    lines = []
    for e in r["errors"]:
        # A project script is already res://; an engine check names Godot's C++ source
        # (`scene/main/node.cpp`), which no res:// path would be true of.
        where = location(e["file"], e.get("line")) if e.get("file") else "?"
        kind = "warning" if e.get("is_warning") else "error"
        lines.append(f"#{e['seq']} {where}: {kind}: {e['message']}")
    return "\n".join(lines) or "no errors"


def _monitors_text(r: Any, x: Ctx) -> str:
    values = r["values"]
    return "\n".join(f"{k} = {_scalar(v)}" for k, v in values.items()) or "no monitors yet"


def _screenshot_text(r: Any, x: Ctx) -> str:
    size = f"{r['width']}x{r['height']} PNG, {r['png_bytes']} bytes"
    if r.get("file") == "-":
        return ""
    where = f"{r['file']}: " if r.get("file") else ""
    hint = "" if r.get("file") else " (-o FILE saves it)"
    return f"{where}{size} of the game's {r['game_width']}x{r['game_height']} window{hint}"


def _lease_text(r: Any, x: Ctx) -> str:
    if "released" in r:
        return "released" if r["released"] else "nobody held the lease"
    lease = r.get("lease", r) if "you" in r else r
    if not lease:
        return "no lease: control is open to every agent"
    what = f" ({r['action']})" if r.get("action") else ""
    return (
        f"held by {lease['holder']}{what} until {lease['expires_at']} "
        f"({lease['expires_in_s']:.0f} s left)"
    )


def _audit_text(r: Any, x: Ctx) -> str:
    lines = []
    for rec in r["records"]:
        out = rec["outcome"]
        verdict = "ok" if out.get("ok") else f"{out.get('status', '')} {out.get('code', '')}"
        at = time.strftime("%H:%M:%S", time.localtime(rec["time"]))
        lines.append(f"#{rec['seq']} {at} {rec['agent']} {rec['operation']}: {verdict.strip()}")
    return "\n".join(lines) or f"no records (latest #{r['latest']})"


def _clock_text(r: Any, x: Ctx) -> str:
    if not r.get("running"):
        return "no game running"
    state = "suspended" if r["suspended"] else "running"
    steps = "" if r.get("can_advance", True) else " (headless: cannot advance)"
    return (
        f"game {r['game']}: {state}, time scale {_scalar(r['time_scale'])}, "
        f"{r['frames_advanced']} frames advanced{steps}"
    )


def _advance_text(r: Any, x: Ctx) -> str:
    pace = f", {r['ms_per_frame']} ms a frame" if r.get("ms_per_frame") else ""
    lines = [f"advanced {r['frames']} of {r['requested']} frames ({r['reason']}){pace}"]
    for name, value in (r.get("values") or {}).items():
        lines.append(f"  {name} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def _input_text(r: Any, x: Ctx) -> str:
    text = f"{r['steps']} steps done in {r['frames']} frames ({r['ms']} ms)"
    shot = r.get("screenshot")
    if shot:
        text += "\n" + _screenshot_text(shot, x)
    return text


def _game_eval_text(r: Any, x: Ctx) -> str:
    return f"{json.dumps(r['value'], ensure_ascii=False)} ({r['type']})"


def _set_text(r: Any, x: Ctx) -> str:
    old, new = (json.dumps(r[k]["value"], ensure_ascii=False) for k in ("old", "new"))
    return f"{r['path']}.{r['property']}: {old} -> {new}"


def _health_text(r: Any, x: Ctx) -> str:
    return "healthy" if r.get("healthy") else "not healthy"


RENDER: dict[str, Callable[[Any, Ctx], str]] = {
    "status": _status_text,
    "health": _health_text,
    "connect": _services_text,
    "disconnect": _services_text,
    "break": _breakpoints_text,
    "clear": _cleared_text,
    "breakpoints": _all_breakpoints_text,
    "threads": _threads_text,
    "stack": _stack_text,
    "vars": _vars_text,
    "eval": _eval_text,
    "events": _events_text,
    "complete": _completion_text,
    "hover": _hover_text,
    "definition": _locations_text,
    "declaration": _locations_text,
    "refs": _locations_text,
    "signature": _signature_text,
    "symbols": _symbols_text,
    "diagnostics": _diagnostics_text,
    "open": _document_text,
    "save": _document_text,
    "close": _document_text,
    "read": _read_text,
    "edit": _edit_text,
    "reload": _reload_text,
    "tree": _tree_text,
    "node": _node_text,
    "errors": _game_errors_text,
    "monitors": _monitors_text,
    "screenshot": _screenshot_text,
    "lease": _lease_text,
    "audit": _audit_text,
    "clock": _clock_text,
    "suspend": _clock_text,
    "resume": _clock_text,
    "time-scale": _clock_text,
    "advance": _advance_text,
    "input": _input_text,
    "game-eval": _game_eval_text,
    "set": _set_text,
}
ACTIONS: dict[str, Callable[[BridgeClient], Any]] = {
    "continue": BridgeClient.continue_,
    "next": BridgeClient.next,
    "step-in": BridgeClient.step_in,
    "step-out": BridgeClient.step_out,
    "pause": BridgeClient.pause,
    "terminate": BridgeClient.terminate,
}
RENDER.update({name: _action_text(name) for name in ("launch", *ACTIONS)})
ACTION_HELP = {
    "continue": "resume the stopped game",
    "next": "step over",
    "step-in": "step into",
    "step-out": "step out",
    "pause": "pause the running game",
    "terminate": "stop the game",
}

# Which command reaches each endpoint (tests/test_cli.py checks none is missing).
ENDPOINTS: dict[str, str] = {
    "/connect": "connect",
    "/disconnect": "disconnect",
    "/health": "health",
    "/status": "status",
    "/debug/breakpoints": "breakpoints",
    "/debug/setBreakpoints": "break",
    "/debug/clearBreakpoints": "clear",
    "/debug/launch": "launch",
    "/debug/continue": "continue",
    "/debug/next": "next",
    "/debug/stepIn": "step-in",
    "/debug/stepOut": "step-out",
    "/debug/pause": "pause",
    "/debug/terminate": "terminate",
    "/debug/threads": "threads",
    "/debug/stackTrace": "stack",
    "/debug/scopes": "vars",
    "/debug/variables": "vars",
    "/debug/evaluate": "eval",
    "/debug/events": "events",
    "/game/tree": "tree",
    "/game/node": "node",
    "/game/errors": "errors",
    "/game/monitors": "monitors",
    "/game/screenshot": "screenshot",
    "/game/clock": "clock",
    "/game/suspend": "suspend",
    "/game/resume": "resume",
    "/game/advance": "advance",
    "/game/time_scale": "time-scale",
    "/game/input": "input",
    "/game/evaluate": "game-eval",
    "/game/set_property": "set",
    "/lsp/completion": "complete",
    "/lsp/hover": "hover",
    "/lsp/definition": "definition",
    "/lsp/declaration": "declaration",
    "/lsp/references": "refs",
    "/lsp/signatureHelp": "signature",
    "/lsp/documentSymbol": "symbols",
    "/lsp/diagnostics": "diagnostics",
    "/lsp/didOpen": "open",
    "/lsp/didChange": "call",  # versioned changes are a program's job
    "/lsp/didSave": "save",
    "/lsp/didClose": "close",
    "/edit/read": "read",
    "/edit/applyChanges": "edit",
    "/execute/reload": "reload",
    "/dashboard/state": "call",
    "/openapi.json": "call",
    "/control/lease": "lease",
    "/control/release": "lease",
    "/audit": "audit",
}


# -- the parser --------------------------------------------------------------------------


# An option that maps to an operation's argument is not sent unless given (None), so the
# bridge's declared default applies; a flag is None or True, never a default False of its own.
FLAG: dict[str, Any] = {"action": "store_true", "default": None}


def _common() -> argparse.ArgumentParser:
    """Options every command also takes after its name (`gdbridge status --json`)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="as JSON")
    return p


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", metavar="EVENT", help="then wait for this debug event (stopped)")
    p.add_argument("--wait-timeout", type=float, default=30.0, metavar="S")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gdbridge",
        description="Drive a Godot editor through the godot_debug_connection bridge.",
        epilog="Positions are 1-based FILE:LINE[:COLUMN]; files are printed as res:// paths.",
    )
    p.add_argument("--url", help="the bridge (GODOT_BRIDGE_URL, default http://127.0.0.1:8080)")
    p.add_argument("--agent", help="your name, X-Agent-Id (GODOT_BRIDGE_AGENT, 'gdbridge')")
    p.add_argument("--token", help="bearer token (GODOT_BRIDGE_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--timeout", type=float, default=45.0, help="seconds per request")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    def add(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_text, parents=[common])
        s.set_defaults(run=run)
        return s

    _bridge_commands(add)
    _debug_commands(add)
    _lsp_commands(add)
    _file_commands(add)
    _game_commands(add)
    _clock_commands(add)
    _hands_commands(add)
    return p


Add = Callable[[str, Command, str], argparse.ArgumentParser]


def _bridge_commands(add: Add) -> None:
    add("status", cmd_status, "services and agents")
    add("health", cmd_health, "is the sidecar up")
    s = add("connect", cmd_connect, "connect to Godot's DAP and LSP now")
    s.add_argument("service", nargs="?", choices=("dap", "lsp"))
    s = add("disconnect", cmd_disconnect, "release Godot's DAP/LSP (shared by every agent)")
    s.add_argument("service", nargs="?", choices=("dap", "lsp"))
    s.add_argument("--force", **FLAG, help="even while other agents use them")
    s.add_argument("--reason", help="why, for /status and the event log")
    s.add_argument("--resume-after", type=float, metavar="S", help="reconnect after S seconds")
    s = add("lease", cmd_lease, "the control lease: who holds it, take (or renew), release")
    s.add_argument("action", nargs="?", choices=("show", "take", "release"), default="show")
    s.add_argument("--ttl", type=float, metavar="S", help="take: hold it S seconds")
    s.add_argument("--force", **FLAG, help="take: take it over from its holder (needs --reason)")
    s.add_argument("--reason", help="take --force: why (audited, announced)")
    s = add("audit", cmd_audit, "the audit trail: who changed or drove what")
    s.add_argument("--since", type=int, help="after this record number")
    s.add_argument("--agent", dest="agent_filter", metavar="NAME", help="only this agent's")
    s.add_argument("--kind", help="an operation (continue), change, control or lease")
    s.add_argument("--limit", type=int, help="most records (default: the bridge's)")
    s.add_argument("--wait", type=float, metavar="S", help="wait up to S s for the first")
    s = add("call", cmd_call, "any endpoint: METHOD PATH [JSON]")
    s.add_argument("method")
    s.add_argument("path")
    s.add_argument("body", nargs="?")


def _debug_commands(add: Add) -> None:
    s = add("break", cmd_break, "add breakpoints of yours: FILE:LINE ...")
    s.add_argument("locations", nargs="+", type=file_line, metavar="FILE:LINE")
    s.add_argument("-d", "--delete", action="store_true", help="remove them instead")
    s.add_argument("--condition", help="stop only when this GDScript expression is true")
    s.add_argument(
        "--hit-condition", help="stop at some hits only: 5, '>= 5', '== 5', '%% 10', '%% 10 == 3'"
    )
    s.add_argument(
        "--log-message", help="a logpoint: never stops, logs this text ({expr} evaluated)"
    )
    s = add("clear", cmd_clear, "clear your breakpoints in FILE ... (none: in every file)")
    s.add_argument("files", nargs="*", metavar="FILE")
    s.add_argument("--everyone", **FLAG, help="every agent's, in FILE ...")
    s = add("breakpoints", cmd_breakpoints, "yours (--all: everyone's)")
    s.add_argument("--all", **FLAG, help="every agent's")
    s = add("launch", cmd_launch, "run the game under the debugger")
    s.add_argument("--scene", help="main (the default), current or a .tscn path")
    s.add_argument("--no-debug", **FLAG, help="run without breakpoints")
    _add_wait(s)
    for name, method in ACTIONS.items():
        _add_wait(add(name, _action(method), ACTION_HELP[name]))
    add("threads", cmd_threads, "the game's threads")
    s = add("stack", cmd_stack, "frames of the stopped game")
    s.add_argument("--levels", type=int, help="at most this many frames (default: all)")
    s = add("vars", cmd_vars, "variables of a frame (or of --ref)")
    s.add_argument("--frame", type=int, help="frame id (default: the top frame, 0)")
    s.add_argument("--ref", type=int, help="a variablesReference: its children instead")
    s = add("eval", cmd_eval, "evaluate a GDScript expression in the stopped game")
    s.add_argument("expression")
    s.add_argument("--frame", type=int, help="frame id (default: the top frame, 0)")
    s = add("events", cmd_events, "the debug event log")
    s.add_argument(
        "--since", type=int, help="after this event number (default: all; --follow: last 10)"
    )
    s.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    s.add_argument("--until", metavar="EVENT", help="with --follow: stop after this event")
    s.add_argument("--limit", type=int, help="most events (default: the bridge's)")


def _lsp_commands(add: Add) -> None:
    s = add("complete", cmd_complete, "completion at FILE:LINE:COLUMN")
    s.add_argument("position", type=file_position, metavar="FILE:LINE:COLUMN")
    s.add_argument("--prefix", help="only items starting with this")
    s.add_argument("--limit", type=int, help="most items (default: the bridge's)")
    at: tuple[tuple[str, Callable[..., Any], str], ...] = (
        ("hover", BridgeClient.hover, "what the symbol is"),
        ("definition", BridgeClient.definition, "where it is defined"),
        ("declaration", BridgeClient.declaration, "where it is declared"),
        ("refs", BridgeClient.references, "where it is used"),
        ("signature", BridgeClient.signature_help, "the signature of the call"),
    )
    for name, method, what in at:
        s = add(name, _at(method), f"{what} at FILE:LINE:COLUMN")
        s.add_argument("position", type=file_position, metavar="FILE:LINE:COLUMN")
    add("symbols", cmd_symbols, "the symbols of FILE").add_argument("file")
    s = add("diagnostics", cmd_diagnostics, "Godot's errors and warnings for FILE")
    s.add_argument("file")
    s.add_argument("--wait", type=float, metavar="S", help="wait up to S s for fresh ones")
    documents: tuple[tuple[str, Callable[[BridgeClient, str], Any]], ...] = (
        ("open", BridgeClient.did_open),
        ("save", BridgeClient.did_save),
        ("close", BridgeClient.did_close),
    )
    for name, document in documents:
        add(name, _document(document), f"{name} FILE in the shared documents").add_argument("file")


def _file_commands(add: Add) -> None:
    s = add("read", cmd_read, "FILE[:START[-END]]: lines and the sha256 edits check")
    s.add_argument("range", type=file_lines, metavar="FILE[:START[-END]]")
    s.add_argument("--raw", action="store_true", help="only the text, as it is in the file")
    s = add("edit", cmd_edit, "write FILE (or replace its lines START-END) with new text")
    s.add_argument("range", type=file_lines, metavar="FILE[:START-END]")
    text = s.add_mutually_exclusive_group()
    text.add_argument("--text", help="the new text")
    text.add_argument("--text-file", metavar="F", help="the new text from F (- or none: stdin)")
    check = s.add_mutually_exclusive_group()
    check.add_argument("--expect-sha256", metavar="HEX", help="refuse if the file changed")
    check.add_argument(
        "--if-unchanged", action="store_true", help="refuse if changed since your `read`"
    )
    s = add("reload", cmd_reload, "reload scripts changed on disk (all, or PATH ...)")
    s.add_argument("paths", nargs="*")


def _game_commands(add: Add) -> None:
    s = add("screenshot", cmd_screenshot, "a PNG of the running game's window")
    s.add_argument("-o", "--output", metavar="FILE", help="write the PNG there (- : stdout)")
    s.add_argument("--max-width", type=int, metavar="PX", help="scale it down to this width")
    s = add("tree", cmd_tree, "the running game's scene tree")
    s.add_argument("--path", help="only this node and below (a node path: Main/Player)")
    s.add_argument("--depth", type=int, help="levels below it (default: the bridge's)")
    s = add("node", cmd_node, "a node of the running game and its properties")
    s.add_argument("--path", help="its node path (Main/Player; default /root)")
    s.add_argument("--id", help="its object id (from tree)")
    s.add_argument("--properties", help="only these, comma-separated (position,speed)")
    s = add("errors", cmd_errors, "the game's runtime errors and warnings")
    s.add_argument("--since", type=int, help="after this record number")
    s.add_argument("--wait", type=float, metavar="S", help="wait up to S s for the first")
    s.add_argument("--limit", type=int, help="most records (default: the bridge's)")
    s.add_argument("--warnings", type=_yes_no, metavar="yes|no", help="no: errors only")
    s = add("monitors", cmd_monitors, "the game's performance monitors")
    s.add_argument("--names", help="only these, comma-separated (fps,process_time)")
    s.add_argument("--history", type=int, help="the last N frames too")


def _clock_commands(add: Add) -> None:
    add("clock", cmd_clock, "the game's clock: suspended, time scale, frames advanced")
    add("suspend", cmd_suspend, "suspend the game's processing (no debugger stop)")
    add("resume", cmd_resume, "resume the game's processing")
    s = add("advance", cmd_advance, "run exactly N frames (the game stays suspended)")
    s.add_argument("frames", type=int, nargs="?", help="frames (default 1; with --until a limit)")
    s.add_argument(
        "--until",
        help="until 'PATH PROPERTY OP VALUE' (Main/Mover frames >= 9) or 'PATH EXPRESSION' "
        "(Main/Mover position.x > 100 and frames %% 2 == 0) holds",
    )
    s.add_argument("--timeout", type=float, metavar="S", help="give up after S s")
    s = add("time-scale", cmd_time_scale, "set the game's time scale (0.5: half speed)")
    s.add_argument("scale", type=float)


def _hands_commands(add: Add) -> None:
    s = add("input", cmd_input, "press actions or keys, type text in the running game")
    s.add_argument("steps", nargs="?", help='a JSON list of steps ([{"type": "key", ...}])')
    s.add_argument("--action", help="one action step (ui_right)")
    s.add_argument("--key", help="one key step (Enter, A, Ctrl+S)")
    s.add_argument("--text", help="one text step: these characters typed")
    s.add_argument("--frames", type=int, help="hold --action/--key this many frames")
    s.add_argument("-o", "--output", metavar="FILE", help="a screenshot afterwards, saved there")
    s = add("game-eval", cmd_game_eval, "evaluate an expression in the running game")
    s.add_argument("expression")
    s.add_argument("--path", help="the node that is self (default: the current scene)")
    s.add_argument("--id", help="that node's object id instead")
    s = add("set", cmd_set, "set a property of a node in the running game (not saved)")
    s.add_argument("path", help="the node (Main/Player)")
    s.add_argument("property", help="its property (position, position:x)")
    s.add_argument("value", help='typed JSON ({"x": 1, "y": 2}, 3, true) or plain text')


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"yes or no, not {text!r}")


# -- main --------------------------------------------------------------------------------


def _fail(args: argparse.Namespace, err: BridgeError) -> int:
    """The error on stderr (and as JSON on stdout with --json); the exit status."""
    if isinstance(err, BridgeHTTPError):
        print(f"gdbridge: error {err}", file=sys.stderr)
        if args.json:
            emit(json.dumps({"status": err.status, **err.error}))
        return EXIT_REFUSED
    code = "unreachable" if isinstance(err, BridgeUnreachable) else getattr(err, "code", "error")
    print(f"gdbridge: {err}", file=sys.stderr)
    if args.json:
        emit(json.dumps({"status": None, "code": code, "message": str(err)}))
    return EXIT_UNREACHABLE if isinstance(err, BridgeUnreachable) else EXIT_REFUSED


def _check_usage(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say by itself; a bad command line exits 2 before any request."""
    if args.command == "clear" and args.everyone and not args.files:
        p.error("clear --everyone: name the FILE(s) whose breakpoints everyone loses")
    if args.command == "edit" and args.range[1] is not None and args.range[2] is None:
        p.error("edit FILE:START-END: give the last line too (START-END, inclusive)")


def run(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    _check_usage(p, args)
    client = BridgeClient(
        args.url, agent=args.agent or None, token=args.token, timeout=args.timeout
    )
    client.agent = client.agent or DEFAULT_AGENT
    x = Ctx(client, args)
    try:
        result = args.run(x)
        if result is not PRINTED:
            if args.json:
                emit(json.dumps(result, ensure_ascii=False))
            elif getattr(args, "raw", False):
                sys.stdout.write(str(result["text"]))  # exactly the file's text
            else:
                emit(human(args.command, result, x))
    except BridgeError as err:
        return _fail(args, err)
    except (OSError, ValueError) as err:  # a --text-file that is not there, bad JSON for call
        if isinstance(err, BrokenPipeError):
            raise
        print(f"gdbridge: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        status = run(argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Whoever read our output left (`gdbridge events -f | head -1`): stop quietly, the
        # way the Python docs advise: point stdout at devnull so the exit flush says nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE


if __name__ == "__main__":
    sys.exit(main())

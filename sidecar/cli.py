"""`gdbridge` (or `python -m sidecar.cli`): the bridge from a shell.

    gdbridge status
    gdbridge break res://demo/main.gd:14
    gdbridge launch --wait stopped
    gdbridge stack
    gdbridge eval counter
    gdbridge events --follow
    gdbridge complete res://demo/main.gd:10:5

Positions on the command line are 1-based `FILE:LINE[:COLUMN]`, as editors and compilers
print them. `--json` prints the answer's `result` as JSON (one line per event with
`events --follow`). The bridge is `--url`, else GODOT_BRIDGE_URL, else
http://127.0.0.1:8080; you are `--agent`, else GODOT_BRIDGE_AGENT, else "gdbridge", so
that breakpoints set by one command are yours in the next.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .client import BridgeClient, BridgeError, BridgeHTTPError, BridgeUnreachable, DebugEvent

DEFAULT_AGENT = "gdbridge"
BACKLOG = 10  # events --follow starts with this many past events, as tail -f does
Command = Callable[[BridgeClient, argparse.Namespace], Any]


# -- locations ---------------------------------------------------------------------------


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


# -- commands ----------------------------------------------------------------------------


def cmd_status(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.status()


def cmd_break(c: BridgeClient, a: argparse.Namespace) -> Any:
    out = []
    for path, line in a.locations:
        bps = c.remove_breakpoint(path, line) if a.delete else c.add_breakpoint(path, line)
        out.append({"path": path, "breakpoints": bps})
    return out


def cmd_clear(c: BridgeClient, a: argparse.Namespace) -> Any:
    return [{"path": p, "breakpoints": c.remove_breakpoint(p)} for p in a.files]


def cmd_breakpoints(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.breakpoints(everyone=a.all)


def _maybe_wait(c: BridgeClient, a: argparse.Namespace, since: int, result: Any) -> Any:
    if not a.wait:
        return result
    event = c.wait_for(a.wait, since, a.wait_timeout)
    if event is None:
        raise BridgeError(f"no '{a.wait}' event within {a.wait_timeout:g} s")
    return event


def cmd_launch(c: BridgeClient, a: argparse.Namespace) -> Any:
    since = c.events()["latest"]
    return _maybe_wait(c, a, since, c.launch(a.scene))


def cmd_stack(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.stack_trace(a.levels)


def cmd_vars(c: BridgeClient, a: argparse.Namespace) -> Any:
    if a.ref is not None:
        return c.variables(a.ref)
    scopes = c.scopes(a.frame)["scopes"]
    return {
        s["name"]: c.variables(s["variablesReference"])["variables"]
        for s in scopes
        if s["name"] != "Globals"
    }


def cmd_eval(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.evaluate(a.expression, a.frame)


def cmd_events(c: BridgeClient, a: argparse.Namespace) -> Any:
    if not a.follow:
        return c.events(a.since or 0, 0.0, a.limit)
    since = a.since if a.since is not None else max(c.events()["latest"] - BACKLOG, 0)
    for event in c.follow(since):
        _print_event(event, a.json)
        if a.until and event["event"] == a.until:
            return None
    return None


def cmd_complete(c: BridgeClient, a: argparse.Namespace) -> Any:
    path, line, character = a.position
    return c.completion(path, line, character, a.prefix, a.limit)


def cmd_hover(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.hover(*a.position)


def cmd_definition(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.definition(*a.position)


def cmd_diagnostics(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.diagnostics(a.file, a.wait)


def cmd_reload(c: BridgeClient, a: argparse.Namespace) -> Any:
    return c.reload(a.paths or None)


def cmd_call(c: BridgeClient, a: argparse.Namespace) -> Any:
    body = json.loads(a.body) if a.body else None
    return c.request(a.method.upper(), a.path, body)


# -- output ------------------------------------------------------------------------------


def _print_event(event: DebugEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event), flush=True)
        return
    body = event["body"]
    if event["event"] == "output":
        detail = str(body.get("output", "")).rstrip()
    elif event["event"] == "stopped":
        detail = str(body.get("reason", ""))
    else:
        detail = json.dumps(body) if body else ""
    print(f"#{event['seq']} {event['event']} {detail}".rstrip(), flush=True)


def human(command: str, result: Any) -> str:
    """A short text form of `result` for people; JSON for what has none."""
    render = RENDER.get(command)
    if render is not None:
        try:
            return render(result)
        except (KeyError, TypeError, AttributeError):
            pass
    return json.dumps(result, indent=2, ensure_ascii=False)


def _status_text(s: Any) -> str:
    lines = [f"ready: {'yes' if s['overall_ready'] else 'no'}"]
    for key in ("debug_adapter", "language_server"):
        svc = s[key]
        error = f" ({svc['last_error']})" if svc.get("last_error") else ""
        lines.append(f"{svc['service']}: {svc['state']} on port {svc['port']}{error}")
    clients = s["clients"]
    lines.append(f"agents: {clients['active']} of {clients['max']}")
    lines += [
        f"  {a['identity']} (client {a['id']}, {a['requests']} requests, since {a['connected_at']})"
        for a in clients["agents"]
    ]
    return "\n".join(lines)


def _breakpoints_text(items: Any) -> str:
    lines = []
    for item in items:
        for bp in item["breakpoints"]:
            mark = "verified" if bp.get("verified") else f"not verified: {bp.get('message', '')}"
            lines.append(f"{item['path']}:{bp['line']} {mark}")
        if not item["breakpoints"]:
            lines.append(f"{item['path']}: no breakpoints of yours")
    return "\n".join(lines)


def _all_breakpoints_text(r: Any) -> str:
    lines = [
        f"{path}:{bp['line']} ({agent})"
        for path, agents in r["breakpoints"].items()
        for agent, bps in agents.items()
        for bp in bps
    ]
    return "\n".join(lines) or f"no breakpoints ({r['agent']})"


def _stack_text(r: Any) -> str:
    return "\n".join(
        f"#{f['id']} {f['name']} {f.get('source', {}).get('path', '?')}:{f['line']}"
        for f in r["stackFrames"]
    )


def _vars_text(r: Any) -> str:
    scopes = r if "variables" not in r else {"variables": r["variables"]}
    lines = []
    for scope, variables in scopes.items():
        lines.append(f"{scope}:")
        lines += [f"  {v['name']}: {v.get('type', '')} = {v['value']}" for v in variables]
    return "\n".join(lines)


def _completion_text(r: Any) -> str:
    more = f"\n… {r['total'] - len(r['items'])} more" if r.get("truncated") else ""
    return "\n".join(i["label"] for i in r["items"]) + more


def _hover_text(r: Any) -> str:
    contents = r["contents"] if r else ""
    return contents.get("value", "") if isinstance(contents, dict) else str(contents)


def _locations_text(r: Any) -> str:
    return "\n".join(
        f"{loc['uri']}:{loc['range']['start']['line'] + 1}:{loc['range']['start']['character'] + 1}"
        for loc in r
    )


def _diagnostics_text(r: Any) -> str:
    names = {1: "error", 2: "warning", 3: "info", 4: "hint"}
    lines = [
        f"{r['path']}:{d['range']['start']['line'] + 1}:{d['range']['start']['character'] + 1}: "
        f"{names.get(d.get('severity'), 'note')}: {d['message']}"
        for d in r["diagnostics"]
    ]
    return "\n".join(lines) or f"{r['path']}: no diagnostics"


def _event_text(e: Any) -> str:
    return f"#{e['seq']} {e['event']} {json.dumps(e['body'])}" if "seq" in e else json.dumps(e)


def _events_text(r: Any) -> str:
    return "\n".join(_event_text(e) for e in r["events"]) or f"no events (latest #{r['latest']})"


RENDER: dict[str, Callable[[Any], str]] = {
    "status": _status_text,
    "break": _breakpoints_text,
    "clear": _breakpoints_text,
    "breakpoints": _all_breakpoints_text,
    "stack": _stack_text,
    "vars": _vars_text,
    "eval": lambda r: str(r["result"]),
    "events": _events_text,
    "complete": _completion_text,
    "hover": _hover_text,
    "definition": _locations_text,
    "diagnostics": _diagnostics_text,
    "launch": _event_text,
    "continue": _event_text,
    "next": _event_text,
    "step-in": _event_text,
    "step-out": _event_text,
}


# -- the parser --------------------------------------------------------------------------


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", metavar="EVENT", help="then wait for this debug event (stopped)")
    p.add_argument("--wait-timeout", type=float, default=30.0, metavar="S")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gdbridge",
        description="Drive a Godot editor through the godot_debug_connection bridge.",
        epilog="Positions are 1-based FILE:LINE[:COLUMN].",
    )
    p.add_argument("--url", help="the bridge (GODOT_BRIDGE_URL, default http://127.0.0.1:8080)")
    p.add_argument("--agent", help="your name, X-Agent-Id (GODOT_BRIDGE_AGENT, 'gdbridge')")
    p.add_argument("--token", help="bearer token (GODOT_BRIDGE_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--timeout", type=float, default=45.0, help="seconds per request")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _debug_commands(sub)
    _lsp_commands(sub)
    return p


def _debug_commands(sub: Any) -> None:
    sub.add_parser("status", help="services and agents").set_defaults(run=cmd_status)
    s = sub.add_parser("break", help="add breakpoints of yours: FILE:LINE ...")
    s.add_argument("locations", nargs="+", type=file_line, metavar="FILE:LINE")
    s.add_argument("-d", "--delete", action="store_true", help="remove them instead")
    s.set_defaults(run=cmd_break)
    s = sub.add_parser("clear", help="remove all your breakpoints in FILE ...")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.set_defaults(run=cmd_clear)
    s = sub.add_parser("breakpoints", help="yours (--all: everyone's)")
    s.add_argument("--all", action="store_true")
    s.set_defaults(run=cmd_breakpoints)
    s = sub.add_parser("launch", help="run the game under the debugger")
    s.add_argument("--scene", default="main", help="main, current or a .tscn path")
    _add_wait(s)
    s.set_defaults(run=cmd_launch)
    for name, method in (
        ("continue", BridgeClient.continue_),
        ("next", BridgeClient.next),
        ("step-in", BridgeClient.step_in),
        ("step-out", BridgeClient.step_out),
        ("pause", BridgeClient.pause),
        ("terminate", BridgeClient.terminate),
    ):
        s = sub.add_parser(name, help=f"{name} the game")
        _add_wait(s)
        s.set_defaults(run=_method_command(method))
    s = sub.add_parser("stack", help="frames of the stopped game")
    s.add_argument("--levels", type=int, default=0)
    s.set_defaults(run=cmd_stack)
    s = sub.add_parser("vars", help="variables of a frame (or of --ref)")
    s.add_argument("--frame", type=int, default=0)
    s.add_argument("--ref", type=int)
    s.set_defaults(run=cmd_vars)
    s = sub.add_parser("eval", help="evaluate a GDScript expression in the stopped game")
    s.add_argument("expression")
    s.add_argument("--frame", type=int, default=0)
    s.set_defaults(run=cmd_eval)
    s = sub.add_parser("events", help="the debug event log")
    s.add_argument(
        "--since", type=int, help="after this event number (default: all; --follow: last 10)"
    )
    s.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    s.add_argument("--until", metavar="EVENT", help="with --follow: stop after this event")
    s.add_argument("--limit", type=int, default=500)
    s.set_defaults(run=cmd_events)


def _method_command(method: Callable[[BridgeClient], Any]) -> Command:
    def run(c: BridgeClient, a: argparse.Namespace) -> Any:
        since = c.events()["latest"] if a.wait else 0
        return _maybe_wait(c, a, since, method(c))

    return run


def _lsp_commands(sub: Any) -> None:
    s = sub.add_parser("complete", help="completion at FILE:LINE:COLUMN")
    s.add_argument("position", type=file_position, metavar="FILE:LINE:COLUMN")
    s.add_argument("--prefix")
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(run=cmd_complete)
    for name, run in (("hover", cmd_hover), ("definition", cmd_definition)):
        s = sub.add_parser(name, help=f"{name} at FILE:LINE:COLUMN")
        s.add_argument("position", type=file_position, metavar="FILE:LINE:COLUMN")
        s.set_defaults(run=run)
    s = sub.add_parser("diagnostics", help="Godot's errors and warnings for FILE")
    s.add_argument("file")
    s.add_argument("--wait", type=float, default=0.0)
    s.set_defaults(run=cmd_diagnostics)
    s = sub.add_parser("reload", help="reload scripts changed on disk (all, or PATH ...)")
    s.add_argument("paths", nargs="*")
    s.set_defaults(run=cmd_reload)
    s = sub.add_parser("call", help="any endpoint: METHOD PATH [JSON]")
    s.add_argument("method")
    s.add_argument("path")
    s.add_argument("body", nargs="?")
    s.set_defaults(run=cmd_call)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = BridgeClient(
        args.url, agent=args.agent or None, token=args.token, timeout=args.timeout
    )
    client.agent = client.agent or DEFAULT_AGENT
    try:
        result = args.run(client, args)
    except BridgeHTTPError as err:
        print(f"gdbridge: error {err}", file=sys.stderr)
        if args.json:
            print(json.dumps({"status": err.status, **err.error}))
        return 1
    except BridgeUnreachable as err:
        print(f"gdbridge: {err}", file=sys.stderr)
        return 3
    except BridgeError as err:
        print(f"gdbridge: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result is not None:
        print(json.dumps(result, ensure_ascii=False) if args.json else human(args.command, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

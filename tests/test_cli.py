"""`gdbridge`'s output, against a small fake bridge that answers canned bridge-shaped JSON.

These are about formatting and the command line only (what the real bridge answers is
tests/test_client.py's job): every command prints files one way, `res://path:line:col`
(1-based, as the CLI's positions are), `--json` prints JSON, an empty answer prints a
line saying so, `| head -1` ends quietly and errors exit non-zero with a message on stderr.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from harness import REPO

from sidecar.client import cli
from sidecar.client.client import BridgeClient, BridgeHTTPError
from sidecar.project.documents import apply_text_edits

PROJECT = "/home/me/game"
MAIN = "res://demo/main.gd"
MAIN_ABS = f"{PROJECT}/demo/main.gd"
MAIN_URI = f"file://{MAIN_ABS}"
UTIL_URI = f"file://{PROJECT}/demo/util.gd"
EMPTY = "res://demo/empty.gd"  # a file about which the fake knows nothing
NOWHERE = 99  # LSP line (CLI line 100) where the fake finds nothing
MAIN_TEXT = (
    "extends Node\n\nvar counter := 0\n\nfunc _process(_d: float) -> void:\n\tcounter += 1\n"
)

Answer = tuple[int, Any]
CLI = [sys.executable, "-m", "sidecar.client.cli"]


def ok(result: Any) -> Answer:
    return 200, {"status": "ok", "result": result}


def error(status: int, code: str, message: str) -> Answer:
    return status, {"status": "error", "error": {"code": code, "message": message}}


def rng(line: int, character: int) -> dict[str, Any]:
    return {
        "start": {"line": line, "character": character},
        "end": {"line": line, "character": character + 3},
    }


def service(name: str, port: int, state: str = "connected") -> dict[str, Any]:
    return {
        "service": name,
        "port": port,
        "state": state,
        "ready": state == "connected",
        "retry_count": 0,
        "last_activity": None,
        "last_error": None,
    }


STATUS = {
    "status": "ok",
    "overall_ready": True,
    "debug_adapter": service("debug_adapter", 6006),
    "language_server": service("language_server", 6005),
    "clients": {
        "active": 1,
        "max": 100,
        "agents": [
            {
                "id": 7,
                "agent": "alice",
                "identity": "alice",
                "connected_at": "2026-12-01T20:00:00Z",
                "requests": 12,
            }
        ],
    },
    "sidecar": {"pid": 1, "version": "0.1.0", "project": PROJECT, "uptime_s": 3.0},
}
STOPPED = {
    "seq": 7,
    "time": 1.0,
    "event": "stopped",
    "body": {
        "reason": "breakpoint",
        "threadId": 1,
        "source": {"path": MAIN_ABS},
        "line": 6,
        "hit_by": ["alice", "bob"],
    },
}
OUTPUT = {
    "seq": 6,
    "time": 0.5,
    "event": "output",
    "body": {"category": "stdout", "output": "hi\n"},
}
CLEARED_EVENT = {
    "seq": 8,
    "time": 1.5,
    "event": "breakpoints_cleared",
    "body": {
        "by": "alice",
        "path": MAIN,
        "everyone": True,
        "cleared": [
            {"path": MAIN, "agent": "alice", "lines": [3, 6]},
            {"path": MAIN_ABS, "agent": "bob", "lines": [6]},
        ],
    },
}
LEFT_EVENT = {
    "seq": 9,
    "time": 2.0,
    "event": "breakpoints_cleared",
    "body": {
        "by": "sidecar",
        "path": None,
        "everyone": False,
        "cleared": [{"path": MAIN, "agent": "client-4", "lines": [6]}],
        "reason": "'client-4' left (its connection or session ended)",
    },
}
DOWN_EVENT = {
    "seq": 10,
    "time": 3.0,
    "event": "service_disconnected",
    "body": {"service": "language_server", "by": "alice", "reason": "restart"},
}
FRAMES = [
    {"id": 0, "name": "_process", "line": 6, "column": 0, "source": {"path": MAIN_ABS}},
    {"id": 1, "name": "helper", "line": 3, "column": 5, "source": {"path": UTIL_URI}},
]
SYMBOLS = [
    {
        "name": "main",
        "kind": 5,
        "range": rng(0, 0),
        "selectionRange": rng(0, 0),
        "children": [
            {"name": "counter", "kind": 13, "range": rng(2, 4), "selectionRange": rng(2, 4)},
            {"name": "_process", "kind": 12, "range": rng(4, 5), "selectionRange": rng(4, 5)},
        ],
    }
]


FAKE_PNG = b"\x89PNG\r\n\x1a\nnot really"
FAKE_SHOT = {
    "width": 4,
    "height": 2,
    "format": "png",
    "data": base64.b64encode(FAKE_PNG).decode(),
    "png_bytes": len(FAKE_PNG),
    "game_width": 4,
    "game_height": 2,
}
GAME_TREE = {
    "root": {
        "name": "root",
        "class": "Window",
        "id": "1",
        "children": [
            {"name": "Main", "class": None, "script": "res://demo/main.gd", "id": "2",
             "children": [], "truncated": 3},
        ],
    },
    "node_count": 5,
}  # fmt: skip
GAME_NODE = {
    "id": "7",
    "class": "Node2D",
    "path": "/root/Main/Mover",
    "script": "res://demo/mover.gd",
    "sections": [
        {"category": None, "properties": {"Members/speed": {"type": "float", "value": 60.0}}},
        {"category": "Node2D", "properties": {
            "position": {"type": "Vector2", "value": {"x": 1.0, "y": 2.0}}}},
    ],
}  # fmt: skip
GAME_ERROR = {"seq": 3, "file": MAIN, "line": 12, "message": "boom", "is_warning": False}
# An engine check: its file is Godot's C++ source, never a res:// path.
ENGINE_WARNING = {
    "seq": 4,
    "file": "platform/linuxbsd/x11/gl_manager_x11.cpp",
    "line": 364,
    "message": "Could not set V-Sync mode",
    "is_warning": True,
}


LEASE = {
    "holder": "alice",
    "taken_at": "2026-12-02T05:00:02.345Z",
    "expires_at": "2026-12-02T05:01:02.345Z",
    "expires_in_s": 42.0,
    "connection_scoped": False,
}
AUDIT_AT = time.strftime("%H:%M:%S", time.localtime(1764651662.0))
AUDIT_RECORD = {
    "seq": 7,
    "time": 1764651662.0,
    "agent": "bob",
    "operation": "continue",
    "effect": "control",
    "args": {},
    "outcome": {"ok": False, "status": 409, "code": "lease_held"},
}
CLOCK = {
    "game": 1,
    "running": True,
    "suspended": False,
    "time_scale": 1.0,
    "frames_advanced": 7,
    "can_advance": True,
}


class FakeBridge:
    """Canned answers per path, the requests it got, and one file to read and edit."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.files = {MAIN: MAIN_TEXT}
        self.routes: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "/status": lambda b: (200, STATUS),
            "/health": lambda b: ok({"healthy": True}),
            "/connect": lambda b: ok({"debug_adapter": STATUS["debug_adapter"]}),
            "/disconnect": lambda b: ok(
                {
                    "language_server": {
                        **service("language_server", 6005, "disconnected"),
                        "message": "disconnected by alice: restart; reconnecting in 5 s",
                        "down_reason": "restart",
                        "down_by": "alice",
                    }
                }
            ),
            "/debug/breakpoints": lambda b: ok(
                {"agent": "gdbridge", "breakpoints": {MAIN: {"gdbridge": [{"line": 3}]}}}
            ),
            "/debug/setBreakpoints": self.set_breakpoints,
            "/debug/clearBreakpoints": lambda b: ok(
                {"cleared": [{"path": MAIN, "agent": "gdbridge", "lines": [3, 6]}]}
            ),
            "/debug/launch": lambda b: ok({"scene": b.get("scene", "main")}),
            "/debug/continue": lambda b: ok({"allThreadsContinued": True}),
            "/debug/next": lambda b: ok({}),
            "/debug/stepIn": lambda b: ok({}),
            "/debug/stepOut": lambda b: ok({"steps": 2, "stopped": True}),
            "/debug/pause": lambda b: ok({}),
            "/debug/terminate": lambda b: ok({}),
            "/debug/threads": lambda b: ok({"threads": [{"id": 1, "name": "Main"}]}),
            "/debug/stackTrace": lambda b: ok({"stackFrames": FRAMES, "totalFrames": 2}),
            "/debug/scopes": lambda b: ok(
                {
                    "scopes": [
                        {"name": "Locals", "variablesReference": 1},
                        {"name": "Members", "variablesReference": 2},
                        {"name": "Globals", "variablesReference": 3},
                    ]
                }
            ),
            "/debug/variables": self.variables,
            "/debug/evaluate": self.evaluate,
            "/debug/events": self.events,
            "/lsp/completion": self.completion,
            "/lsp/hover": self.at(
                {
                    "contents": [
                        {"language": "gdscript", "value": "var counter: int"},
                        f"The number of frames.\n\nDefined in [{MAIN}]({MAIN_URI})",
                    ]
                }
            ),
            "/lsp/definition": self.at([{"uri": MAIN_URI, "range": rng(2, 4)}]),
            "/lsp/declaration": self.at(
                [
                    {
                        "targetUri": MAIN_URI,
                        "targetRange": rng(2, 0),
                        "targetSelectionRange": rng(2, 4),
                    }
                ]
            ),
            "/lsp/references": self.at(
                [{"uri": MAIN_URI, "range": rng(5, 1)}, {"uri": UTIL_URI, "range": rng(9, 8)}]
            ),
            "/lsp/signatureHelp": self.at(
                {"signatures": [{"label": "func add_numbers(a: int, b: int) -> int"}]}
            ),
            "/lsp/documentSymbol": lambda b: ok(
                [] if b["textDocument"]["uri"] == EMPTY else SYMBOLS
            ),
            "/lsp/diagnostics": self.diagnostics,
            "/lsp/didOpen": lambda b: ok(
                {"uri": MAIN_URI, "path": MAIN, "version": 1, "open_by": {"gdbridge": 1}}
            ),
            "/lsp/didSave": lambda b: ok({"uri": MAIN_URI, "path": MAIN}),
            "/lsp/didClose": lambda b: ok(
                {
                    "uri": MAIN_URI,
                    "path": MAIN,
                    "version": 1,
                    "open_by": {},
                    "closed_in_godot": True,
                }
            ),
            "/edit/read": self.read,
            "/edit/applyChanges": self.apply_changes,
            "/game/screenshot": lambda b: ok(
                {
                    "width": int(b.get("max_width", 4)),
                    "height": 2,
                    "format": "png",
                    "data": base64.b64encode(FAKE_PNG).decode(),
                    "png_bytes": len(FAKE_PNG),
                    "game_width": 4,
                    "game_height": 2,
                }
            ),
            "/game/tree": lambda b: ok(GAME_TREE),
            "/game/node": lambda b: ok(GAME_NODE),
            "/game/errors": lambda b: ok(
                {"errors": [GAME_ERROR, ENGINE_WARNING], "next": 4, "latest": 4, "dropped": 0}
            ),
            "/game/monitors": lambda b: ok({"values": {"fps": 60.0, "draw_calls": 3.0}}),
            # issue 14: POST (a ttl sent) takes the lease, GET shows it
            "/control/lease": lambda b: ok(
                {**LEASE, "action": "taken"} if b else {"lease": LEASE, "you": "gdbridge"}
            ),
            "/control/release": lambda b: ok({"released": True, "lease": LEASE}),
            "/audit": lambda b: ok(
                {"records": [AUDIT_RECORD], "next": 7, "latest": 7, "dropped": 0, "file": None}
            ),
            "/game/clock": lambda b: ok(CLOCK),
            "/game/suspend": lambda b: ok({**CLOCK, "suspended": True}),
            "/game/resume": lambda b: ok(CLOCK),
            "/game/time_scale": lambda b: ok({**CLOCK, "time_scale": b["scale"]}),
            "/game/advance": lambda b: ok(
                {
                    "frames": 7,
                    "requested": b.get("frames", 1),
                    "reason": "condition" if "until" in b else "frames",
                    "values": {b["until"]["property"]: 33} if "until" in b else None,
                    "ms_per_frame": 12.5,
                    "clock": {**CLOCK, "suspended": True},
                }
            ),
            "/game/input": lambda b: ok(
                {"steps": len(b["steps"]), "frames": 31, "ms": 510}
                | ({"screenshot": FAKE_SHOT} if b.get("screenshot") else {})
            ),
            "/game/evaluate": lambda b: ok(
                {"type": "Vector2", "value": {"x": 1.0, "y": 2.0}, "self": "/root/Main"}
            ),
            "/game/set_property": lambda b: ok(
                {
                    "path": "/root/Main/Player",
                    "property": b["property"],
                    "old": {"type": "float", "value": 1.0},
                    "new": {"type": "float", "value": b["value"]},
                }
            ),
            "/execute/reload": lambda b: ok(
                {
                    "rescanned": True,
                    "scripts": [MAIN],
                    "removed": [],
                    "game_running": False,
                    "game_reloaded": False,
                    "errors": [],
                    "documents": [],
                }
            ),
        }

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Answer:
        self.requests.append((method, path, body))
        route = self.routes.get(path)
        return route(body) if route else error(404, "not_found", f"no endpoint {path}")

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for _, p, body in self.requests if p == path]

    # -- answers that depend on the request --------------------------------------------

    def set_breakpoints(self, b: dict[str, Any]) -> Answer:
        lines = [bp["line"] for bp in b.get("breakpoints", [])]
        bps = [{"id": i, "line": n, "verified": n != 2} for i, n in enumerate(lines)]
        for bp in bps:
            if not bp["verified"]:
                bp["message"] = "no code on this line"
        return ok({"breakpoints": bps})

    def variables(self, b: dict[str, Any]) -> Answer:
        ref = int(b["variablesReference"])
        table = {
            1: [{"name": "_d", "type": "float", "value": "0.016", "variablesReference": 0}],
            2: [{"name": "node", "type": "Node", "value": "<Node#9>", "variablesReference": 9}],
        }
        return ok({"variables": table.get(ref, [])})

    def evaluate(self, b: dict[str, Any]) -> Answer:
        if b["expression"] == "fail":
            return error(409, "not_stopped", "'evaluate' needs the game stopped")
        return ok({"result": "5", "variablesReference": 0})

    def events(self, b: dict[str, Any]) -> Answer:
        if b.get("since") == "100":  # nothing new after 100
            return ok({"events": [], "next": 100, "latest": 100, "dropped": 0})
        events = [OUTPUT, STOPPED, CLEARED_EVENT, LEFT_EVENT, DOWN_EVENT]
        return ok({"events": events, "next": 10, "latest": 10, "dropped": 0})

    def completion(self, b: dict[str, Any]) -> Answer:
        if b["position"]["line"] == NOWHERE:
            return ok({"items": [], "total": 0, "truncated": False, "prefix": ""})
        if b.get("prefix") == "many":  # far more than a pipe holds
            items = [{"label": f"item_{i}_" + "x" * 40} for i in range(20000)]
            return ok({"items": items, "total": 20000, "truncated": False, "prefix": "many"})
        items = [{"label": "print()"}, {"label": "print_debug()"}]
        return ok({"items": items, "total": 5, "truncated": True, "prefix": "pri"})

    def at(self, found: Any) -> Callable[[dict[str, Any]], Answer]:
        def answer(b: dict[str, Any]) -> Answer:
            return ok(None if b["position"]["line"] == NOWHERE else found)

        return answer

    def diagnostics(self, b: dict[str, Any]) -> Answer:
        uri = b.get("uri") or MAIN
        found = [] if uri == EMPTY else [{"range": rng(2, 0), "severity": 1, "message": "Bad"}]
        return ok({"uri": MAIN_URI, "path": uri, "stale": False, "diagnostics": found})

    def read(self, b: dict[str, Any]) -> Answer:
        text = self.files.get(b["uri"])
        if text is None:
            return error(404, "no_such_file", f"no file {b['uri']}")
        lines = text.splitlines(keepends=True)
        start = b.get("start_line", 1)
        end = b.get("end_line", len(lines))
        return ok(
            {
                "uri": b["uri"],
                "text": "".join(lines[start - 1 : end]),
                "sha256": _sha(text),
                "line_count": len(lines),
                "start_line": start,
                "end_line": end,
            }
        )

    def apply_changes(self, b: dict[str, Any]) -> Answer:
        current = self.files.get(b["uri"])
        expected = b.get("expected_sha256")
        if expected is not None and (current is None or expected != _sha(current)):
            return error(409, "stale_hash", f"{b['uri']} changed since you read it")
        text = b["text"] if "text" in b else apply_text_edits(current or "", b["edits"])
        self.files[b["uri"]] = text
        return ok(
            {
                "path": b["uri"],
                "sha256": _sha(text),
                "previous_sha256": _sha(current) if current is not None else None,
                "created": current is None,
                "bytes": len(text.encode()),
                "lsp": "notified",
                "diagnostics": [],
            }
        )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBridge

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        self._reply("GET", url.path, dict(urllib.parse.parse_qsl(url.query)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._reply("POST", self.path, body)

    def _reply(self, method: str, path: str, body: dict[str, Any]) -> None:
        status, answer = self.fake.answer(method, path, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBridge]:
    bridge = FakeBridge()
    handler = type("Handler", (_Handler,), {"fake": bridge})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    bridge.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("GODOT_BRIDGE_URL", bridge.url)
    monkeypatch.setenv(cli.STATE_ENV, str(tmp_path / "state.json"))
    monkeypatch.delenv("GODOT_BRIDGE_AGENT", raising=False)
    monkeypatch.delenv("GODOT_BRIDGE_TOKEN", raising=False)
    try:
        yield bridge
    finally:
        server.shutdown()
        server.server_close()


def gdbridge(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process: exit status, stdout, stderr."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- the human format --------------------------------------------------------------------

STOP = f"#7 stopped breakpoint {MAIN}:6 hit_by=alice,bob"
HUMAN: list[tuple[list[str], str]] = [
    (
        ["status"],
        "ready: yes\ndebug_adapter: connected on port 6006\n"
        "language_server: connected on port 6005\nproject: /home/me/game\nagents: 1 of 100\n"
        "  alice (client 7, 12 requests, since 2026-12-01T20:00:00Z)",
    ),
    (["health"], "healthy"),
    (["connect", "dap"], "debug_adapter: connected on port 6006"),
    (
        ["disconnect", "lsp"],
        "language_server: disconnected on port 6005 by alice "
        "(disconnected by alice: restart; reconnecting in 5 s)",
    ),
    (
        ["break", f"{MAIN}:6", f"{MAIN}:2"],
        f"{MAIN}:3 verified\n{MAIN}:6 verified\n"
        f"{MAIN}:2 not verified: no code on this line\n{MAIN}:3 verified",
    ),
    (["clear", MAIN], f"{MAIN}:3 cleared (gdbridge)\n{MAIN}:6 cleared (gdbridge)"),
    (["breakpoints", "--all"], f"{MAIN}:3 (gdbridge)"),
    (["launch"], "launch: ok scene=main"),
    (["launch", "--wait", "stopped"], f"launch: ok scene=main\n{STOP}"),
    (["continue"], "continue: ok"),
    (["next"], "next: ok"),
    (["step-in"], "step-in: ok"),
    (["step-out"], "step-out: ok steps=2 stopped=yes"),
    (["pause"], "pause: ok"),
    (["terminate"], "terminate: ok"),
    (["threads"], "#1 Main"),
    (["stack"], f"#0 _process {MAIN}:6\n#1 helper res://demo/util.gd:3:5"),
    (["vars"], "Locals:\n  _d: float = 0.016\nMembers:\n  node: Node = <Node#9> (ref 9)"),
    (["vars", "--ref", "1"], "variables:\n  _d: float = 0.016"),
    (["eval", "a + b"], "5"),
    (
        ["events"],
        f"#6 output hi\n{STOP}\n"
        f"#8 breakpoints_cleared by=alice everyone's: {MAIN}:3,6 (alice); {MAIN}:6 (bob)\n"
        f"#9 breakpoints_cleared by=sidecar {MAIN}:6 (client-4) ('client-4' left (its "
        "connection or session ended))\n"
        "#10 service_disconnected service=language_server by=alice reason=restart",
    ),
    (["events", "--since", "100"], "no events (latest #100)"),
    (["events", "--follow", "--until", "stopped"], f"#6 output hi\n{STOP}"),
    (["complete", f"{MAIN}:10:5"], "print()\nprint_debug()\n… 3 more"),
    (
        ["hover", f"{MAIN}:3:6"],
        f"var counter: int\n\nThe number of frames.\n\nDefined in {MAIN}",
    ),
    (["definition", f"{MAIN}:6:3"], f"{MAIN}:3:5"),
    (["declaration", f"{MAIN}:6:3"], f"{MAIN}:3:5"),
    (["refs", f"{MAIN}:3:6"], f"{MAIN}:6:2\nres://demo/util.gd:10:9"),
    (["signature", f"{MAIN}:6:3"], "func add_numbers(a: int, b: int) -> int"),
    (
        ["symbols", MAIN],
        f"{MAIN}:1:1 class main\n{MAIN}:3:5   variable counter\n{MAIN}:5:6   function _process",
    ),
    (["diagnostics", MAIN], f"{MAIN}:3:1: error: Bad"),
    (["diagnostics", EMPTY], f"{EMPTY}: no diagnostics"),
    (["open", MAIN], f"{MAIN}: opened, version 1, open by gdbridge ×1"),
    (["save", MAIN], f"{MAIN}: saved"),
    (["close", MAIN], f"{MAIN}: closed, version 1, closed in Godot"),
    (
        ["read", f"{MAIN}:3-4"],
        f"{MAIN}:3-4 (of 6 lines) sha256 {_sha(MAIN_TEXT)}\n     3\tvar counter := 0\n     4\t",
    ),
    (["reload"], f"{MAIN} reloaded\ngame_running=no game_reloaded=no"),
    (["screenshot"], "4x2 PNG, 18 bytes of the game's 4x2 window (-o FILE saves it)"),
    (
        ["tree"],
        "root: Window #1\n  Main: res://demo/main.gd #2 (+3 below)\n5 nodes in the game",
    ),
    (
        ["node", "--path", "Main/Mover"],
        "/root/Main/Mover: Node2D (res://demo/mover.gd)\n  Members/speed = 60.0\n[Node2D]\n"
        '  position = {"x": 1.0, "y": 2.0}',
    ),
    (
        ["errors"],
        f"#3 {MAIN}:12: error: boom\n"
        "#4 platform/linuxbsd/x11/gl_manager_x11.cpp:364: warning: Could not set V-Sync mode",
    ),
    (["monitors"], "fps = 60.0\ndraw_calls = 3.0"),
    (["lease"], "held by alice until 2026-12-02T05:01:02.345Z (42 s left)"),
    (
        ["lease", "take", "--ttl", "30"],
        "held by alice (taken) until 2026-12-02T05:01:02.345Z (42 s left)",
    ),
    (["lease", "release"], "released"),
    (
        ["audit", "--kind", "control"],
        f"#7 {AUDIT_AT} bob continue: 409 lease_held",
    ),
    (["clock"], "game 1: running, time scale 1.0, 7 frames advanced"),
    (["suspend"], "game 1: suspended, time scale 1.0, 7 frames advanced"),
    (["resume"], "game 1: running, time scale 1.0, 7 frames advanced"),
    (["time-scale", "0.5"], "game 1: running, time scale 0.5, 7 frames advanced"),
    (["advance", "7"], "advanced 7 of 7 frames (frames), 12.5 ms a frame"),
    (
        ["advance", "50", "--until", "Main/Mover frames >= 33"],
        "advanced 7 of 50 frames (condition), 12.5 ms a frame\n  frames = 33",
    ),
    (["input", "--action", "ui_right", "--frames", "30"], "1 steps done in 31 frames (510 ms)"),
    (["game-eval", "position", "--path", "Main"], '{"x": 1.0, "y": 2.0} (Vector2)'),
    (["set", "Main/Player", "speed", "3.5"], "/root/Main/Player.speed: 1.0 -> 3.5"),
]


@pytest.mark.parametrize(("argv", "expected"), HUMAN, ids=[" ".join(a) for a, _ in HUMAN])
def test_issue_11_cli_human_format(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    status, out, err = gdbridge(capsys, *argv)
    assert (status, err) == (0, "")
    assert out == expected + "\n"
    assert "file://" not in out and PROJECT not in out.replace("project: /home/me/game", "")


def test_issue_11_cli_every_subcommand_has_a_human_format() -> None:
    commands = set(_subcommands())
    assert commands - {"call"} <= set(cli.RENDER)
    tested = {argv[0] for argv, _ in HUMAN}
    assert commands - {"call", "edit"} <= tested  # edit: test_issue_11_cli_read_then_edit


def _subcommands() -> dict[str, Any]:
    sub = next(a for a in cli.parser()._actions if a.dest == "command")
    return dict(sub.choices)  # type: ignore[arg-type]


NO_RESULT_AT = f"{MAIN}:{NOWHERE + 1}:1"


@pytest.mark.parametrize(
    "argv",
    [
        ["hover", NO_RESULT_AT],
        ["definition", NO_RESULT_AT],
        ["declaration", NO_RESULT_AT],
        ["refs", NO_RESULT_AT],
        ["signature", NO_RESULT_AT],
        ["complete", NO_RESULT_AT],
        ["symbols", EMPTY],
    ],
)
def test_issue_11_cli_says_no_result(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert gdbridge(capsys, *argv) == (0, "no result\n", "")


# -- --json ------------------------------------------------------------------------------

JSON_RUNS = [argv for argv, _ in HUMAN if "--follow" not in argv] + [
    ["call", "GET", "/dashboard/state"],
    ["edit", MAIN, "--text", "extends Node\n"],
]


@pytest.mark.parametrize("argv", JSON_RUNS, ids=[" ".join(a) for a in JSON_RUNS])
def test_issue_11_cli_json_everywhere(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    fake.routes["/dashboard/state"] = lambda b: ok({"events": []})
    before = gdbridge(capsys, "--json", *argv)
    after = gdbridge(capsys, *argv, "--json")
    for status, out, err in (before, after):
        assert (status, err) == (0, "")
        assert out.count("\n") == 1, out
        json.loads(out)
    if argv[0] == "status":  # /status is not wrapped: the whole answer
        assert json.loads(before[1])["overall_ready"] is True


def test_issue_11_cli_json_follow_is_one_event_per_line(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = gdbridge(capsys, "--json", "events", "-f", "--until", "stopped")
    assert status == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [6, 7]


# -- errors and exit codes ---------------------------------------------------------------


def test_issue_11_cli_errors_exit_non_zero_on_stderr(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = gdbridge(capsys, "eval", "fail")
    assert (status, out) == (1, "")
    assert "409 not_stopped" in err
    status, out, err = gdbridge(capsys, "--json", "eval", "fail")
    assert status == 1 and json.loads(out)["code"] == "not_stopped"
    status, out, err = gdbridge(capsys, "call", "GET", "/no/such/thing")
    assert (status, out) == (1, "") and "404 not_found" in err
    status, out, err = gdbridge(capsys, "--url", "http://127.0.0.1:9", "status")
    assert (status, out) == (3, "") and "no bridge" in err
    status, out, err = gdbridge(capsys, "--json", "--url", "http://127.0.0.1:9", "status")
    assert status == 3 and json.loads(out)["code"] == "unreachable"
    status, out, err = gdbridge(capsys, "edit", MAIN, "--text-file", "/no/such/file")
    assert (status, out) == (1, "") and "/no/such/file" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["break", MAIN],
        ["hover", f"{MAIN}:3"],
        ["read", f"{MAIN}:0-3"],
        ["clear", "--everyone"],
        ["edit", f"{MAIN}:3", "--text", "x"],
        ["nonsense"],
    ],
)
def test_issue_11_cli_bad_command_lines_exit_2(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "gdbridge" in err
    assert fake.requests == []


def _shell(fake: FakeBridge, pipeline: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "GODOT_BRIDGE_URL": fake.url}
    return subprocess.run(
        ["bash", "-c", pipeline.replace("gdbridge", f"{sys.executable} -m sidecar.client.cli")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


# slow: each starts bash and a Python process (a real pipe into a real `head`).
@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        f"gdbridge complete {MAIN}:1:1 --prefix many --limit 0",  # more than a pipe holds
        "gdbridge events --follow",  # never ends by itself
        "gdbridge --json events --follow",
    ],
)
def test_issue_11_cli_into_head_ends_quietly(fake: FakeBridge, command: str) -> None:
    done = _shell(fake, f"set -o pipefail; {command} | head -1")
    assert done.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"
    assert len(done.stdout.splitlines()) == 1
    assert done.returncode == cli.EXIT_PIPE


# -- read, then edit what you read --------------------------------------------------------


def test_issue_11_cli_read_then_edit(fake: FakeBridge, capsys: pytest.CaptureFixture[str]) -> None:
    # Without a read first there is nothing to compare with: refused before writing.
    status, out, err = gdbridge(capsys, "edit", MAIN, "--if-unchanged", "--text", "x\n")
    assert status == 1 and "read" in err and fake.bodies("/edit/applyChanges") == []

    status, out, _ = gdbridge(capsys, "read", "--raw", f"{MAIN}:3")
    assert (status, out) == (
        0,
        "var counter := 0\n\nfunc _process(_d: float) -> void:\n\tcounter += 1\n",
    )
    assert fake.bodies("/edit/read")[-1] == {"uri": MAIN, "start_line": 3}

    # Replace lines 3-3 with two lines; the sha256 of the read goes along.
    status, out, _ = gdbridge(
        capsys, "edit", f"{MAIN}:3-3", "--if-unchanged", "--text", "var counter := 1\nvar b := 2\n"
    )
    sent = fake.bodies("/edit/applyChanges")[-1]
    assert sent["expected_sha256"] == _sha(MAIN_TEXT)
    assert sent["edits"][0]["range"] == {
        "start": {"line": 2, "character": 0},
        "end": {"line": 3, "character": 0},
    }
    new = fake.files[MAIN]
    assert new.splitlines()[2:4] == ["var counter := 1", "var b := 2"]
    assert out == f"{MAIN}: written, {len(new)} bytes, sha256 {_sha(new)}\n{MAIN}: no diagnostics\n"

    # The edit's own result is remembered: a second edit needs no new read...
    assert gdbridge(capsys, "edit", MAIN, "--if-unchanged", "--text", "a\n")[0] == 0
    # ...but someone else's change in between makes it stale: 409, nothing written.
    fake.files[MAIN] = "changed by bob\n"
    bob = _sha(fake.files[MAIN])
    status, out, err = gdbridge(capsys, "edit", MAIN, "--if-unchanged", "--text", "b\n")
    assert (status, out) == (1, "") and "409 stale_hash" in err
    assert fake.files[MAIN] == "changed by bob\n"

    # The whole text from stdin, with an explicit hash.
    done = subprocess.run(
        [*CLI, "--url", fake.url, "edit", MAIN, "--expect-sha256", bob],
        input="from stdin\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert fake.files[MAIN] == "from stdin\n"


def test_issue_11_cli_clear_uses_clear_breakpoints(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gdbridge(capsys, "clear")[0] == 0
    assert gdbridge(capsys, "clear", "--everyone", MAIN, "demo/other.gd")[0] == 0
    assert fake.bodies("/debug/clearBreakpoints") == [
        {},
        {"source": {"path": MAIN}, "everyone": True},
        {"source": {"path": "demo/other.gd"}, "everyone": True},
    ]
    assert fake.bodies("/debug/setBreakpoints") == []


def test_issue_11_cli_disconnect_force(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gdbridge(capsys, "disconnect", "--force")[0] == 0
    assert gdbridge(capsys, "disconnect", "dap", "--reason", "why", "--resume-after", "9")[0] == 0
    assert fake.bodies("/disconnect") == [
        {"force": True},
        {"service": "dap", "reason": "why", "resume_after": 9.0},
    ]


def test_issue_11_cli_reaches_every_endpoint() -> None:
    from harness import offline_routes

    commands = _subcommands()
    assert set(cli.ENDPOINTS.values()) <= set(commands)
    served = {route.path for route in offline_routes()}
    pages = {"/", "/dashboard", "/mcp"}  # a browser's and an MCP host's, not a shell's
    assert served - pages - set(cli.ENDPOINTS) == set()


def test_issue_11_cli_prints_every_path_as_res(fake: FakeBridge) -> None:
    paths = cli.Paths(BridgeClient(fake.url))
    assert paths.res(MAIN) == MAIN
    assert paths.res("demo/main.gd") == paths.res("./demo/main.gd") == MAIN
    assert paths.res(".hidden/a.gd") == "res://.hidden/a.gd"
    assert paths.res(MAIN_ABS) == paths.res(MAIN_URI) == MAIN
    assert paths.res(f"file://{PROJECT}/my%20dir/a.gd") == "res://my dir/a.gd"
    assert paths.res("/elsewhere/a.gd") == "/elsewhere/a.gd"  # outside: the real path
    assert cli.location(MAIN, 3, 5) == f"{MAIN}:3:5" and cli.location(MAIN, 3) == f"{MAIN}:3"
    assert [p for m, p, _ in fake.requests] == ["/status"]  # the root is asked once


def test_issue_11_cli_windows_file_uri() -> None:
    assert cli._local_path("file:///C:/game/a.gd") == "C:/game/a.gd"
    assert cli.file_lines("C:/game/a.gd") == ("C:/game/a.gd", None, None)
    assert cli.file_lines("C:/game/a.gd:3-9") == ("C:/game/a.gd", 3, 9)
    assert cli.file_lines(f"{MAIN}:4") == (MAIN, 4, None)


# -- the client's new methods ------------------------------------------------------------


def test_issue_11_client_status_is_the_whole_answer(fake: FakeBridge) -> None:
    client = BridgeClient(fake.url)
    status = client.status()
    assert status["overall_ready"] is True and status["sidecar"]["project"] == PROJECT
    assert client.wait_ready(1)["overall_ready"] is True
    answer = client.read_file(MAIN, 2, 3)
    assert (answer["text"], answer["sha256"]) == ("\nvar counter := 0\n", _sha(MAIN_TEXT))
    assert client.clear_breakpoints(MAIN, everyone=True)["cleared"][0]["lines"] == [3, 6]
    assert client.references(MAIN, 2, 5)[1]["uri"] == UTIL_URI
    assert client.declaration(MAIN, NOWHERE, 0) == []
    assert client.signature_help(MAIN, 5, 2) is not None
    assert client.did_open(MAIN)["open_by"] == {"gdbridge": 1}
    assert fake.bodies("/edit/read") == [{"uri": MAIN, "start_line": 2, "end_line": 3}]
    with pytest.raises(BridgeHTTPError) as err:
        client.read_file("res://nope.gd")
    assert (err.value.status, err.value.code) == (404, "no_such_file")


def test_issue_11_client_reaches_every_endpoint(fake: FakeBridge) -> None:
    from harness import offline_routes

    fake.routes["/dashboard/state"] = fake.routes["/openapi.json"] = lambda b: ok({})
    fake.routes["/lsp/didChange"] = lambda b: ok({"version": 2})
    c = BridgeClient(fake.url, agent="carol")
    calls: list[Callable[[], Any]] = [
        c.status, c.health, c.openapi, c.dashboard_state, c.connect, c.disconnect,
        lambda: c.set_breakpoints(MAIN, [3]), c.breakpoints, c.clear_breakpoints,
        c.launch, c.continue_, c.next, c.step_in, c.step_out, c.pause, c.terminate,
        c.threads, c.stack_trace, lambda: c.scopes(0), lambda: c.variables(1),
        lambda: c.evaluate("1"), c.events,
        lambda: c.completion(MAIN, 0, 0), lambda: c.hover(MAIN, 0, 0),
        lambda: c.definition(MAIN, 0, 0), lambda: c.declaration(MAIN, 0, 0),
        lambda: c.references(MAIN, 0, 0), lambda: c.signature_help(MAIN, 0, 0),
        lambda: c.document_symbols(MAIN), lambda: c.diagnostics(MAIN),
        lambda: c.did_open(MAIN), lambda: c.did_change(MAIN, 2, [{"text": ""}]),
        lambda: c.did_save(MAIN), lambda: c.did_close(MAIN),
        lambda: c.read_file(MAIN), lambda: c.apply_changes(MAIN, text=""), c.reload,
        c.game_tree, lambda: c.game_node("Main"),
        c.game_errors, c.game_monitors, c.game_screenshot,
        c.control_lease, lambda: c.take_lease(30), c.release_lease, c.audit,
        c.game_clock, c.game_suspend, c.game_resume, c.game_advance,
        lambda: c.game_time_scale(0.5),
        lambda: c.game_input([{"type": "wait", "frames": 1}]), lambda: c.game_evaluate("1"),
        lambda: c.game_set_property("speed", 1, "Main"),
    ]  # fmt: skip
    for call in calls:
        call()
    served = {route.path for route in offline_routes()} | {"/edit/read", "/debug/clearBreakpoints"}
    assert served - {"/", "/dashboard", "/mcp"} - {p for _, p, _ in fake.requests} == set()


def test_issue_14_cli_input_sends_the_steps_and_saves_the_screenshot(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "after.png"
    steps = '[{"type": "wait", "frames": 2}]'
    status, text, err = gdbridge(
        capsys, "input", steps, "--key", "Enter", "--frames", "3", "--text", "hi", "-o", str(out)
    )
    assert (status, err) == (0, "")
    assert fake.bodies("/game/input")[-1] == {
        "steps": [
            {"type": "wait", "frames": 2},
            {"type": "key", "key": "Enter", "frames": 3},
            {"type": "text", "text": "hi"},
        ],
        "screenshot": True,
    }
    assert out.read_bytes() == FAKE_PNG
    assert text.startswith("3 steps done in 31 frames (510 ms)\n" + f"{out}: 4x2 PNG")
    status, text, err = gdbridge(capsys, "set", "Main/Player", "modulate", "#ff0000")
    assert status == 0 and fake.bodies("/game/set_property")[-1]["value"] == "#ff0000"


def test_issue_13_cli_screenshot_writes_the_png(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "game.png"
    status, text, err = gdbridge(capsys, "screenshot", "-o", str(out), "--max-width", "3")
    assert (status, err) == (0, "")
    assert out.read_bytes() == FAKE_PNG
    assert text == f"{out}: 3x2 PNG, 18 bytes of the game's 4x2 window\n"
    assert fake.bodies("/game/screenshot")[-1] == {"max_width": 3}
    status, text, err = gdbridge(capsys, "--json", "screenshot")
    assert status == 0 and "data" not in json.loads(text)  # the PNG only into a file


def test_issue_14_cli_advance_until_sends_the_condition(
    fake: FakeBridge, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = gdbridge(capsys, "advance", "--until", "Main/Mover position.x >= 100.5")
    assert (status, err) == (0, "")
    assert fake.requests[-1] == (
        "POST",
        "/game/advance",
        {"until": {"path": "Main/Mover", "property": "position.x", "op": ">=", "value": 100.5}},
    )
    gdbridge(capsys, "advance", "9", "--until", "Main/Mover frames % 3 == 0 and speed > 1")
    assert fake.requests[-1][2] == {
        "frames": 9,
        "until": {"path": "Main/Mover", "expression": "frames % 3 == 0 and speed > 1"},
    }
    gdbridge(capsys, "advance", "--until", "Main/Mover position.x > 100 and speed > 1")
    assert fake.requests[-1][2]["until"]["expression"] == "position.x > 100 and speed > 1"
    gdbridge(capsys, "advance", "--until", "Main/Mover name == Mover")
    assert fake.requests[-1][2]["until"]["value"] == "Mover"
    status, _, err = gdbridge(capsys, "advance", "--until", "Main/Mover")
    assert status != 0 and "PATH PROPERTY OP VALUE" in err
    gdbridge(capsys, "time-scale", "2")
    assert fake.requests[-1] == ("POST", "/game/time_scale", {"scale": 2.0})


def test_issue_14_every_command_has_working_help(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse formats help with `%`: a bare `%` in a help text (`% 10`) made `gdbridge
    break --help` crash (found trying the CLI on Dodge the Creeps)."""
    commands = next(
        a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    assert {"break", "advance", "input", "lease"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as done:
            cli.parser().parse_args([name, "--help"])
        assert done.value.code == 0, name
        assert "usage: gdbridge" in capsys.readouterr().out, name

"""Stress the bridge: many agents at once, every answer checked against the request it answers.

    .venv/bin/python tools/stress.py [--agents 100] [--requests 20] [--timeout 30]
                                     [--duration 600] [--url http://127.0.0.1:PORT]

Without `--url` it starts its own headless editor on a copy of the demo project (free
loopback ports, removed afterwards). With `--url` (loopback only) it drives a running bridge
and writes `res://stress/agent_<k>.gd` files into its project.

Each agent holds one keep-alive connection, writes and opens its own script
`res://stress/agent_<k>.gd` (which declares `var marker_<k>_<v>`, `v` bumped by every edit),
then sends `--requests` requests cycling through: GET /status, GET /debug/breakpoints,
GET /debug/events, POST /lsp/hover, POST /lsp/completion, POST /edit/applyChanges. Every
answer carries something only the right agent can expect: its own name (`X-Agent-Id`) in
/status and /debug/breakpoints, its own file's current marker in hover and completion, its
own path and the SHA-256 of the text it sent in applyChanges. Counted:

- misrouted: an answer carrying another agent's tag;
- lost: the connection closed before a complete answer;
- hung: no answer within `--timeout` seconds;
- unexpected: a 200 whose content is not what the agent expects (a stale marker, ...);
- answers by HTTP status.

It also prints file descriptors and threads of the editor and the sidecar before the agents
connect and after they have left. Exit status 0 only when nothing was misrouted, lost, hung,
unexpected or answered with anything but 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

_ROOT = Path(__file__).resolve().parent.parent
KINDS = ("status", "breakpoints", "events", "hover", "completion", "apply")
MARKER = re.compile(r"marker_(\d+)_(\d+)")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


def script_text(agent: int, version: int) -> str:
    # Line 1 declares the marker (hover); completion asks at the start of line 5's use of it.
    # A valid script: Godot reloads every saved version and would log a parse error.
    marker = f"marker_{agent}_{version}"
    return (
        f"extends Node\nvar {marker}: int = {version}\n\n\n"
        f"func stress() -> int:\n\treturn {marker}\n"
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- a minimal HTTP/1.1 client: one keep-alive connection, nothing hidden ----------------


class Lost(Exception):
    """The connection closed before a complete answer."""


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.connects += 1
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            fields = {}
            for line in header_lines:
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            data = await self.reader.readexactly(int(fields.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise Lost(str(exc) or type(exc).__name__) from None
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# --- one agent ------------------------------------------------------------------------------


@dataclass
class Tally:
    ok: int = 0
    misrouted: int = 0
    lost: int = 0
    hung: int = 0
    unexpected: int = 0
    not_run: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    examples: list[str] = field(default_factory=list)
    connects: int = 0

    def note(self, what: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(what)


class Misrouted(Exception):
    pass


class Unexpected(Exception):
    pass


class Agent:
    def __init__(self, k: int, conn: Conn, tally: Tally, timeout: float) -> None:
        self.k = k
        self.name = f"agent-{k}"
        self.conn = conn
        self.tally = tally
        self.timeout = timeout
        self.uri = f"res://stress/agent_{k}.gd"
        self.version = 0
        self._text = ""  # what the last applyChanges sent
        self.sent = 0  # requests on this agent's current connection, for /status

    async def call(self, kind: str, method: str, path: str, body: Any = None) -> Any:
        """One request; the result on 200, None otherwise (counted either way)."""
        raw = None if body is None else json.dumps(body).encode()
        t0 = time.perf_counter()
        before = self.conn.connects
        try:
            status, data = await asyncio.wait_for(
                self.conn.request(method, path, {"X-Agent-Id": self.name}, raw), self.timeout
            )
        except asyncio.TimeoutError:
            self.conn.close()
            self.tally.hung += 1
            self.tally.note(f"{self.name} {kind}: no answer within {self.timeout:g} s")
            return None
        except (Lost, OSError) as exc:
            self.tally.lost += 1
            self.tally.note(f"{self.name} {kind}: lost ({exc})")
            return None
        if self.conn.connects != before:
            self.sent = 0
        self.sent += 1
        self.tally.latency[kind].append((time.perf_counter() - t0) * 1000)
        self.tally.statuses[status] += 1
        if status != 200:
            self.tally.note(f"{self.name} {kind}: {status} {data[:200]!r}")
            return None
        try:
            answer = json.loads(data)
            # /status answers the seed's shape at the top level; everything else in "result".
            return answer if kind == "status" else answer["result"]
        except (ValueError, KeyError) as exc:
            self.tally.unexpected += 1
            self.tally.note(f"{self.name} {kind}: undecodable 200 ({exc})")
            return None

    def check(self, kind: str, result: Any) -> None:
        try:
            getattr(self, f"_check_{kind}")(result)
        except Misrouted as exc:
            self.tally.misrouted += 1
            self.tally.note(f"{self.name} {kind}: MISROUTED {exc}")
        except (Unexpected, KeyError, TypeError, IndexError, ValueError) as exc:
            self.tally.unexpected += 1
            self.tally.note(f"{self.name} {kind}: unexpected {exc!r}"[:300])
        else:
            self.tally.ok += 1

    def _foreign_markers(self, text: str) -> list[str]:
        return [m.group(0) for m in MARKER.finditer(text) if int(m.group(1)) != self.k]

    def _expect_marker(self, text: str) -> None:
        foreign = self._foreign_markers(text)
        if foreign:
            raise Misrouted(f"holds {foreign[:3]}")
        want = f"marker_{self.k}_{self.version}"
        if want not in text:
            raise Unexpected(f"{want} not in {text[:200]!r}")

    # -- the requests ----------------------------------------------------------------------

    async def setup(self) -> bool:
        text = script_text(self.k, self.version)
        body = {"uri": self.uri, "text": text}
        result = await self.call("setup", "POST", "/edit/applyChanges", body)
        if result is None:
            return False
        opened = {"textDocument": {"uri": self.uri, "text": text}}
        return await self.call("setup", "POST", "/lsp/didOpen", opened) is not None

    async def teardown(self) -> None:
        await self.call("teardown", "POST", "/lsp/didClose", {"textDocument": {"uri": self.uri}})
        self.conn.close()

    async def one(self, kind: str) -> None:
        if kind == "status":
            result = await self.call(kind, "GET", "/status")
        elif kind == "breakpoints":
            result = await self.call(kind, "GET", "/debug/breakpoints")
        elif kind == "events":
            result = await self.call(kind, "GET", "/debug/events?since=0&limit=5")
        elif kind == "hover":
            body = {"textDocument": {"uri": self.uri}, "position": {"line": 1, "character": 6}}
            result = await self.call(kind, "POST", "/lsp/hover", body)
        elif kind == "completion":
            body = {
                "textDocument": {"uri": self.uri},
                "position": {"line": 5, "character": 8},
                "prefix": "marker_",
                "limit": 5,
            }
            result = await self.call(kind, "POST", "/lsp/completion", body)
        else:
            self.version += 1
            self._text = script_text(self.k, self.version)
            body = {"uri": self.uri, "text": self._text}
            result = await self.call(kind, "POST", "/edit/applyChanges", body)
            if result is None:
                self.version -= 1  # the file may or may not hold it; hover/completion say
        if result is not None:
            self.check(kind, result)

    def _check_status(self, result: dict[str, Any]) -> None:
        mine = [a for a in result["clients"]["agents"] if a["agent"] == self.name]
        if len(mine) != 1:
            raise Unexpected(f"{len(mine)} entries named {self.name}")
        if mine[0]["requests"] != self.sent:
            # The count is per connection: another agent's answer shows another count.
            raise Misrouted(f"request count {mine[0]['requests']}, sent {self.sent}")

    def _check_breakpoints(self, result: dict[str, Any]) -> None:
        if result["agent"] != self.name:
            raise Misrouted(f"answer for {result['agent']!r}")

    def _check_events(self, result: dict[str, Any]) -> None:
        if not isinstance(result["events"], list) or not isinstance(result["next"], int):
            raise Unexpected(f"events answer {str(result)[:200]}")

    def _check_hover(self, result: dict[str, Any]) -> None:
        self._expect_marker(json.dumps(result))

    def _check_completion(self, result: dict[str, Any]) -> None:
        labels = [item["label"] for item in result["items"]]
        self._expect_marker(" ".join(labels))
        if labels[0] != f"marker_{self.k}_{self.version}":
            raise Unexpected(f"first item {labels[0]!r}")

    def _check_apply(self, result: dict[str, Any]) -> None:
        if result["path"] != self.uri:
            raise Misrouted(f"answer for {result['path']}")
        if result["sha256"] != sha256(self._text):
            raise Unexpected("sha256 of another text")


async def run_agent(
    k: int, host: str, port: int, n: int, tally: Tally, timeout: float, deadline: float
) -> None:
    agent = Agent(k, Conn(host, port), tally, timeout)
    try:
        if not await agent.setup():
            tally.not_run += n
            return
        for j in range(n):
            if time.monotonic() > deadline:
                tally.not_run += n - j
                break
            await agent.one(KINDS[(k + j) % len(KINDS)])
        await agent.teardown()
    finally:
        tally.connects += agent.conn.connects
        agent.conn.close()


# --- processes ------------------------------------------------------------------------------


def counts(pid: int | None) -> dict[str, int] | None:
    if pid is None:
        return None
    try:
        p = psutil.Process(pid)
        return {"fds": p.num_fds(), "threads": p.num_threads()}
    except psutil.Error:
        return None


def _get(host: str, port: int, path: str) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        conn = Conn(host, port)
        try:
            status, data = await asyncio.wait_for(conn.request("GET", path, {}, None), 10)
            return status, json.loads(data)
        finally:
            conn.close()

    return asyncio.run(go())


def status_of(host: str, port: int) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, Lost, ValueError, asyncio.TimeoutError):
        code, body = _get(host, port, "/status")
        if code == 200:
            answer: dict[str, Any] = body
            return answer
    return None


def wait_ready(host: str, port: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(host, port)
        if status is not None and status["overall_ready"]:
            return status
        if time.monotonic() > deadline:
            raise SystemExit(f"the bridge on {host}:{port} never became ready: {status}")
        time.sleep(0.2)


def settle(
    host: str, port: int, pids: dict[str, int | None], before: dict[str, Any], timeout: float = 10
) -> dict[str, Any]:
    """Counts after the agents left: waits (bounded) until nobody else is connected and the
    editor's descriptors are back to where they were."""
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(host, port)
        after = {name: counts(pid) for name, pid in pids.items()}
        alone = status is not None and status["clients"]["active"] <= 1
        same = after.get("editor") == before.get("editor")
        if (alone and same) or time.monotonic() > deadline:
            return after
        time.sleep(0.2)


# --- the run --------------------------------------------------------------------------------


@dataclass
class Report:
    agents: int
    requests: int
    seconds: float
    tally: Tally
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def total(self) -> int:
        return sum(self.tally.statuses.values())

    @property
    def clean(self) -> bool:
        t = self.tally
        bad = t.misrouted + t.lost + t.hung + t.unexpected + t.not_run
        return bad == 0 and set(t.statuses) <= {200}

    def lines(self) -> list[str]:
        t = self.tally
        out = [
            f"{self.agents} agents x {self.requests} mixed requests "
            f"(+2 set-up and 1 tear-down each): {self.total} answers in {self.seconds:.1f} s, "
            f"{self.total / max(self.seconds, 1e-9):.0f} answers/s",
            f"  checked ok {t.ok}  misrouted {t.misrouted}  lost {t.lost}  hung {t.hung}  "
            f"unexpected {t.unexpected}  not run {t.not_run}  connections {t.connects}",
            "  answers by status: "
            + "  ".join(f"{code}: {n}" for code, n in sorted(t.statuses.items())),
            "  latency ms        p50      p99      max",
        ]
        for kind in ("setup", *KINDS, "teardown"):
            ms = sorted(t.latency.get(kind, []))
            if ms:
                p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
                out.append(f"    {kind:12s} {statistics.median(ms):8.1f} {p99:8.1f} {ms[-1]:8.1f}")
        out.append("  process        fds before/after   threads before/after")
        for name in ("editor", "sidecar"):
            b, a = self.before.get(name), self.after.get(name)
            if b and a:
                out.append(
                    f"    {name:10s} {b['fds']:8d} / {a['fds']:<8d} {b['threads']:8d} / "
                    f"{a['threads']}"
                )
        out += [f"  ! {e}" for e in t.examples]
        return out


def run(
    base_url: str,
    *,
    agents: int = 100,
    requests: int = 20,
    timeout: float = 30.0,
    duration: float = 600.0,
    editor_pid: int | None = None,
) -> Report:
    """Stress the bridge at `base_url` (loopback only); see the module docstring."""
    url = urllib.parse.urlsplit(base_url)
    host, port = url.hostname or "", url.port or 80
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to stress {host}: loopback only")
    status = wait_ready(host, port)
    pids = {"editor": editor_pid, "sidecar": status["sidecar"]["pid"]}
    before = {name: counts(pid) for name, pid in pids.items()}
    # Let the addon see our own /status connection go, so that all `agents` fit under its
    # limit (100 by default) at once.
    time.sleep(0.3)
    tally = Tally()
    deadline = time.monotonic() + duration

    async def everyone() -> None:
        await asyncio.gather(
            *(run_agent(k, host, port, requests, tally, timeout, deadline) for k in range(agents))
        )

    t0 = time.monotonic()
    asyncio.run(everyone())
    seconds = time.monotonic() - t0
    after = settle(host, port, pids, before)
    return Report(agents, requests, seconds, tally, before, after)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--requests", type=int, default=20, help="mixed requests per agent")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a request is hung")
    p.add_argument("--duration", type=float, default=600.0, help="stop sending after this long")
    p.add_argument("--url", help="a running bridge (loopback) instead of a fresh editor")
    args = p.parse_args()
    if not 1 <= args.agents <= 1000 or not 1 <= args.requests <= 10000:
        raise SystemExit("--agents 1..1000, --requests 1..10000")
    kw = {
        "agents": args.agents,
        "requests": args.requests,
        "timeout": args.timeout,
        "duration": args.duration,
    }
    if args.url:
        report = run(args.url, **kw)
    else:
        sys.path.insert(0, str(_ROOT / "tests"))
        from harness import Editor, make_demo_project

        with tempfile.TemporaryDirectory() as tmp:
            ed = Editor(make_demo_project(Path(tmp) / "p"))
            try:
                ed.start()
                report = run(ed.base_url, editor_pid=ed.pid, **kw)
            finally:
                ed.stop()
    print("\n".join(report.lines()))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())

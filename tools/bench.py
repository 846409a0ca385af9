"""Benchmarks P1-P7 and G1-G3 (docs/BENCHMARKS.md): each figure a ratio of two things measured
side by side in one run (or, for G3, a latency), printed with the raw numbers behind it.

G1-G3 are issue 13's figures on a running game (launched through the bridge on the bench's
copy of the demo project): G1 a screenshot through the bridge ÷ the same `put_msg` sent
straight on a DAP socket of the bench's own; G2 the scene tree of a 1,000-node game (a
generated scene in the copy), time and bytes, through the bridge ÷ straight; G3 the time
from the game's `push_error` to the record being read through a `/game/errors` long-poll.
B1 (issue 14) is the cost of a silent breakpoint hit (stop, evaluate, continue, all by the
bridge): the demo game's `_process` calls per second with and without a logpoint (and a
condition never true) on a line it runs every frame, and the ms per hit.

L1-L2 are issue 14's language-server fairness: L1 a quiet agent's hover p50 while another
agent bursts 1,000 hovers ÷ its p50 alone; L2 99 agents asking the same hover at once (time
until all are answered ÷ one hover p50, and how many requests reached Godot). `--lsp-windows`
adds the sweep the LSP window was chosen from.

Starts its own headless editors (and a sidecar served directly, the baseline of P1 and P4) on
copies of the demo project, on free loopback ports, and stops every process it started, by pid.
Each figure is the median of several runs. Not a test: it prints, it does not assert.

    .venv/bin/python tools/bench.py [--quick] [--runs N] [--only P1,P3,G2] [--idle-seconds S]

`make bench` runs it with the defaults (P7 over 60 s windows); `--quick` uses fewer requests,
shorter throughput runs and 10 s idle windows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]
import harness  # noqa: E402
from harness import (  # noqa: E402
    Editor,
    RawResponse,
    free_port,
    get_json,
    godot_binary,
    http_get,
    make_demo_project,
    read_response,
)

HOVER_ON = "counter += 1"  # hover on `counter` in demo/main.gd, as the LSP tests do
COMPLETE_AT = "counter += 1"  # completion at the start of the identifier: every global
FOCUSED_SLEEP_USEC = 6900  # interface/editor/low_processor_mode_sleep_usec, the default
UNFOCUSED_SLEEP_USEC = 100000  # what an unfocused editor sleeps per main-loop iteration
AGENTS = 100
PARK_WAIT = 1.3  # a little over the pump's WARM_USEC (godot_bridge.gd)


# --- what is measured, and how it is printed -----------------------------------------------


@dataclass
class Figure:
    ident: str
    measure: str
    limit: float | None  # None: reported, no target
    at_least: bool = False  # the ratio must reach the limit (P4), else stay under it
    unit: str = ""
    ratios: list[float] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def target(self) -> str:
        if self.limit is None:
            return "—"
        return f"{'≥' if self.at_least else '≤'} {self.limit:g}{self.unit}"

    def verdict(self) -> str:
        r = self.ratio
        if r is None or self.limit is None:
            return "—"
        return "met" if (r >= self.limit if self.at_least else r <= self.limit) else "MISSED"


# The figures and targets (docs/BENCHMARKS.md).
FIGURES = (
    Figure("P1", "GET /status p50, through the addon ÷ sidecar served directly", 1.5),
    Figure("P2", "P1's addon p50, editor sleeping 100 ms per frame ÷ 6.9 ms", 1.2),
    Figure("P3", "/lsp/hover p50, through the bridge ÷ straight to Godot's LSP", 1.2),
    Figure("P4", f"req/s, {AGENTS} keep-alive agents on GET /status, addon ÷ direct", 0.7, True),
    Figure("P5", "added RSS per idle agent (editor + sidecar), 0 → 100 agents", 16, unit=" KiB"),
    Figure("P6", "default /lsp/completion answer bytes ÷ Godot's raw answer", 0.1),
    Figure("P7", "idle CPU time with the addon (editor + sidecar) ÷ without", 1.05),
    Figure("G1", "screenshot p50, GET /game/screenshot (PNG) ÷ put_msg straight on DAP", 1.2),
    Figure("G2", "GET /game/tree p50 of a 1,000-node game, full depth ÷ put_msg straight", None),
    Figure("G3", "push_error → readable through a /game/errors long-poll, p50", 50, unit=" ms"),
    Figure("L1", "quiet agent's /lsp/hover p50 during a 1,000-hover burst ÷ alone", 2.0),
    Figure("L2", "99 agents' same /lsp/hover at once, all answered ÷ one hover p50", None),
    Figure("B1", "a logpoint on a line run every frame: ms per silent hit", None, unit=" ms"),
)
GAME_FIGURES = ("G1", "G2", "G3")
LSP_FIGURES = ("L1", "L2")


def pct(times: list[float], q: float) -> float:
    """The q-quantile (0..1) of `times`, nearest rank."""
    t = sorted(times)
    return t[min(len(t) - 1, max(0, round(q * len(t)) - 1))]


def fmt_runs(values: list[float], unit: str = "", digits: int = 3) -> str:
    runs = ", ".join(f"{v:.{digits}f}" for v in values)
    return f"{statistics.median(values):.{digits}f}{unit} (runs: {runs})"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


def say(*args: Any) -> None:
    print(*args, flush=True)


# --- processes ----------------------------------------------------------------------------


class Processes:
    """Everything the bench started, ended by pid however the bench ends."""

    def __init__(self) -> None:
        self._editors: list[Editor] = []
        self._pids: set[int] = set()

    def editor(self, editor: Editor) -> Editor:
        self._editors.append(editor)
        return editor

    def popen(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> int:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._pids.add(proc.pid)
        return proc.pid

    def stop_pid(self, pid: int) -> None:
        for p in _with_children(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
        for p in _with_children(pid) or [pid]:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(p, 0)
        self._pids.discard(pid)

    def stop_editor(self, editor: Editor) -> None:
        editor.stop()
        if editor in self._editors:
            self._editors.remove(editor)

    def stop_all(self) -> None:
        for editor in list(self._editors):
            self.stop_editor(editor)
        for pid in list(self._pids):
            self.stop_pid(pid)


def _with_children(pid: int) -> list[int]:
    try:
        proc = psutil.Process(pid)
        return [pid] + [c.pid for c in proc.children(recursive=True)]
    except psutil.Error:
        return []


def godot_version() -> str:
    out = subprocess.run([godot_binary(), "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "?"


def editor_settings_home(root: Path, sleep_usec: int, version: str) -> dict[str, str]:
    """Environment for an editor whose main loop sleeps `sleep_usec` per iteration (how an
    unfocused editor is emulated headless: see GODOT_NOTES)."""
    major_minor = ".".join(version.split(".")[:2])
    home = root / f"xdg-{sleep_usec}"
    (home / "godot").mkdir(parents=True, exist_ok=True)
    (home / "godot" / f"editor_settings-{major_minor}.tres").write_text(
        '[gd_resource type="EditorSettings" format=3]\n\n[resource]\n'
        f"interface/editor/low_processor_mode_sleep_usec = {sleep_usec}\n"
    )
    return {"XDG_CONFIG_HOME": str(home)}


def start_editor(procs: Processes, root: Path, name: str, env: dict[str, str]) -> Editor:
    project = make_demo_project(root / name)
    editor = procs.editor(Editor(project, env=env))
    editor.start()
    return editor


class PlainEditor(Editor):
    """A headless editor on the demo project with the addon disabled (P7's baseline), started
    the same way as the harness starts one with the addon (same terminal, same output reader)."""

    def start(self, timeout: float = 120.0) -> PlainEditor:
        godot_file = self.project / "project.godot"
        text = re.sub(r"\[editor_plugins\]\n+enabled=.*\n", "", godot_file.read_text())
        godot_file.write_text(text)
        self.spawn(timeout)
        self.wait_for(r"Godot Engine v\d", timeout)
        return self


class EmptyPluginEditor(PlainEditor):
    """P7's reference: the plugin enabled, but its script an empty EditorPlugin. What Godot
    itself spends on an enabled plugin, whatever the plugin does."""

    def start(self, timeout: float = 120.0) -> EmptyPluginEditor:
        (self.project / "addons" / "godot_debug_connection" / "plugin.gd").write_text(
            "@tool\nextends EditorPlugin\n"
        )
        self.spawn(timeout)
        self.wait_for(r"Godot Engine v\d", timeout)
        return self


def start_direct_sidecar(procs: Processes, editor: Editor) -> int:
    """The same sidecar application served straight on a loopback socket, talking to the same
    editor's LSP and DAP: the baseline without the addon hop."""
    port = free_port()
    args = [sys.executable, "-m", "sidecar", "--serve", str(port), "--project", str(editor.project)]
    args += ["--lsp-port", str(editor.lsp_port), "--dap-port", str(editor.dap_port)]
    procs.popen(
        args, editor.project / "direct-sidecar.log", env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    wait_ready(f"http://127.0.0.1:{port}")
    return port


def wait_ready(base: str, timeout: float = 90) -> None:
    """Until `GET /status` says both of Godot's servers are connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if get_json(base + "/status", timeout=2)["overall_ready"]:
                return
        time.sleep(0.2)
    raise SystemExit(f"{base}: services never became ready")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def tree(pid: int) -> list[int]:
    return _with_children(pid)


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total // 1024


# --- clients ------------------------------------------------------------------------------


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def keep_alive_ms(
    port: int, req: bytes, n: int, warmup: int, good: Callable[[RawResponse], bool], what: str
) -> list[float]:
    """`n` sequential round trips of `req` on one keep-alive connection, in ms (after
    `warmup` unmeasured ones); an answer that is not `good` ends the bench."""
    times = []
    buf = bytearray()
    with _connect(port) as s:
        for k in range(warmup + n):
            t0 = time.perf_counter()
            s.sendall(req)
            resp = read_response(s, buf)
            dt = (time.perf_counter() - t0) * 1000
            if not good(resp):
                raise SystemExit(f"{what} answered {resp.status}: {resp.body[:300]!r}")
            if k >= warmup:
                times.append(dt)
    return times


def status_ms(port: int, n: int, warmup: int = 20) -> list[float]:
    """`n` sequential keep-alive `GET /status` round trips on one connection, in ms."""
    ok = lambda r: r.status == 200  # noqa: E731
    return keep_alive_ms(port, http_get(port, "/status"), n, warmup, ok, "GET /status")


def http_post(port: int, path: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def position_of(project: Path, needle: str, delta: int) -> dict[str, int]:
    lines = (project / "demo" / "main.gd").read_text().splitlines()
    line = next(i for i, t in enumerate(lines) if needle in t)
    return {"line": line, "character": lines[line].index(needle) + delta}


def bridge_hover_ms(port: int, project: Path, n: int, warmup: int = 3) -> list[float]:
    """`/lsp/hover` through the bridge, sequential on one keep-alive connection."""
    body = {
        "textDocument": {"uri": "res://demo/main.gd"},
        "position": position_of(project, HOVER_ON, 1),
    }
    req = http_post(port, "/lsp/hover", body)
    ok = lambda r: r.status == 200 and "counter" in r.body.decode()  # noqa: E731
    return keep_alive_ms(port, req, n, warmup, ok, "/lsp/hover")


class FramedConnection:
    """A connection of the bench's own to one of Godot's servers: Content-Length framed JSON,
    as both its language server and its debug adapter speak it."""

    peer = "server"

    def __init__(self, port: int) -> None:
        self.sock = _connect(port)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def write(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def read(self) -> tuple[dict[str, Any], int]:
        """One message and its size on the wire (header included)."""
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, _, _ = bytes(self.buf).partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: *(\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        start = len(head) + 4
        while len(self.buf) < start + length:
            self._recv()
        body = bytes(self.buf[start : start + length])
        del self.buf[: start + length]
        return json.loads(body), start + length

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError(f"Godot's {self.peer} closed the connection")
        self.buf += chunk


class LspClient(FramedConnection):
    """A connection of our own to Godot's language server (Content-Length framed JSON-RPC)."""

    peer = "language server"

    def __init__(self, port: int, project: Path) -> None:
        super().__init__(port)
        self.project = project
        self._id = 0
        init = {"processId": None, "rootUri": project.as_uri(), "rootPath": str(project)}
        self.request("initialize", init, timeout=90)
        self.notify("initialized", {})

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.write({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 10) -> tuple[dict[str, Any], int]:
        self._id += 1
        ident = self._id
        self.write({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        self.sock.settimeout(timeout)
        try:
            while True:
                msg, size = self.read()
                # Godot may echo numeric ids as floats.
                if "method" not in msg and msg.get("id") in (ident, float(ident)):
                    return msg, size
        finally:
            self.sock.settimeout(None)


def direct_hover_ms(lsp: LspClient, n: int, warmup: int = 3) -> list[float]:
    main = lsp.project / "demo" / "main.gd"
    params = {
        "textDocument": {"uri": main.as_uri()},
        "position": position_of(lsp.project, HOVER_ON, 1),
    }
    times = []
    for k in range(warmup + n):
        t0 = time.perf_counter()
        msg, _ = lsp.request("textDocument/hover", params)
        dt = (time.perf_counter() - t0) * 1000
        if "counter" not in json.dumps(msg.get("result")):
            raise SystemExit(f"Godot's hover answered {msg!r:.300}")
        if k >= warmup:
            times.append(dt)
    return times


class _LoadAgent(asyncio.Protocol):
    """One keep-alive agent asking `GET /status` again as soon as each answer is complete."""

    def __init__(self, request: bytes, counts: list[int], running: list[bool]) -> None:
        self.request = request
        self.counts = counts
        self.running = running
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = re.search(rb"\r\ncontent-length: *(\d+)", self.buf[:end], re.I)
            length = int(m.group(1)) if m else 0
            total = end + 4 + length
            if len(self.buf) < total:
                return
            if not self.buf.startswith(b"HTTP/1.1 200"):
                self._finish(RuntimeError(bytes(self.buf[:200]).decode("latin-1")))
                return
            del self.buf[:total]
            self.counts[0] += 1
            if not self.running[0]:
                self._finish(None)
                return
            assert self.transport is not None
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("closed"))

    def _finish(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


async def _throughput(port: int, agents: int, seconds: float, warmup: float) -> float:
    loop = asyncio.get_running_loop()
    counts, running = [0], [True]
    request = http_get(port, "/status")
    conns = []
    for _ in range(agents):
        _, proto = await loop.create_connection(
            lambda: _LoadAgent(request, counts, running), "127.0.0.1", port
        )
        conns.append(proto)
    await asyncio.sleep(warmup)
    start_count, t0 = counts[0], time.perf_counter()
    await asyncio.sleep(seconds)
    done, elapsed = counts[0] - start_count, time.perf_counter() - t0
    running[0] = False
    await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), 30)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0.3)  # let the server see the agents go
    return done / elapsed


def throughput(port: int, agents: int, seconds: float, warmup: float = 0.5) -> float:
    """Requests per second of `agents` concurrent keep-alive agents on `GET /status`."""
    return asyncio.run(_throughput(port, agents, seconds, warmup))


def open_idle_agents(port: int, n: int) -> list[socket.socket]:
    """`n` agents that each asked one `GET /status` and then keep their connection open."""
    socks: list[socket.socket] = []
    for _ in range(n):
        s = _connect(port)
        s.sendall(http_get(port, "/status"))
        resp = read_response(s)
        if resp.status != 200:
            raise SystemExit(f"agent {len(socks) + 1} got {resp.status}")
        socks.append(s)
    return socks


# --- the figures --------------------------------------------------------------------------


@dataclass
class Plan:
    runs: int
    status_n: int
    hover_n: int
    load_seconds: float
    idle_seconds: float
    idle_pairs: int
    idle_reference: bool
    only: set[str]
    shot_n: int = 20
    tree_n: int = 10
    errors_n: int = 15

    def wants(self, *idents: str) -> bool:
        return not self.only or bool(self.only.intersection(idents))


def settle() -> None:
    """Let every pump go back to sleep (it parks 1 s after the last traffic), so one target's
    measurement is not taken while another's pump is still polling."""
    time.sleep(PARK_WAIT)


def bench_latency(
    plan: Plan, p1: Figure, p2: Figure, fast: Editor, slow: Editor | None, direct: int
) -> None:
    say(f"\nP1/P2: GET /status, {plan.status_n} sequential keep-alive requests per run and target")
    say("  (every block starts with all pumps parked; the two editors take turns going first)")
    a50, d50, u50, a99, d99 = [], [], [], [], []
    for run in range(plan.runs):
        settle()
        d = status_ms(direct, plan.status_n)
        d50.append(pct(d, 0.5))
        d99.append(pct(d, 0.99))
        unfocused: list[float] = []
        order = [fast, slow] if run % 2 == 0 else [slow, fast]
        for ed in order:
            if ed is None:
                continue
            settle()
            times = status_ms(ed.bridge_port, plan.status_n)
            if ed is fast:
                a = times
            else:
                unfocused = times
        a50.append(pct(a, 0.5))
        a99.append(pct(a, 0.99))
        p1.ratios.append(a50[-1] / d50[-1])
        line = (
            f"  run {run + 1}: direct p50 {d50[-1]:.3f} p99 {d99[-1]:.3f} ms | "
            f"addon p50 {a50[-1]:.3f} p99 {a99[-1]:.3f} ms"
        )
        if unfocused:
            u50.append(pct(unfocused, 0.5))
            p2.ratios.append(u50[-1] / a50[-1])
            line += (
                f" | addon, unfocused editor p50 {u50[-1]:.3f} p99 {pct(unfocused, 0.99):.3f} ms"
            )
        say(line)
    p99_ratio = statistics.median(x / y for x, y in zip(a99, d99, strict=True))
    p1.raw = [
        f"addon p50 {fmt_runs(a50, ' ms')}",
        f"direct p50 {fmt_runs(d50, ' ms')}",
        f"addon p99 {fmt_runs(a99, ' ms')}",
        f"direct p99 {fmt_runs(d99, ' ms')}",
    ]
    p1.note = f"p99 ratio {p99_ratio:.2f}"
    if u50:
        p2.raw = [
            f"addon p50, editor sleeping {UNFOCUSED_SLEEP_USEC} us {fmt_runs(u50, ' ms')}",
            f"addon p50, editor sleeping {FOCUSED_SLEEP_USEC} us {fmt_runs(a50, ' ms')}",
        ]


def bench_hover(plan: Plan, p3: Figure, editor: Editor) -> None:
    say(f"\nP3: /lsp/hover, {plan.hover_n} sequential requests per run")
    lsp = LspClient(editor.lsp_port, editor.project)
    bridged50, direct50 = [], []
    try:
        for run in range(plan.runs):
            d = direct_hover_ms(lsp, plan.hover_n)
            b = bridge_hover_ms(editor.bridge_port, editor.project, plan.hover_n)
            settle()
            bridged50.append(pct(b, 0.5))
            direct50.append(pct(d, 0.5))
            p3.ratios.append(bridged50[-1] / direct50[-1])
            say(
                f"  run {run + 1}: bridge p50 {pct(b, 0.5):.3f} p99 {pct(b, 0.99):.3f} ms | "
                f"Godot's LSP p50 {pct(d, 0.5):.3f} p99 {pct(d, 0.99):.3f} ms"
            )
    finally:
        lsp.close()
    p3.raw = [
        f"bridge p50 {fmt_runs(bridged50, ' ms')}",
        f"Godot's LSP p50 {fmt_runs(direct50, ' ms')}",
    ]


def bench_completion(plan: Plan, p6: Figure, editor: Editor) -> None:
    say("\nP6: /lsp/completion answer size")
    position = position_of(editor.project, COMPLETE_AT, 0)
    main = editor.project / "demo" / "main.gd"
    lsp = LspClient(editor.lsp_port, editor.project)
    try:
        lsp.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": main.as_uri(),
                    "languageId": "gdscript",
                    "version": 1,
                    "text": main.read_text(),
                }
            },
        )
        params = {"textDocument": {"uri": main.as_uri()}, "position": position}
        for _ in range(plan.runs):
            msg, raw_size = lsp.request("textDocument/completion", params, timeout=30)
            items = msg.get("result")
            items = items.get("items") if isinstance(items, dict) else items
            body = {"textDocument": {"uri": "res://demo/main.gd"}, "position": position}
            with _connect(editor.bridge_port) as s:
                s.sendall(http_post(editor.bridge_port, "/lsp/completion", body))
                resp = read_response(s)
            head = sum(len(k) + len(v) + 4 for k, v in resp.headers.items()) + 19
            ours = head + len(resp.body)
            result = json.loads(resp.body)["result"]
            p6.ratios.append(ours / raw_size)
            say(
                f"  Godot: {raw_size} bytes, {len(items or [])} items | bridge: {ours} bytes "
                f"({len(resp.body)} body), {len(result['items'])} of {result['total']} items"
            )
            p6.raw = [
                f"bridge {ours} bytes (headers + body)",
                f"Godot {raw_size} bytes (header + body)",
            ]
    finally:
        lsp.close()


def bench_throughput(plan: Plan, p4: Figure, editor: Editor, direct: int) -> None:
    say(
        f"\nP4: {AGENTS} concurrent keep-alive agents on GET /status, "
        f"{plan.load_seconds:g} s per run"
    )
    addon, base = [], []
    for run in range(plan.runs):
        base.append(throughput(direct, AGENTS, plan.load_seconds))
        addon.append(throughput(editor.bridge_port, AGENTS, plan.load_seconds))
        settle()
        p4.ratios.append(addon[-1] / base[-1])
        say(f"  run {run + 1}: addon {addon[-1]:.0f} req/s | direct {base[-1]:.0f} req/s")
    p4.raw = [f"addon {fmt_runs(addon, ' req/s', 0)}", f"direct {fmt_runs(base, ' req/s', 0)}"]


def bench_memory(p5: Figure, editor: Editor, deltas: list[float]) -> None:
    """One run of P5 on an editor that has not served agents yet (freed memory is kept by
    the allocators, so a second run on the same processes would measure too little)."""
    pids = [editor.pid, *editor.sidecar_pids()]
    time.sleep(1)
    before = rss_kib(pids)
    socks = open_idle_agents(editor.bridge_port, AGENTS)
    time.sleep(1)
    after = rss_kib(pids)
    for s in socks:
        s.close()
    per_agent = (after - before) / AGENTS
    deltas.append(per_agent)
    p5.ratios.append(per_agent)
    say(
        f"  editor + sidecar RSS: {before} KiB with 0 agents, {after} KiB with {AGENTS}: "
        f"{per_agent:.1f} KiB each"
    )
    p5.raw = [f"added per idle agent {fmt_runs(deltas, ' KiB', 1)}"]


def bench_idle_cpu(
    plan: Plan, p7: Figure, procs: Processes, root: Path, env: dict[str, str]
) -> Editor:
    """P7 on `plan.idle_pairs` editors with the addon and as many without, all idle side by
    side: identical editors differ by a few percent in idle CPU among themselves, so one pair
    alone would measure that as much as the addon. Returns one editor with the addon (still
    running, for P5)."""
    pairs = plan.idle_pairs
    say(
        f"\nP7: idle CPU time over {plan.idle_seconds:g} s windows, {pairs} editors with the addon "
        f"(editor + sidecar) and {pairs} without, side by side"
    )
    ours: list[Editor] = []
    theirs: list[Editor] = []
    empty: list[Editor] = []
    for k in range(pairs):
        plain = procs.editor(PlainEditor(make_demo_project(root / f"p7-plain-{k}"), env=env))
        plain.start()
        theirs.append(plain)
        ours.append(start_editor(procs, root, f"p7-addon-{k}", env))
        if plan.idle_reference:
            ref = EmptyPluginEditor(make_demo_project(root / f"p7-empty-{k}"), env=env)
            empty.append(procs.editor(ref).start())
    for ed in ours:
        wait_ready(ed.base_url)
    time.sleep(10)  # every editor finishes its first scan and import
    with_all, with_editor, without, reference = [], [], [], []
    for run in range(plan.runs):
        trees = {id(ed): tree(ed.pid) for ed in ours + theirs + empty}
        start = {k: cpu_seconds(v) for k, v in trees.items()}
        start_ed = {id(ed): cpu_seconds([ed.pid]) for ed in ours}
        time.sleep(plan.idle_seconds)
        used = {k: cpu_seconds(v) - start[k] for k, v in trees.items()}
        with_all.append(sum(used[id(ed)] for ed in ours) / pairs)
        with_editor.append(sum(cpu_seconds([ed.pid]) - start_ed[id(ed)] for ed in ours) / pairs)
        without.append(sum(used[id(ed)] for ed in theirs) / pairs)
        p7.ratios.append(with_all[-1] / without[-1])
        if empty:
            reference.append(sum(used[id(ed)] for ed in empty) / pairs / without[-1])
        each = ", ".join(f"{used[id(ed)]:.2f}" for ed in ours)
        each_plain = ", ".join(f"{used[id(ed)]:.2f}" for ed in theirs)
        say(
            f"  run {run + 1}: with the addon {with_all[-1]:.3f} s per editor ({each}; editor "
            f"process alone {with_editor[-1]:.3f} s) | without {without[-1]:.3f} s ({each_plain})"
        )
    # How fast a parked pump wakes up: the first request after the idle windows.
    t0 = time.perf_counter()
    status_ms(ours[0].bridge_port, 1, warmup=0)
    first = (time.perf_counter() - t0) * 1000
    editor_only = statistics.median(e / t for e, t in zip(with_editor, without, strict=True))
    p7.raw = [
        f"with the addon, editor + sidecar {fmt_runs(with_all, ' s')}",
        f"without {fmt_runs(without, ' s')}",
        f"editor process alone: ratio {editor_only:.3f}",
        f"first request after the idle windows {first:.1f} ms (new connection)",
    ]
    if reference:
        p7.raw.append(f"an empty EditorPlugin instead ÷ without: {fmt_runs(reference)}")
        say(f"  reference, an empty EditorPlugin ÷ without: {fmt_runs(reference)}")
    for ed in ours[1:] + theirs + empty:
        procs.stop_editor(ed)
    return ours[0]


# --- issue 13: the running game (G1-G3) -----------------------------------------------------

BRANCHES, TWIGS, LEAVES = 9, 10, 10  # 1 + 9 + 90 + 900 = 1,000 nodes
NODES_SCENE = "res://bench/nodes.tscn"
FULL_DEPTH = 100
SHOT_IDS = 1_000_000  # the bench's own screenshot request ids, well apart from the bridge's
GAME_WAIT = 60.0  # seconds for a launched game to be up (first frames on a loaded machine)
PUSHED_AT = re.compile(r"demo-error #\d+ at (\d+\.\d+)")
ERROR_PERIOD = 0.2  # seconds between the demo game's errors in G3 (--demo-error-period)


def nodes_scene() -> str:
    """The 1,000-node scene of G2: a root Node2D, 9 branches of 10 twigs of 10 leaves."""
    out = ["[gd_scene format=3]", "", '[node name="Nodes" type="Node2D"]']
    for b in range(BRANCHES):
        out += ["", f'[node name="Branch{b}" type="Node2D" parent="."]']
        for t in range(TWIGS):
            out += ["", f'[node name="Twig{t}" type="Node2D" parent="Branch{b}"]']
            for leaf in range(LEAVES):
                out += [
                    "",
                    f'[node name="Leaf{leaf}" type="Node2D" parent="Branch{b}/Twig{t}"]',
                    f"position = Vector2({leaf * 10}, {t * 10})",
                ]
    return "\n".join(out) + "\n"


def start_game_editor(procs: Processes, root: Path, env: dict[str, str]) -> Editor:
    """An editor on a copy of the demo project that also holds G2's 1,000-node scene."""
    project = make_demo_project(root / "game")
    (project / "bench").mkdir()
    (project / "bench" / "nodes.tscn").write_text(nodes_scene())
    editor = procs.editor(Editor(project, env=env))
    editor.start()
    wait_ready(editor.base_url)
    return editor


class DapClient(FramedConnection):
    """A DAP connection of the bench's own to the editor, the baseline of G1 and G2: it asks
    for the game's messages (`godot/custom_data`) and sends `godot/put_msg` as any DAP client
    would, with nothing in between."""

    peer = "debug adapter"

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.seq = 0
        init = {"clientID": "bench", "adapterID": "godot", "pathFormat": "path"}
        self.request("initialize", {**init, "linesStartAt1": True, "columnsStartAt1": True})
        # Only `launch` sets the flag; without `configurationDone` it launches nothing.
        self.send("launch", {"godot/custom_data": True})

    def send(self, command: str, arguments: Any) -> int:
        self.seq += 1
        self.write({"seq": self.seq, "type": "request", "command": command, "arguments": arguments})
        return self.seq

    def drain(self, quiet: float = 0.02) -> None:
        """Reads and forgets what is waiting (the game sends every DAP client the answers to
        the bridge's requests too), until the socket stays quiet for `quiet` seconds."""
        self.sock.settimeout(quiet)
        try:
            while True:
                self._recv()
        except (TimeoutError, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(None)
        while b"\r\n\r\n" in self.buf:
            head, _, _ = bytes(self.buf).partition(b"\r\n\r\n")
            m = re.search(rb"Content-Length: *(\d+)", head, re.I)
            end = len(head) + 4 + (int(m.group(1)) if m else 0)
            if len(self.buf) < end:
                break
            del self.buf[:end]

    def request(self, command: str, arguments: Any, timeout: float = 30) -> dict[str, Any]:
        seq = self.send(command, arguments)
        self.sock.settimeout(timeout)
        try:
            while True:
                msg, _ = self.read()
                if msg.get("type") == "response" and msg.get("request_seq") in (seq, float(seq)):
                    return msg
        finally:
            self.sock.settimeout(None)

    def put_msg(
        self, message: str, data: list[Any], answer: str, first: Any = None, timeout: float = 30
    ) -> tuple[list[Any], int]:
        """Sends `message` to the game and waits for its `answer` (whose first datum is
        `first`, when given): the answer's data and its size on the DAP wire."""
        self.send("godot/put_msg", {"message": message, "data": data})
        self.sock.settimeout(timeout)
        try:
            while True:
                msg, size = self.read()
                body = msg.get("body") or {}
                if msg.get("event") != "godot/custom_data" or body.get("message") != answer:
                    continue
                got = body.get("data") or []
                if first is None or (got and got[0] == first):
                    return got, size
        finally:
            self.sock.settimeout(None)


def http_call(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[Any, float]:
    """One GET on a connection of its own: (response, ms)."""
    with _connect(port) as s:
        t0 = time.perf_counter()
        s.sendall(http_get(port, path, headers))
        resp = read_response(s)
        return resp, (time.perf_counter() - t0) * 1000


def launch_game(editor: Editor, body: dict[str, Any]) -> None:
    """Launches the game through the bridge and waits until it runs its main loop (it has
    sent a frame of monitors: a screenshot asked for earlier is dropped)."""
    before = harness.ok_json(editor, "GET", "/game/monitors", agent="bench")["game"]
    harness.ok_json(editor, "POST", "/debug/launch", body, agent="bench")
    deadline = time.monotonic() + GAME_WAIT
    while time.monotonic() < deadline:
        monitors = harness.ok_json(editor, "GET", "/game/monitors", agent="bench")
        if monitors["game"] > before and monitors["frames"] >= 1:
            return
        time.sleep(0.2)
    raise SystemExit("the launched game never reported a frame")


def end_game(editor: Editor) -> None:
    harness.call_json(editor, "POST", "/debug/terminate", {}, agent="bench")
    time.sleep(0.5)


def bridge_shot_ms(port: int, n: int, warmup: int = 2) -> list[float]:
    """`GET /game/screenshot` as PNG, sequential on one keep-alive connection."""
    req = http_get(port, "/game/screenshot", {"Accept": "image/png", "X-Agent-Id": "bench"})
    ok = lambda r: r.status == 200 and r.body.startswith(b"\x89PNG")  # noqa: E731
    return keep_alive_ms(port, req, n, warmup, ok, "GET /game/screenshot")


def direct_shot_ms(dap: DapClient, n: int, first_id: int, warmup: int = 2) -> list[float]:
    """`scene:rq_screenshot` straight on our DAP socket, the answer awaited and its PNG read
    (and removed: the game leaves it in /tmp), as the bridge does."""
    times = []
    for k in range(warmup + n):
        dap.drain()
        shot = first_id + k
        t0 = time.perf_counter()
        data, _ = dap.put_msg("scene:rq_screenshot", [shot], "game_view:get_screenshot", shot)
        png = Path(str(data[3])).read_bytes()
        dt = (time.perf_counter() - t0) * 1000
        Path(str(data[3])).unlink(missing_ok=True)
        if not png.startswith(b"\x89PNG"):
            raise SystemExit(f"the game's screenshot {data[3]} is not a PNG")
        if k >= warmup:
            times.append(dt)
    return times


def bench_screenshot(plan: Plan, g1: Figure, editor: Editor) -> None:
    say(f"\nG1: screenshot of the running demo game, {plan.shot_n} sequential requests per run")
    launch_game(editor, {})
    try:
        resp, _ = http_call(editor.bridge_port, "/game/screenshot", {"Accept": "image/png"})
        if resp.status != 200:
            g1.note = f"not run: GET /game/screenshot answered {resp.status} {resp.body[:160]!r}"
            say(f"  {g1.note}")
            return
        dap = DapClient(editor.dap_port)
        bridged50, direct50 = [], []
        try:
            for run in range(plan.runs):
                d = direct_shot_ms(dap, plan.shot_n, SHOT_IDS + run * 1000)
                b = bridge_shot_ms(editor.bridge_port, plan.shot_n)
                bridged50.append(pct(b, 0.5))
                direct50.append(pct(d, 0.5))
                g1.ratios.append(bridged50[-1] / direct50[-1])
                say(
                    f"  run {run + 1}: bridge p50 {pct(b, 0.5):.1f} p99 {pct(b, 0.99):.1f} ms "
                    f"({len(resp.body)} bytes) | straight p50 {pct(d, 0.5):.1f} "
                    f"p99 {pct(d, 0.99):.1f} ms"
                )
        finally:
            dap.close()
        g1.raw = [
            f"bridge p50 {fmt_runs(bridged50, ' ms', 1)}",
            f"straight on DAP p50 {fmt_runs(direct50, ' ms', 1)}",
            f"PNG {len(resp.body)} bytes",
        ]
    finally:
        end_game(editor)


class Keepalive:
    """Sequential GETs on one keep-alive connection to the bridge."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = _connect(port)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def get(self, path: str) -> tuple[Any, float]:
        """(response, ms)."""
        t0 = time.perf_counter()
        self.sock.sendall(http_get(self.port, path, {"X-Agent-Id": "bench"}))
        resp = read_response(self.sock, self.buf)
        return resp, (time.perf_counter() - t0) * 1000


def bridge_tree(bridge: Keepalive, depth: int | None) -> tuple[float, int, dict[str, Any]]:
    """One `GET /game/tree` (depth left out: the default): ms, answer bytes, result."""
    resp, ms = bridge.get("/game/tree" + ("" if depth is None else f"?depth={depth}"))
    if resp.status != 200:
        raise SystemExit(f"GET /game/tree answered {resp.status}: {resp.body[:300]!r}")
    return ms, len(resp.body), json.loads(resp.body)["result"]


def direct_tree_ms(dap: DapClient) -> tuple[float, int]:
    dap.drain()
    t0 = time.perf_counter()
    _, size = dap.put_msg("scene:request_scene_tree", [], "scene:scene_tree")
    return (time.perf_counter() - t0) * 1000, size


def bench_tree(plan: Plan, g2: Figure, editor: Editor) -> None:
    say(f"\nG2: GET /game/tree of a 1,000-node game, {plan.tree_n} requests per run and kind")
    launch_game(editor, {"scene": NODES_SCENE})
    dap = DapClient(editor.dap_port)
    bridge = Keepalive(editor.bridge_port)
    try:
        deadline = time.monotonic() + GAME_WAIT
        while bridge_tree(bridge, 0)[2]["node_count"] < 1000:
            if time.monotonic() > deadline:
                raise SystemExit("the game's tree never reached 1,000 nodes")
            time.sleep(0.2)
        short50, full50, direct50 = [], [], []
        sizes: dict[str, int] = {}
        count = 0
        for run in range(plan.runs):
            short, full, direct = [], [], []
            for _ in range(plan.tree_n):
                ms, sizes["default"], _ = bridge_tree(bridge, None)
                short.append(ms)
                ms, sizes["full"], result = bridge_tree(bridge, FULL_DEPTH)
                full.append(ms)
                count = result["node_count"]
                ms, sizes["godot"] = direct_tree_ms(dap)
                direct.append(ms)
            short50.append(pct(short, 0.5))
            full50.append(pct(full, 0.5))
            direct50.append(pct(direct, 0.5))
            g2.ratios.append(full50[-1] / direct50[-1])
            say(
                f"  run {run + 1}: default depth p50 {short50[-1]:.1f} ms, {sizes['default']} B "
                f"| full depth p50 {full50[-1]:.1f} ms, {sizes['full']} B | straight p50 "
                f"{direct50[-1]:.1f} ms, Godot's answer {sizes['godot']} B on the DAP wire"
            )
        g2.raw = [
            f"{count} nodes in the game's tree",
            f"default depth p50 {fmt_runs(short50, ' ms', 1)}, {sizes['default']} bytes",
            f"full depth p50 {fmt_runs(full50, ' ms', 1)}, {sizes['full']} bytes",
            f"straight on DAP p50 {fmt_runs(direct50, ' ms', 1)}, {sizes['godot']} bytes",
        ]
    finally:
        bridge.close()
        dap.close()
        end_game(editor)


def error_latencies_ms(port: int, n: int, since: int) -> tuple[list[float], list[float]]:
    """`n` errors read by a `/game/errors` long-poll, each re-armed as soon as the last
    answered: for each, ms from the game's push_error (the Unix time in its message) to the
    answer being read, and to the bridge receiving the record."""
    readable: list[float] = []
    received: list[float] = []
    buf = bytearray()
    with _connect(port) as s:
        while len(readable) < n:
            path = f"/game/errors?since={since}&wait=10&warnings=false"
            s.sendall(http_get(port, path, {"X-Agent-Id": "bench"}))
            resp = read_response(s, buf)
            now = time.time()
            if resp.status != 200:
                raise SystemExit(f"GET /game/errors answered {resp.status}: {resp.body[:300]!r}")
            page = json.loads(resp.body)["result"]
            since = page["next"]
            for error in page["errors"]:
                pushed = PUSHED_AT.match(error["message"])
                if pushed:
                    readable.append((now - float(pushed.group(1))) * 1000)
                    received.append((error["time"] - float(pushed.group(1))) * 1000)
    return readable, received


def bench_errors(plan: Plan, g3: Figure, editor: Editor) -> None:
    say(
        f"\nG3: the game pushes an error every {ERROR_PERIOD:g} s; {plan.errors_n} read per run "
        "through a /game/errors long-poll"
    )
    since = harness.ok_json(editor, "GET", "/game/errors", agent="bench")["latest"]
    launch_game(editor, {"playArgs": [f"--demo-error-period={ERROR_PERIOD}"]})
    try:
        # The first ones, pushed while the game was starting, are not what is measured.
        error_latencies_ms(editor.bridge_port, 2, since)
        since = harness.ok_json(editor, "GET", "/game/errors", agent="bench")["latest"]
        readable50, received50 = [], []
        for run in range(plan.runs):
            readable, received = error_latencies_ms(editor.bridge_port, plan.errors_n, since)
            since = harness.ok_json(editor, "GET", "/game/errors", agent="bench")["latest"]
            readable50.append(pct(readable, 0.5))
            received50.append(pct(received, 0.5))
            g3.ratios.append(readable50[-1])
            say(
                f"  run {run + 1}: readable p50 {readable50[-1]:.1f} p99 {pct(readable, 0.99):.1f}"
                f" ms | received by the bridge p50 {received50[-1]:.1f} ms"
            )
        g3.raw = [
            f"readable p50 {fmt_runs(readable50, ' ms', 1)}",
            f"received by the bridge p50 {fmt_runs(received50, ' ms', 1)}",
        ]
    finally:
        end_game(editor)


# --- issue 14: language-server fairness (L1, L2) ---------------------------------------------

BURST = 1000  # L1: the first agent's requests, all at once
BURST_CONNECTIONS = 40  # ... pipelined on this many connections of its own
LSP_WINDOWS = "1/1,2/1,4/2,8/4,16/8,8/8"  # --lsp-windows: window/per-agent pairs swept
WINDOW_QUIET_N = 40  # the second agent's hovers per window in the sweep


def lsp_traffic(port: int) -> dict[str, Any]:
    """The language server's request counters in `/status` (`lsp_requests`)."""
    counters: dict[str, Any] = get_json(f"http://127.0.0.1:{port}/status")["lsp_requests"]
    return counters


def hover_request(port: int, position: dict[str, int], agent: str) -> bytes:
    body = {"textDocument": {"uri": "res://demo/main.gd"}, "position": position}
    data = json.dumps(body).encode()
    head = (
        f"POST /lsp/hover HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Agent-Id: {agent}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def burst_positions(project: Path, n: int) -> list[dict[str, int]]:
    """`n` different hover positions in demo/main.gd (none the quiet agent's): no two alike,
    so none is shared and every one is a request to Godot."""
    lines = len((project / "demo" / "main.gd").read_text().splitlines())
    quiet = position_of(project, HOVER_ON, 1)
    out: list[dict[str, int]] = []
    k = 0
    while len(out) < n:
        pos = {"line": k % lines, "character": k // lines}
        k += 1
        if pos != quiet:
            out.append(pos)
    return out


async def _read_http(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.search(rb"content-length: *(\d+)", head, re.I)
    await reader.readexactly(int(m.group(1)) if m else 0)
    return int(head.split(b" ", 2)[1])


async def _burst(port: int, project: Path, n: int, conns: int, started: Any) -> list[int]:
    """`n` hovers of agent `burst`, written at once (pipelined) on `conns` connections;
    the statuses of the answers."""
    positions = burst_positions(project, n)
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(conns)]
    for k, (_, writer) in enumerate(streams):
        mine = positions[k::conns]
        writer.write(b"".join(hover_request(port, p, "burst") for p in mine))
    started.set()

    async def drain(k: int, reader: asyncio.StreamReader) -> list[int]:
        return [await _read_http(reader) for _ in positions[k::conns]]

    results = await asyncio.gather(*(drain(k, r) for k, (r, _) in enumerate(streams)))
    for _, writer in streams:
        writer.close()
    return [s for r in results for s in r]


def quiet_hovers_during(port: int, project: Path, busy: threading.Event) -> list[float]:
    """The quiet agent's sequential hovers (ms), counted while `busy` is set."""
    req = hover_request(port, position_of(project, HOVER_ON, 1), "quiet")
    times: list[float] = []
    buf = bytearray()
    with _connect(port) as s:
        while busy.is_set():
            t0 = time.perf_counter()
            s.sendall(req)
            resp = read_response(s, buf)
            dt = (time.perf_counter() - t0) * 1000
            if resp.status != 200 or b"counter" not in resp.body:
                raise SystemExit(f"/lsp/hover answered {resp.status}: {resp.body[:300]!r}")
            if busy.is_set():
                times.append(dt)
    return times


def quiet_alone_ms(port: int, project: Path, n: int) -> list[float]:
    req = hover_request(port, position_of(project, HOVER_ON, 1), "quiet")
    ok = lambda r: r.status == 200 and b"counter" in r.body  # noqa: E731
    return keep_alive_ms(port, req, n, 3, ok, "/lsp/hover")


def hover_during_burst(port: int, project: Path, n: int) -> tuple[list[float], float, int]:
    """The quiet agent's hover times during a burst of `n` by another agent; the burst's
    duration (s) and the requests it got answered with 200."""
    started, busy = threading.Event(), threading.Event()
    statuses: list[int] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            statuses.extend(asyncio.run(_burst(port, project, n, BURST_CONNECTIONS, started)))
        except BaseException as exc:  # reported below, in the bench's thread
            failure.append(exc)
        finally:
            busy.clear()
            started.set()

    busy.set()
    thread = threading.Thread(target=run, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    started.wait(60)
    times = quiet_hovers_during(port, project, busy)
    thread.join(120)
    if failure:
        raise SystemExit(f"the burst failed: {failure[0]!r}")
    return times, time.perf_counter() - t0, statuses.count(200)


def bench_burst(plan: Plan, l1: Figure, editor: Editor) -> None:
    say(f"\nL1: the quiet agent's /lsp/hover p50 alone and during a burst of {BURST} hovers")
    alone50, during50, during_n, seconds = [], [], [], []
    for run in range(plan.runs):
        settle()
        alone = quiet_alone_ms(editor.bridge_port, editor.project, plan.hover_n)
        settle()
        before = lsp_traffic(editor.bridge_port)["sent"]
        during, took, answered = hover_during_burst(editor.bridge_port, editor.project, BURST)
        sent = lsp_traffic(editor.bridge_port)["sent"] - before
        settle()
        # Alone again right after: the machine's load drifts over a run's half minute, so
        # "alone" is taken on both sides of the burst.
        alone += quiet_alone_ms(editor.bridge_port, editor.project, plan.hover_n)
        if not during:
            raise SystemExit("the burst ended before the quiet agent's first hover was answered")
        alone50.append(pct(alone, 0.5))
        during50.append(pct(during, 0.5))
        during_n.append(len(during))
        seconds.append(took)
        l1.ratios.append(during50[-1] / alone50[-1])
        say(
            f"  run {run + 1}: alone p50 {alone50[-1]:.3f} p99 {pct(alone, 0.99):.3f} ms | "
            f"during p50 {during50[-1]:.3f} p99 {pct(during, 0.99):.3f} ms ({len(during)} "
            f"hovers) | burst {answered}/{BURST} answered in {took:.2f} s, {sent} requests "
            "to Godot"
        )
    l1.raw = [
        f"quiet agent alone (before and after) p50 {fmt_runs(alone50, ' ms')}",
        f"during the burst p50 {fmt_runs(during50, ' ms')}",
        f"burst {fmt_runs(seconds, ' s', 2)}",
    ]


async def _same_hover(
    port: int, project: Path, agents: int, same: bool = True
) -> tuple[float, list[int]]:
    """`agents` agents asking a hover at the same moment: the same one, or (`same` False, the
    comparison) each another one; the time until all are answered and their statuses."""
    position = position_of(project, HOVER_ON, 1)
    positions = [position] * agents if same else burst_positions(project, agents)
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(agents)]
    requests = [hover_request(port, p, f"agent-{k}") for k, p in enumerate(positions)]
    await asyncio.sleep(0.2)  # every connection taken by the bridge before the moment
    t0 = time.perf_counter()
    for (_, writer), req in zip(streams, requests, strict=True):
        writer.write(req)
    statuses = await asyncio.gather(*(_read_http(r) for r, _ in streams))
    took = time.perf_counter() - t0
    for _, writer in streams:
        writer.close()
    return took, list(statuses)


def bench_same_hover(plan: Plan, l2: Figure, editor: Editor) -> None:
    say(f"\nL2: {AGENTS - 1} agents asking the same /lsp/hover at the same moment")
    alls, ones, sents, others = [], [], [], []
    for run in range(plan.runs):
        settle()
        one = pct(quiet_alone_ms(editor.bridge_port, editor.project, plan.hover_n), 0.5)
        time.sleep(0.5)
        other, _ = asyncio.run(
            _same_hover(editor.bridge_port, editor.project, AGENTS - 1, same=False)
        )
        others.append(other * 1000)
        time.sleep(0.5)
        before = lsp_traffic(editor.bridge_port)
        # One agent fewer than the bridge's limit: /status needs a connection of its own.
        took, statuses = asyncio.run(_same_hover(editor.bridge_port, editor.project, AGENTS - 1))
        time.sleep(0.5)  # the closed connections leave the bridge
        after = lsp_traffic(editor.bridge_port)
        sent, shared = after["sent"] - before["sent"], after["shared"] - before["shared"]
        if statuses.count(200) != len(statuses):
            raise SystemExit(f"same hover: statuses {sorted(set(statuses))}")
        alls.append(took * 1000)
        ones.append(one)
        sents.append(float(sent))
        l2.ratios.append(alls[-1] / one)
        say(
            f"  run {run + 1}: all answered in {alls[-1]:.3f} ms | one hover p50 {one:.3f} ms "
            f"| {sent} request(s) to Godot, {shared} answers shared | {AGENTS - 1} different "
            f"hovers at once: {others[-1]:.3f} ms"
        )
    l2.raw = [
        f"all {AGENTS - 1} answered {fmt_runs(alls, ' ms')}",
        f"one hover p50 {fmt_runs(ones, ' ms')}",
        f"requests to Godot {fmt_runs(sents, '', 0)}",
        f"{AGENTS - 1} different hovers at once {fmt_runs(others, ' ms')}",
    ]


def start_sidecar_with(procs: Processes, editor: Editor, env: dict[str, str]) -> tuple[int, int]:
    """A sidecar served directly on its own port, talking to `editor`'s servers, with `env`:
    its port and pid (Godot's language server takes 8 clients at most: stop it after use)."""
    port: int = free_port()
    args = [sys.executable, "-m", "sidecar", "--serve", str(port), "--project", str(editor.project)]
    args += ["--lsp-port", str(editor.lsp_port), "--dap-port", str(editor.dap_port)]
    log = editor.project / f"sidecar-{port}.log"
    pid = procs.popen(args, log, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    wait_ready(f"http://127.0.0.1:{port}")
    return port, pid


def bench_windows(plan: Plan, editor: Editor, procs: Processes, pairs: str) -> None:
    """The sweep behind LSP_WINDOW/LSP_PER_AGENT: L1 once per window/per-agent pair, each on
    a sidecar of its own (served directly) talking to the same editor."""
    say(f"\nL1 by window/per-agent, {WINDOW_QUIET_N} quiet hovers alone, then the burst")
    for pair in pairs.split(","):
        window, _, per_agent = pair.strip().partition("/")
        env = {"GODOT_BRIDGE_LSP_WINDOW": window, "GODOT_BRIDGE_LSP_PER_AGENT": per_agent}
        port, pid = start_sidecar_with(procs, editor, env)
        try:
            counters = lsp_traffic(port)
            alone = quiet_alone_ms(port, editor.project, WINDOW_QUIET_N)
            during, took, answered = hover_during_burst(port, editor.project, BURST)
        finally:
            procs.stop_pid(pid)
        a50, d50 = pct(alone, 0.5), pct(during, 0.5) if during else float("nan")
        say(
            f"  window {counters['window']}/{counters['per_agent']}: alone p50 {a50:.3f} ms | "
            f"during p50 {d50:.3f} p99 {pct(during, 0.99) if during else float('nan'):.3f} ms "
            f"({len(during)} hovers) | ratio {d50 / a50:.2f} | burst {answered}/{BURST} in "
            f"{took:.2f} s ({BURST / took:.0f} req/s) | load {load_average()}"
        )


def bench_lsp(
    plan: Plan,
    figures: dict[str, Figure],
    procs: Processes,
    root: Path,
    env: dict[str, str],
    windows: str,
) -> None:
    """L1 and L2 on an editor of their own (and the window sweep, when asked)."""
    editor = start_editor(procs, root, "lsp", env)
    wait_ready(editor.base_url)
    if windows:
        bench_windows(plan, editor, procs, windows)
    if plan.wants("L1"):
        bench_burst(plan, figures["L1"], editor)
    if plan.wants("L2"):
        bench_same_hover(plan, figures["L2"], editor)
    procs.stop_all()


# --- issue 14: silent breakpoint hits (B1) ----------------------------------------------------

SILENT_LINE = "counter += 1"  # demo/main.gd's _process: once a frame
SILENT_WINDOW = 5.0  # seconds each rate is measured over
COUNTER = "Members/counter"  # main.gd's `counter`, as /game/node names a script variable


def counter_rate(editor: Editor, seconds: float) -> tuple[float, int]:
    """The demo game's `_process` calls per second, from its `counter` read (a property of
    Main, `/game/node`) at both ends of a window; and the calls counted."""

    def read() -> tuple[float, int]:
        main = harness.ok_json(
            editor, "POST", "/game/node", {"path": "Main", "properties": [COUNTER]}, "bench"
        )
        values = [
            p["value"]
            for sec in main["sections"]
            for n, p in sec["properties"].items()
            if n == COUNTER
        ]
        if len(values) != 1:
            raise SystemExit(f"no counter in the demo game's Main: {main}")
        (value,) = values
        return time.monotonic(), int(value)

    t0, c0 = read()
    time.sleep(seconds)
    t1, c1 = read()
    return (c1 - c0) / (t1 - t0), c1 - c0


def set_silent(editor: Editor, breakpoint: dict[str, Any] | None) -> None:
    """The bench's breakpoint on SILENT_LINE (None: none)."""
    lines = (ROOT / "demo" / "main.gd").read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if SILENT_LINE in text)
    body: dict[str, Any] = {"source": {"path": "res://demo/main.gd"}}
    if breakpoint is not None:
        body["breakpoints"] = [{"line": line, **breakpoint}]
    harness.ok_json(editor, "POST", "/debug/setBreakpoints", body, "bench")


def logged_hits(editor: Editor, since: int, seconds: float) -> list[tuple[float, int]]:
    """(bridge time, counter) of each of the bench's logpoint outputs over `seconds`."""
    time.sleep(seconds)
    page = harness.ok_json(editor, "GET", f"/debug/events?since={since}&limit=100000", None, "b")
    return [
        (e["time"], int(e["body"]["message"]))
        for e in page["events"]
        if e["event"] == "output" and e["body"].get("agent") == "bench"
    ]


def bench_silent_hits(
    plan: Plan, b1: Figure, procs: Processes, root: Path, env: dict[str, str]
) -> None:
    """B1: demo/main.gd's `counter += 1` runs once a frame. The game's _process calls per
    second without a breakpoint, with a logpoint there (`{counter}`: every frame a stop,
    one evaluation, a continue, an `output`), and with a condition that is never true
    (a stop, one evaluation, a continue); ms per silent hit from the logpoint's outputs."""
    say(f"\nB1: silent breakpoint hits on a line run every frame, {SILENT_WINDOW:g} s windows")
    editor = procs.editor(Editor(make_demo_project(root / "silent"), env=env))
    editor.start()
    wait_ready(editor.base_url)
    launch_game(editor, {})
    free50, log50, cond50, per_hit = [], [], [], []
    try:
        for run in range(plan.runs):
            set_silent(editor, None)
            time.sleep(1.0)
            free, _ = counter_rate(editor, SILENT_WINDOW)
            since = harness.latest_event(editor, "bench")
            set_silent(editor, {"logMessage": "{counter}"})
            hits = logged_hits(editor, since, SILENT_WINDOW + 1.0)[1:]  # the first may wait
            if len(hits) < 2:
                raise SystemExit(f"the logpoint logged {len(hits)} hits in {SILENT_WINDOW} s")
            elapsed = hits[-1][0] - hits[0][0]
            ms = 1000 * elapsed / (len(hits) - 1)
            logging = (hits[-1][1] - hits[0][1]) / elapsed
            set_silent(editor, {"condition": "counter < 0"})
            time.sleep(1.0)
            never, _ = counter_rate(editor, SILENT_WINDOW)
            free50.append(free)
            log50.append(logging)
            cond50.append(never)
            per_hit.append(ms)
            b1.ratios.append(ms)
            say(
                f"  run {run + 1}: _process/s without {free:.1f} | with the logpoint "
                f"{logging:.1f} ({len(hits)} hits, {ms:.1f} ms each) | with a false condition "
                f"{never:.1f}"
            )
        b1.raw = [
            f"_process calls/s without a breakpoint {fmt_runs(free50, '', 1)}",
            f"with a logpoint {fmt_runs(log50, '', 1)}",
            f"with a condition never true {fmt_runs(cond50, '', 1)}",
            f"ms per logpoint hit {fmt_runs(per_hit, ' ms', 1)}",
        ]
    finally:
        set_silent(editor, None)
        end_game(editor)
        procs.stop_editor(editor)


def print_table(figures: list[Figure]) -> None:
    say("\n| id | ratio (median) | target | verdict | raw numbers (median, runs) |")
    say("|---|---|---|---|---|")
    for f in figures:
        r = (
            "not run"
            if f.ratio is None
            else (f"{f.ratio:.1f}{f.unit}" if f.unit else f"{f.ratio:.3f}")
        )
        raw = "; ".join(f.raw + ([f.note] if f.note else []))
        say(f"| {f.ident} | {r} | {f.target} | {f.verdict()} | {raw} |")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer requests, 10 s idle windows")
    ap.add_argument("--runs", type=int, default=None, help="runs per figure (default 5, quick 3)")
    ap.add_argument("--only", default="", help="comma-separated figure ids, e.g. P1,P4")
    ap.add_argument(
        "--idle-seconds", type=float, default=None, help="P7 window (default 60, quick 10)"
    )
    ap.add_argument(
        "--against",
        metavar="DIR",
        help="measure the addon and sidecar of another checkout (e.g. a git worktree of an "
        "older commit) against this checkout's direct baseline",
    )
    ap.add_argument(
        "--idle-reference",
        action="store_true",
        help="P7 also runs editors whose plugin is an empty EditorPlugin (Godot's own share)",
    )
    ap.add_argument(
        "--lsp-windows",
        default="",
        metavar="W/P,...",
        help=f"with L1: also sweep the LSP window/per-agent pairs (e.g. {LSP_WINDOWS})",
    )
    args = ap.parse_args()
    quick = args.quick
    plan = Plan(
        runs=args.runs or (3 if quick else 5),
        status_n=300 if quick else 1000,
        hover_n=20 if quick else 60,
        load_seconds=2.0 if quick else 4.0,
        idle_seconds=args.idle_seconds or (10.0 if quick else 60.0),
        idle_pairs=2 if quick else 3,
        idle_reference=args.idle_reference,
        only={s.strip().upper() for s in args.only.split(",") if s.strip()},
        shot_n=20 if quick else 50,
        tree_n=10 if quick else 30,
        errors_n=15 if quick else 40,
    )
    figures = {f.ident: f for f in FIGURES}
    say(f"cores: {os.cpu_count()}  load average at start: {load_average()}")
    version = godot_version()
    say(f"godot {version}  python {sys.version.split()[0]}  runs per figure: {plan.runs}")
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    deltas: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gdc-bench-") as tmp:
            root = Path(tmp)
            focused = editor_settings_home(root, FOCUSED_SLEEP_USEC, version)
            unfocused = editor_settings_home(root, UNFOCUSED_SLEEP_USEC, version)
            if args.against:
                # Another checkout's addon, and its sidecar (PYTHONPATH wins over the editable
                # install); the direct baseline stays this checkout's.
                other = Path(args.against).resolve()
                harness.ADDON = other / "addons" / "godot_debug_connection"
                for env in (focused, unfocused):
                    env["PYTHONPATH"] = str(other)
                say(f"addon and sidecar from {other}")
            if plan.wants("P1", "P2", "P3", "P4", "P5", "P6"):
                fast = start_editor(procs, root, "focused", focused)
                slow = None
                if plan.wants("P2", "P5"):
                    slow = start_editor(procs, root, "unfocused", unfocused)
                for ed in (fast, slow):
                    if ed is not None:
                        wait_ready(ed.base_url)
                direct = 0
                if plan.wants("P1", "P2", "P4"):
                    direct = start_direct_sidecar(procs, fast)
                if plan.wants("P5"):
                    say("\nP5: resident memory of idle agents, on editors that served none yet")
                    for ed in (fast, slow):
                        if ed is not None:
                            bench_memory(figures["P5"], ed, deltas)
                    settle()
                if plan.wants("P1", "P2"):
                    bench_latency(plan, figures["P1"], figures["P2"], fast, slow, direct)
                if slow is not None:
                    procs.stop_editor(slow)
                if plan.wants("P3"):
                    bench_hover(plan, figures["P3"], fast)
                if plan.wants("P6"):
                    bench_completion(plan, figures["P6"], fast)
                if plan.wants("P4"):
                    bench_throughput(plan, figures["P4"], fast, direct)
                procs.stop_all()
            if plan.wants("P7"):
                kept = bench_idle_cpu(plan, figures["P7"], procs, root, focused)
                if plan.wants("P5"):
                    say("\nP5, one more run: an editor with the addon after P7's idle windows")
                    bench_memory(figures["P5"], kept, deltas)
                procs.stop_all()
            if plan.wants(*GAME_FIGURES):
                game = start_game_editor(procs, root, focused)
                if plan.wants("G1"):
                    bench_screenshot(plan, figures["G1"], game)
                if plan.wants("G2"):
                    bench_tree(plan, figures["G2"], game)
                if plan.wants("G3"):
                    bench_errors(plan, figures["G3"], game)
                procs.stop_all()  # one editor at a time: B1 and L1 measure time
            if plan.wants(*LSP_FIGURES):
                bench_lsp(plan, figures, procs, root, focused, args.lsp_windows)
                procs.stop_all()
            if plan.wants("B1"):
                bench_silent_hits(plan, figures["B1"], procs, root, focused)
    finally:
        procs.stop_all()
    say(f"\nload average at end: {load_average()}")
    print_table([f for k, f in figures.items() if plan.wants(k)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

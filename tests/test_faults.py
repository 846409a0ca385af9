"""Faults on the real stack: the sidecar killed mid-request, Godot's DAP and LSP going away
and coming back, agents vanishing mid-request, a link peer sending broken frames.

One editor serves the module. Its sidecar reaches Godot's DAP and LSP through relays this
test controls (GODOT_BRIDGE_DAP_PORT / GODOT_BRIDGE_LSP_PORT point at them), and its "Python"
(GODOT_BRIDGE_PYTHON) is a stand-in script that runs the real sidecar unless the control
file asks it to misbehave on the link for one spawn. The tests run in file order: the
sidecar kill comes first, while the addon's respawn backoff is at its minimum.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from harness import Editor, free_port, http_get, make_demo_project, read_response

from sidecar.app import Sidecar
from sidecar.config import parse_args
from sidecar.link.editor_link import Link, LinkClosed
from sidecar.link.frames import FrameDecoder, FrameError, encode_frame

# --- a TCP relay the test can stop and restart --------------------------------------------


class Relay:
    """127.0.0.1:port -> 127.0.0.1:target, byte for byte, until stopped."""

    def __init__(self, target: int, name: str) -> None:
        self.target = target
        self.name = name
        self.port = free_port()
        self._server: socket.socket | None = None
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        self._spawn(self._accept, server)

    def stop(self) -> None:
        """Closes the listener and every relayed connection (both ends)."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]
        assert not self._threads, f"{self.name} relay threads did not end"

    def _spawn(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"relay-{self.name}")
        self._threads.append(t)
        t.start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._server is None:
                    client.close()
                    upstream.close()
                    return
                self._socks.update((client, upstream))
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


# --- a stand-in for the sidecar's Python -------------------------------------------------

STANDIN = textwrap.dedent(
    """\
    #!{python}
    # Runs the real sidecar, unless the control file names a way to misbehave for this spawn.
    import json, os, socket, struct, sys, time
    args = sys.argv[1:]
    control = os.environ["GODOT_BRIDGE_TEST_CONTROL"]
    try:
        with open(control) as f:
            modes = json.load(f)
    except (OSError, ValueError):
        modes = []
    if not modes:
        os.execv(sys.executable, [sys.executable, *args])
    mode = modes.pop(0)
    with open(control, "w") as f:
        json.dump(modes, f)
    from sidecar.link.frames import encode_frame
    port = int(args[args.index("--link-port") + 1])
    token = os.environ.get("GODOT_BRIDGE_LINK_TOKEN", "")
    s = socket.create_connection(("127.0.0.1", port))
    hello = {{"op": "hello", "token": token, "pid": os.getpid(), "version": 1}}
    s.sendall(encode_frame(hello))
    s.settimeout(5)
    first = s.recv(65536)  # the addon's hello: the link is up
    if mode == "garbage":
        s.sendall(struct.pack(">I", 6) + bytes([0xC1]) * 6)
    elif mode == "oversized":
        s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"x" * 64)
    elif mode == "truncated":
        s.sendall(struct.pack(">I", 100) + encode_frame({{"op": "log"}})[4:])
        s.close()
        sys.exit(0)
    elif mode == "answer_then_garbage":
        # Waits for two agents' requests, then answers the first with garbage right behind.
        from sidecar.link.frames import FrameDecoder
        decoder, asked, got = FrameDecoder(), [], first  # requests may follow the hello
        s.settimeout(30)
        while True:
            for frame in decoder.feed(got):
                if frame["op"] == "data" and frame["id"] not in asked:
                    asked.append(frame["id"])
            if len(asked) >= 2:
                break
            got = s.recv(65536)
        body = b'{{"status": "ok", "answered": "before the garbage"}}'
        head = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
        answer = head + b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body
        answered = encode_frame({{"op": "data", "id": asked[0], "data": answer}})
        s.sendall(answered + struct.pack(">I", 6) + bytes([0xC1]) * 6)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    """
)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    root = tmp_path_factory.mktemp("faults")
    project = make_demo_project(root / "project")
    standin = root / "standin.py"
    standin.write_text(STANDIN.format(python=sys.executable))
    standin.chmod(0o755)
    control = root / "control.json"
    control.write_text("[]")
    ed = Editor(project)
    relays = {"dap": Relay(ed.dap_port, "dap"), "lsp": Relay(ed.lsp_port, "lsp")}
    for relay in relays.values():
        relay.start()
    ed.extra_env = {
        "GODOT_BRIDGE_DAP_PORT": str(relays["dap"].port),
        "GODOT_BRIDGE_LSP_PORT": str(relays["lsp"].port),
        "GODOT_BRIDGE_PYTHON": str(standin),
        "GODOT_BRIDGE_TEST_CONTROL": str(control),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    ed.relays = relays  # type: ignore[attr-defined]
    ed.control = control  # type: ignore[attr-defined]
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()
        for relay in relays.values():
            relay.stop()


def status(ed: Editor, timeout: float = 5) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", ed.bridge_port), timeout=timeout) as s:
        s.sendall(http_get(ed.bridge_port, "/status"))
        answer = read_response(s)
    assert answer.status == 200, answer.body
    return answer.json()  # the seed's shape, at the top level


def request(ed: Editor, method: str, path: str, body: Any = None) -> tuple[int, dict, dict]:
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    with socket.create_connection(("127.0.0.1", ed.bridge_port), timeout=15) as s:
        s.sendall(head.encode() + b"\r\n" + data)
        answer = read_response(s)
    return answer.status, answer.json(), answer.headers


def wait_ready(ed: Editor, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, AssertionError, ValueError, ConnectionError):
            st = status(ed)
            if st["overall_ready"]:
                return st
        assert time.monotonic() < deadline, "services never became ready"
        time.sleep(0.05)


def counts(pid: int) -> tuple[int, int]:
    p = psutil.Process(pid)
    return p.num_fds(), p.num_threads()


def settle_fds(pid: int, want: int, timeout: float = 5) -> int:
    deadline = time.monotonic() + timeout
    while True:
        fds = psutil.Process(pid).num_fds()
        if fds == want or time.monotonic() > deadline:
            return fds
        time.sleep(0.05)


# Godot's TCPServer listens with a backlog of 8: connecting faster than the pump accepts
# makes the kernel drop SYNs, which the client resends only after a second.
PACE = 0.005

HOVER = {"textDocument": {"uri": "res://demo/main.gd"}, "position": {"line": 3, "character": 5}}


# --- the sidecar killed mid-request ---------------------------------------------------------


@pytest.mark.timing
def test_sidecar_killed_mid_request(faulty: Editor) -> None:
    first = wait_ready(faulty)["sidecar"]["pid"]
    time.sleep(0.3)  # our own /status connection gone
    fds0, threads0 = counts(faulty.pid)
    mark = faulty.mark()

    agents = []
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", faulty.bridge_port), timeout=10)
        # long-polls the sidecar holds for 10 s, and a few quick hovers
        path = "/debug/events?since=1000000000&wait=10" if i % 3 else "/lsp/hover"
        if path == "/lsp/hover":
            body = json.dumps(HOVER).encode()
            s.sendall(
                b"POST /lsp/hover HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        else:
            s.sendall(http_get(faulty.bridge_port, path))
        agents.append(s)
        time.sleep(PACE)
    time.sleep(0.5)  # the long-polls are inside the sidecar now

    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)
    outcomes = _read_all_until_closed(agents, killed_at, deadline=3.0)
    for s in agents:
        s.close()

    late = {i: o for i, o in outcomes.items() if o["at"] is None or o["at"] > 1.0}
    assert not late, late
    for i, o in outcomes.items():
        # a hover that finished before the kill is a 200; a long-poll can only be refused
        assert o["statuses"] in ([503], [], [200], [200, 503]), (i, o)
        if i % 3:
            assert o["statuses"] in ([503], []), (i, o)
    refused = [o for o in outcomes.values() if o["statuses"][-1:] == [503]]
    assert refused, "no agent got the addon's 503"
    for o in refused:
        assert o["retry_after"] == "1" and o["code"] == "sidecar_restarting", o

    faulty.wait_for(r"sidecar link lost; restarting the sidecar", 5, mark)
    faulty.wait_for(r"GodotBridge sidecar restarting in \d+\.\d+ s", 5, mark)
    faulty.wait_for(r"GodotBridge sidecar started \(pid \d+\)", 5, mark)
    back = _wait_serving(faulty, first, limit=5)
    back_after = back - killed_at
    if back_after >= 3.0:
        # Over the 3 s target. The bridge's own part (notice, 250 ms backoff, spawn,
        # handshake) must still be small; the rest is a fresh Python importing the sidecar,
        # which on a loaded machine alone can take longer than 3 s (the `mcp` SDK).
        imports = _import_seconds()
        assert back_after - imports < 1.5, (
            f"service back after {back_after:.2f} s, of which importing the sidecar "
            f"{imports:.2f} s (load average {os.getloadavg()[0]:.1f})"
        )
        warnings.warn(
            f"sidecar SIGKILL: service back after {back_after:.2f} s, over the 3 s target: "
            f"importing the sidecar takes {imports:.2f} s on this machine now",
            stacklevel=1,
        )

    wait_ready(faulty)
    time.sleep(0.3)
    fds1 = settle_fds(faulty.pid, fds0)
    threads1 = psutil.Process(faulty.pid).num_threads()
    closed = sum(1 for o in outcomes.values() if not o["statuses"])
    print(
        f"\nsidecar SIGKILL with 30 agents mid-request: {len(refused)} got the addon's 503, "
        f"{closed} a bare close, {30 - len(refused) - closed} their answer first; "
        f"slowest {max(o['at'] for o in outcomes.values()) * 1000:.0f} ms after the kill; "
        f"serving again after {back_after:.2f} s; editor fds {fds0} -> {fds1}, "
        f"threads {threads0} -> {threads1}"
    )
    assert fds1 == fds0
    assert threads1 == threads0


def _import_seconds() -> float:
    """How long a fresh Python takes to import the sidecar, for a failure message."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import sidecar.__main__"], check=False, timeout=60)
    return time.monotonic() - t0


def _read_all_until_closed(
    socks: list[socket.socket], since: float, deadline: float
) -> dict[int, dict[str, Any]]:
    """Reads all sockets at once until each has a complete answer or is closed. For each:
    the statuses it got, its 503's details, and when it was done (seconds after `since`)."""
    sel = selectors.DefaultSelector()
    bufs: dict[int, bytearray] = {}
    out: dict[int, dict[str, Any]] = {}
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        bufs[i] = bytearray()
        out[i] = {"statuses": [], "at": None, "retry_after": None, "code": None}
    end = since + deadline
    while sel.get_map() and time.monotonic() < end:
        for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
            i = key.data
            try:
                chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            bufs[i] += chunk
            complete = _parse_answers(bytes(bufs[i]), eof=not chunk)
            if complete is not None or not chunk:
                out[i]["at"] = time.monotonic() - since
                for code, headers, body in complete or []:
                    out[i]["statuses"].append(code)
                    if code == 503:
                        out[i]["retry_after"] = headers.get("retry-after")
                        out[i]["code"] = json.loads(body)["error"]["code"]
                sel.unregister(key.fileobj)
    sel.close()
    return out


def _parse_answers(raw: bytes, eof: bool) -> list[tuple[int, dict[str, str], bytes]] | None:
    """The complete answers in `raw`, or None while the last one is still incomplete. At
    EOF an incomplete answer is a failure: agents must get whole answers or none."""
    answers = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        length = int(headers.get("content-length", "0")) if sep else 0
        if not sep or len(rest) < length:
            assert not eof, f"closed in the middle of an answer: {raw[:200]!r}"
            return None
        body, raw = rest[:length], rest[length:]
        answers.append((int(lines[0].split()[1]), headers, body))
    return answers or None


def _wait_serving(ed: Editor, old_pid: int, limit: float) -> float:
    """When a sidecar other than `old_pid` first answered /status."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, AssertionError, ValueError, ConnectionError):
            if status(ed, timeout=1)["sidecar"]["pid"] != old_pid:
                return time.monotonic()
        time.sleep(0.02)
    raise AssertionError("the sidecar did not come back")


# --- Godot's DAP and LSP go away and come back ---------------------------------------------


def test_godot_servers_go_away_and_come_back(faulty: Editor) -> None:
    wait_ready(faulty)
    relays: dict[str, Relay] = faulty.relays  # type: ignore[attr-defined]
    samples: list[tuple[float, dict[str, Any]]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            with contextlib.suppress(OSError, AssertionError, ValueError, ConnectionError):
                samples.append((time.monotonic(), status(faulty, timeout=2)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        time.sleep(0.3)
        stopped_at = time.monotonic()
        for relay in relays.values():
            relay.stop()
        time.sleep(1.0)

        # Meanwhile: 503 with Retry-After naming the service, and /status says so.
        code, body, headers = request(faulty, "POST", "/debug/threads", {})
        assert code == 503 and body["error"]["code"] == "not_connected", body
        assert int(headers["retry-after"]) >= 1
        code, body, headers = request(faulty, "POST", "/lsp/hover", HOVER)
        assert code == 503 and body["error"]["code"] == "not_connected", body
        st = status(faulty)
        assert st["overall_ready"] is False
        for key in ("debug_adapter", "language_server"):
            assert st[key]["state"] in ("reconnecting", "connecting", "error"), st[key]
            assert st[key]["last_error"], st[key]

        restarted_at = time.monotonic()
        for relay in relays.values():
            relay.start()
        wait_ready(faulty, timeout=20)
        ready_at = time.monotonic()
        code, body, _ = request(faulty, "POST", "/debug/threads", {})
        assert code == 200, body
        code, body, _ = request(faulty, "POST", "/lsp/hover", HOVER)
        assert code == 200, body
        time.sleep(0.2)
    finally:
        sampling.set()
        sampler.join(5)

    # /status was truthful throughout: connected before the relays stopped, not connected
    # from shortly after until they were back, connected again at the end.
    assert samples[0][1]["overall_ready"] is True
    for at, st in samples:
        ready = (
            st["debug_adapter"]["state"] == "connected"
            and st["language_server"]["state"] == "connected"
        )
        assert st["overall_ready"] is ready
        if stopped_at + 0.5 < at < restarted_at:
            assert not ready, (at - stopped_at, st)
    assert samples[-1][1]["overall_ready"] is True
    assert ready_at - restarted_at < 10
    retries = max(st["debug_adapter"]["retry_count"] for _, st in samples)
    assert retries >= 1
    noticed = next(at for at, st in samples if at > stopped_at and not st["overall_ready"])
    print(
        f"\nGodot's DAP and LSP gone for {restarted_at - stopped_at:.1f} s: /status said so "
        f"after {(noticed - stopped_at) * 1000:.0f} ms, requests got 503 + Retry-After, "
        f"both reconnected {ready_at - restarted_at:.1f} s after they returned "
        f"({len(samples)} /status samples, all consistent)"
    )


# --- agents that vanish mid-request ---------------------------------------------------------


def test_agents_vanishing_mid_request_leave_nothing_behind(faulty: Editor) -> None:
    sidecar = wait_ready(faulty)["sidecar"]["pid"]
    time.sleep(0.3)
    editor0, sidecar0 = counts(faulty.pid), counts(sidecar)
    mark = faulty.mark()
    body = json.dumps(HOVER).encode()
    hover = (
        b"POST /lsp/hover HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    for i in range(60):
        s = socket.create_connection(("127.0.0.1", faulty.bridge_port), timeout=10)
        if i % 3 == 0:
            s.sendall(hover)
        elif i % 3 == 1:
            s.sendall(http_get(faulty.bridge_port, "/debug/events?since=1000000000&wait=2"))
        else:
            s.sendall(hover[: len(hover) // 2])  # half a request
        if i % 2:
            # a reset instead of a close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(PACE)
    deadline = time.monotonic() + 10
    while faulty.count(r"✗ Client \d+ disconnected", mark) < 60:
        assert time.monotonic() < deadline, faulty.output[mark:][-2000:]
        time.sleep(0.05)
    time.sleep(0.5)
    st = status(faulty)
    assert st["clients"]["active"] == 1, st["clients"]
    assert st["sidecar"]["pid"] == sidecar
    assert settle_fds(faulty.pid, editor0[0]) == editor0[0]
    assert settle_fds(sidecar, sidecar0[0]) == sidecar0[0]
    noise = [
        line
        for line in faulty.output[mark:].splitlines()
        if "ERROR" in line or "Traceback" in line or "WARNING" in line
    ]
    assert not noise, noise[:10]


# --- a link peer that sends broken frames ---------------------------------------------------


def test_broken_frames_from_the_sidecar_reset_the_link(faulty: Editor) -> None:
    """The stand-in says a good hello, then breaks the link three ways, one per spawn; the
    addon logs each, drops the link, respawns with growing backoff, never crashes."""
    old = wait_ready(faulty)["sidecar"]["pid"]
    control: Path = faulty.control  # type: ignore[attr-defined]
    control.write_text(json.dumps(["garbage", "oversized", "truncated"]))
    mark = faulty.mark()
    os.kill(old, signal.SIGKILL)  # the next three spawns misbehave, the fourth is real
    faulty.wait_for(r"bad frame from the sidecar: msgpack", 15, mark)
    faulty.wait_for(r"bad frame from the sidecar: too_large", 15, mark)
    faulty.wait_for(r"(?s)too_large.*sidecar link lost; restarting the sidecar", 15, mark)
    wait_ready(faulty, timeout=30)
    assert json.loads(control.read_text()) == []
    delays = [float(x) for x in _findall(faulty, r"sidecar restarting in (\d+\.\d+) s", mark)]
    assert len(delays) >= 4 and delays == sorted(delays), delays
    assert faulty.child is not None and faulty.child.isalive()
    assert faulty.count(r"GodotBridge sidecar connected", mark) >= 4


def test_answers_read_before_a_broken_frame_still_reach_their_agents(faulty: Editor) -> None:
    """One read brings an answer and then a broken frame: the link goes down, but the answer
    read before the break reaches its agent; the agent still waiting gets the 503."""
    old = wait_ready(faulty)["sidecar"]["pid"]
    control: Path = faulty.control  # type: ignore[attr-defined]
    control.write_text(json.dumps(["answer_then_garbage"]))
    mark = faulty.mark()
    os.kill(old, signal.SIGKILL)
    faulty.wait_for(r"GodotBridge sidecar connected", 30, mark)
    port = faulty.bridge_port
    socks = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(2)]
    try:
        for s in socks:
            s.sendall(http_get(port, "/status"))
        answers = sorted(((r := read_response(s)).status, r.json()) for s in socks)
    finally:
        for s in socks:
            s.close()
    (ok_status, ok_body), (refused_status, refused_body) = answers
    assert ok_status == 200 and ok_body["answered"] == "before the garbage", answers
    assert refused_status == 503, answers
    assert refused_body["error"]["code"] == "sidecar_restarting", answers
    faulty.wait_for(r"bad frame from the sidecar: msgpack", 15, mark)
    wait_ready(faulty, timeout=30)
    assert json.loads(control.read_text()) == []


def _findall(ed: Editor, pattern: str, start: int) -> list[str]:
    import re

    return re.findall(pattern, ed.output[start:])


# --- the sidecar's end: a misbehaving addon ---------------------------------------------


@pytest.mark.parametrize(
    ("junk", "error"),
    [
        (struct.pack(">I", 6) + bytes([0xC1]) * 6, FrameError),
        (struct.pack(">I", 0xFFFFFFF0), FrameError),
        (struct.pack(">I", 3) + b"\x93\x01\x02", FrameError),  # not a map
        (struct.pack(">I", 100) + b"\x81", LinkClosed),  # truncated, then closed
    ],
    ids=["garbage", "oversized", "not a map", "truncated"],
)
async def test_sidecar_link_survives_nothing_but_reports_it(
    tmp_path: Path, junk: bytes, error: type[Exception]
) -> None:
    """Link.run ends with the documented error (the process then exits and the addon
    respawns it); it never hangs or raises anything else."""

    got: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await got.put((r, w))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sidecar = Sidecar(parse_args(["--link-port", str(port), "--project", str(tmp_path)]))
    await sidecar.start()
    link = Link(port, "tok", sidecar)
    task = asyncio.create_task(link.run())
    try:
        reader, writer = await asyncio.wait_for(got.get(), 5)
        decoder = FrameDecoder()
        while not decoder.feed(await reader.read(65536)):
            pass
        writer.write(encode_frame({"op": "hello", "version": 1, "max_clients": 5}))
        writer.write(junk)
        await writer.drain()
        if error is LinkClosed:
            writer.close()
        with pytest.raises(error):
            await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await sidecar.stop()
        server.close()


@pytest.mark.slow  # five agents that wait 0.1 s each, then 0.2 s
async def test_an_agent_gone_before_its_body_arrived_is_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sidecar's side of a vanished agent: the handler reading the body sees the
    connection lost; that is a debug line, not an 'unhandled error' with a traceback."""
    from aiohttp.test_utils import TestServer

    with caplog.at_level("DEBUG"):
        sidecar = Sidecar(parse_args(["--link-port", "1", "--project", str(tmp_path)]))
        async with TestServer(sidecar.app) as server:
            for _ in range(5):
                _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(
                    b"POST /lsp/hover HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"text'
                )
                await writer.drain()
                await asyncio.sleep(0.1)  # the handler is waiting for the rest
                writer.transport.abort()
            await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL", "WARNING")]
    assert not errors, [r.getMessage() for r in errors]

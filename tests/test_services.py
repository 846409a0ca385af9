"""Issue 11: the shared services are safe on real projects.

- a sidecar never handshakes with an editor it has not identified (`wrong_editor`);
- one agent cannot switch the services off for everyone (`POST /disconnect`);
- the services are ready within a moment of Godot's servers listening (`starting`).

Unit tests use small real sockets; the rest run against real headless editors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from harness import (
    REPO,
    Editor,
    free_port,
    get_json,
    make_demo_project,
    settings_home,
)

from sidecar import app as bridge_module
from sidecar.app import Sidecar
from sidecar.config import Config
from sidecar.errors import TransportError, WrongEditor
from sidecar.godot.identity import EditorIdentity, listener_of, project_of
from sidecar.godot.lsp.session import LspSession
from sidecar.godot.peer import DapCorrelation, Peer
from sidecar.godot.service import ServiceStatus
from sidecar.godot.wire import MessageStream

MAIN = "res://demo/main.gd"
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
TWICE_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "var doubled: int" in t)


# -- unit: the peer's phases ---------------------------------------------------------------


def _listen(port: int) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(4)
    return server


async def _until(predicate: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.mark.slow  # watches 3.2 s of probing
async def test_issue_11_starting_peer_probes_briskly_and_says_editor_starting() -> None:
    """Before its first connection a peer looks every 0.25 s, not on the growing backoff."""

    port = free_port()
    status = ServiceStatus("debug_adapter", port)
    peer = Peer(status, DapCorrelation(), what="fake DAP", ping_interval=None)
    peer.start()
    server: socket.socket | None = None
    try:
        # Long enough that the old 1-2-4 s backoff would be waiting 4 s by now.
        await asyncio.sleep(3.2)
        assert status.state.value == "starting", status.as_json()
        assert status.as_json()["message"] == "editor starting"
        assert status.retry_count >= 8  # ~one look per 0.25 s
        server = _listen(port)
        took = await _until(lambda: peer.connected, timeout=3)
        assert took <= 0.6, f"connected {took:.2f} s after the port listened"
    finally:
        await peer.disconnect()
        if server is not None:
            server.close()


@pytest.mark.slow  # waits out a 0.5 s resume_after
async def test_issue_11_disconnect_resumes_by_itself() -> None:
    port = free_port()
    server = _listen(port)
    status = ServiceStatus("debug_adapter", port)
    peer = Peer(status, DapCorrelation(), what="fake DAP", ping_interval=None)
    try:
        assert await peer.connect(wait=3)
        status.taken_down("testing", "alice")
        await peer.disconnect("disconnected by alice", resume_after=0.5)
        shown = status.as_json()
        assert shown["state"] == "disconnected"
        assert (shown["down_by"], shown["down_reason"]) == ("alice", "testing")
        assert shown["message"] == "disconnected by alice: testing"
        assert 0 < shown["next_retry_in_s"] <= 0.5
        await _until(lambda: peer.connected, timeout=3)
        assert status.as_json()["down_by"] is None  # back: the reason is history
    finally:
        await peer.disconnect()
        server.close()


def test_issue_11_listener_of_tells_our_port_from_another_process() -> None:
    with _listen(0) as server:
        port = server.getsockname()[1]
        assert listener_of(port, os.getpid()).ours is True
        with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
            try:
                found = listener_of(port, other.pid)
                # Not our editor, but not a Godot either (a relay, a tunnel): cannot tell.
                assert found.ours is None and found.pid == os.getpid()
                assert found.project == os.getcwd()  # no --path: its working directory
            finally:
                other.kill()
    assert listener_of(port, None).ours is None  # no pid: cannot tell


def test_issue_11_project_of_reads_godots_path_argument(tmp_path: Path) -> None:
    code = "import time; time.sleep(30)"
    with subprocess.Popen([sys.executable, "-c", code, "--path", "game"], cwd=tmp_path) as proc:
        try:
            deadline = time.monotonic() + 5
            while project_of(proc.pid) != str(tmp_path / "game"):
                assert time.monotonic() < deadline, project_of(proc.pid)
                time.sleep(0.05)
        finally:
            proc.kill()


# -- real editors ---------------------------------------------------------------------------


def _request(
    base: str, method: str, path: str, body: Any = None, agent: str = "t"
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"X-Agent-Id": agent}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _ok(base: str, method: str, path: str, body: Any = None, agent: str = "t") -> Any:
    status, answer = _request(base, method, path, body, agent)
    assert status == 200, (path, status, answer)
    return answer if path == "/status" else answer["result"]


def _wait_status(
    base: str, predicate: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            last = get_json(base + "/status", timeout=5)
            if predicate(last):
                return last
        time.sleep(0.1)
    raise AssertionError(f"/status never got there: {json.dumps(last, indent=1)[:3000]}")


def _ready(st: dict[str, Any]) -> bool:
    return bool(st.get("overall_ready"))


class DirectSidecar:
    """`python -m sidecar --serve` for a project, pointed at whatever ports it is given."""

    def __init__(self, project: Path, lsp_port: int, dap_port: int, editor_pid: int | None) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "sidecar", "--serve", str(self.port)]
        args += ["--project", str(project), "--lsp-port", str(lsp_port)]
        args += ["--dap-port", str(dap_port)]
        if editor_pid is not None:
            args += ["--editor-pid", str(editor_pid)]
        self.log = project / f"sidecar-{self.port}.log"
        with open(self.log, "w") as out:
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _breakpoints_in_godot_survive(editor: Editor) -> None:
    """A's own launch still stops at A's breakpoint: Godot kept it."""
    base = editor.base_url
    since = _ok(base, "GET", "/debug/events", agent="alice")["latest"]
    _ok(base, "POST", "/debug/launch", {"scene": "main"}, agent="alice")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            page = _ok(base, "GET", f"/debug/events?since={since}&wait=2", agent="alice")
            since = page["next"]
            stops = [e for e in page["events"] if e["event"] == "stopped"]
            if stops:
                assert stops[0]["body"]["reason"] == "breakpoint", stops
                frames = _ok(base, "POST", "/debug/stackTrace", {"threadId": 1}, agent="alice")
                assert frames["stackFrames"][0]["line"] == TWICE_LINE
                return
        raise AssertionError("A's game never stopped at A's breakpoint: Godot lost it")
    finally:
        clear = {"source": {"path": MAIN}, "breakpoints": []}
        _ok(base, "POST", "/debug/setBreakpoints", clear, agent="alice")
        _request(base, "POST", "/debug/terminate", {}, agent="alice")


@pytest.fixture
def project_b(tmp_path: Path) -> Path:
    return make_demo_project(tmp_path / "project-b")


def test_issue_11_wrong_editor_is_never_handshaken(editor: Editor, project_b: Path) -> None:
    """Sidecars of project B pointed at editor A's ports leave A alone and say why.

    One knows its editor's pid (the addon passes it): the listener's pid differs. The other
    has no pid: Godot's language server names A's project root, and the DAP waits for that
    verdict instead of sending `initialize`. A's breakpoints stay in Godot either way.
    """
    base = editor.base_url
    # A's sidecar knows its editor (--editor-pid, or its parent serving the link).
    assert _wait_status(base, _ready, 60)["sidecar"]["editor_pid"] == editor.pid
    set_bp = {"source": {"path": MAIN}, "breakpoints": [{"line": TWICE_LINE}]}
    assert _ok(base, "POST", "/debug/setBreakpoints", set_bp, agent="alice")["breakpoints"]
    # Editor B: a process that is not the one listening on A's ports.
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]) as b_editor:
        rogues = [
            DirectSidecar(project_b, editor.lsp_port, editor.dap_port, b_editor.pid),
            DirectSidecar(project_b, editor.lsp_port, editor.dap_port, None),
        ]
        try:
            for rogue in rogues:
                st = _wait_status(
                    rogue.base,
                    lambda s: (
                        s["debug_adapter"]["state"] == "wrong_editor"
                        and s["language_server"]["state"] == "wrong_editor"
                    ),
                    90,
                )
                assert st["overall_ready"] is False
                for key, port in (
                    ("debug_adapter", editor.dap_port),
                    ("language_server", editor.lsp_port),
                ):
                    svc = st[key]
                    assert svc["ready"] is False and svc["port"] == port
                    # Both projects named: this sidecar's and the editor's really listening.
                    assert str(project_b) in svc["message"], svc
                    assert str(editor.project) in svc["message"], svc
                    assert svc["next_retry_in_s"] is not None  # it keeps looking
                code, answer = _request(rogue.base, "POST", "/debug/threads", {})
                assert code == 503 and "wrong editor" in answer["error"]["message"]
            # A's view is unchanged, and so is Godot's.
            mine = _ok(base, "GET", "/debug/breakpoints", agent="alice")["breakpoints"]
            assert [b["line"] for b in mine[MAIN]["alice"]] == [TWICE_LINE], mine
            assert _ok(base, "GET", "/status")["overall_ready"] is True
            _breakpoints_in_godot_survive(editor)
        finally:
            for rogue in rogues:
                rogue.stop()
            b_editor.kill()


async def test_issue_11_disconnect_needs_force_is_announced_and_resumes(editor: Editor) -> None:
    base = editor.base_url
    _wait_status(base, _ready, 60)

    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(headers={"X-Agent-Id": "alice"}, timeout=timeout) as alice,
        aiohttp.ClientSession(headers={"X-Agent-Id": "bob"}, timeout=timeout) as bob,
    ):

        async def call(
            s: aiohttp.ClientSession, method: str, path: str, body: Any = None
        ) -> tuple[int, Any, Any]:
            async with s.request(method, base + path, json=body) as r:
                return r.status, await r.json(), r.headers

        since = (await call(bob, "GET", "/debug/events"))[1]["result"]["latest"]
        # Bob is connected (his keep-alive connection): Alice alone cannot switch it off.
        code, answer, _ = await call(alice, "POST", "/disconnect", {})
        assert code == 409 and answer["error"]["code"] == "conflict", answer
        assert "bob" in answer["error"]["agents"] and "force" in answer["error"]["message"]
        assert (await call(bob, "GET", "/status"))[1]["overall_ready"] is True

        body = {"force": True, "reason": "testing a restart", "resume_after": 2}
        code, answer, _ = await call(alice, "POST", "/disconnect", body)
        assert code == 200, answer
        gone_at = time.monotonic()
        assert answer["result"]["debug_adapter"]["state"] == "disconnected"

        # Bob sees who and why: in /status, in a 503, and in the event log.
        st = (await call(bob, "GET", "/status"))[1]
        assert st["overall_ready"] is False
        for key in ("debug_adapter", "language_server"):
            svc = st[key]
            assert (svc["down_by"], svc["down_reason"]) == ("alice", "testing a restart")
            assert "alice" in svc["message"] and svc["next_retry_in_s"] is not None
        code, refused, headers = await call(bob, "POST", "/debug/threads", {})
        assert code == 503 and "alice" in refused["error"]["message"]
        assert 1 <= int(headers["Retry-After"]) <= 2
        page = (await call(bob, "GET", f"/debug/events?since={since}"))[1]["result"]
        down = [e["body"] for e in page["events"] if e["event"] == "service_disconnected"]
        assert {d["service"] for d in down} == {"debug_adapter", "language_server"}, down
        assert all(d["by"] == "alice" and d["forced"] is True for d in down), down

        # Back by themselves, without anyone asking.
        deadline = gone_at + 30
        while not (await call(bob, "GET", "/status"))[1]["overall_ready"]:
            assert time.monotonic() < deadline, "services did not come back by themselves"
            await asyncio.sleep(0.2)
        print(f"services back {time.monotonic() - gone_at:.2f} s after the disconnect")
        back = (await call(bob, "GET", "/status"))[1]
        assert back["debug_adapter"]["down_by"] is None
        assert (await call(bob, "GET", "/debug/threads"))[0] == 200


@pytest.fixture
def starting_editor(tmp_path: Path, godot_bin: str) -> Iterator[Editor]:
    project = make_demo_project(tmp_path / "fresh")
    assert not (project / ".godot").exists()  # a fresh copy: the editor imports everything
    ed = Editor(project)
    try:
        yield ed
    finally:
        ed.stop()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def test_issue_11_services_ready_soon_after_a_fresh_editor_listens(
    starting_editor: Editor,
) -> None:
    """Time from Godot's server listening (or the sidecar being up, whichever is later: it
    cannot connect before it exists) to the service connected; states seen on the way."""
    ed = starting_editor
    start = time.monotonic()
    ed.spawn()
    listening: dict[str, float] = {}
    serving: float | None = None
    connected: dict[str, float] = {}
    seen: dict[str, set[str]] = {"debug_adapter": set(), "language_server": set()}
    ports = {"debug_adapter": ed.dap_port, "language_server": ed.lsp_port}
    while len(connected) < 2:
        assert time.monotonic() - start < 180, (listening, connected, seen)
        now = time.monotonic()
        for key, port in ports.items():
            if key not in listening and _accepts(port):
                listening[key] = now
        with contextlib.suppress(OSError, ValueError):
            st = get_json(ed.base_url + "/status", timeout=2)
            serving = serving or now
            for key in ports:
                state = st[key]["state"]
                if state == "connected":
                    connected.setdefault(key, now)
                elif key not in connected:
                    seen[key].add(state)
                    if state == "starting":
                        assert st[key]["message"] == "editor starting", st[key]
        time.sleep(0.05)
    assert serving is not None
    assert seen["debug_adapter"] | seen["language_server"] >= {"starting"}, seen
    for key in ports:
        # Only ever "starting" before the first connection: not "reconnecting" on a backoff.
        assert seen[key] <= {"starting"}, seen
    # Godot answers the handshake from its main loop, busy importing a fresh project, and its
    # language server parses every script before answering `initialize`: that part is Godot's
    # own work, logged by the sidecar; getting there must be prompt.
    names = {"debug_adapter": "Godot's debug adapter", "language_server": "language server"}
    for key, what in names.items():
        waited = connected[key] - max(listening[key], serving)
        handshake = _handshake_seconds(ed, what)
        print(
            f"fresh project: {key} connected {waited:.2f} s after it could have "
            f"(Godot's handshake {handshake:.2f} s); states seen {seen[key]}"
        )
        assert waited - handshake <= 2.0, f"{key}: {waited:.2f} s, handshake {handshake:.2f} s"


def _handshake_seconds(ed: Editor, what: str) -> float:
    m = ed.wait_for(rf"{what} connected on port \d+ \(connect and handshake took ([\d.]+) s\)", 10)
    return float(m.group(1))


def settings_ports_editor(project: Path, lsp_port: int, dap_port: int) -> Editor:
    """An editor started as a user would without port flags: Godot's servers and the addon
    both take the ports from the editor settings (a file of this editor's own here)."""
    home = project.parent / f"{project.name}-config"
    settings = {
        "network/language_server/remote_port": lsp_port,
        "network/debug_adapter/remote_port": dap_port,
    }
    ed = Editor(project, env=settings_home(home, settings), flags_only=True, port_flags=False)
    ed.lsp_port, ed.dap_port = lsp_port, dap_port
    return ed


def test_issue_11_second_editor_on_taken_ports_leaves_the_first_alone(
    editor: Editor, project_b: Path
) -> None:
    """Editor B's settings name editor A's ports (two editors with the same settings, the
    default 6005/6006 on a real machine): B's Godot cannot listen there, B's addon hands those
    ports to its sidecar, and the sidecar finds A listening. It says wrong_editor, naming both
    projects, and never handshakes: A's breakpoint survives."""
    base = editor.base_url
    _wait_status(base, _ready, 60)
    set_bp = {"source": {"path": MAIN}, "breakpoints": [{"line": TWICE_LINE}]}
    assert _ok(base, "POST", "/debug/setBreakpoints", set_bp, agent="alice")["breakpoints"]
    second = settings_ports_editor(project_b, editor.lsp_port, editor.dap_port)
    try:
        second.start()
        st = _wait_status(
            second.base_url,
            lambda s: (
                s["debug_adapter"]["state"] == "wrong_editor"
                and s["language_server"]["state"] == "wrong_editor"
            ),
            90,
        )
        assert st["overall_ready"] is False
        for key in ("debug_adapter", "language_server"):
            assert str(project_b) in st[key]["message"], st[key]
            assert str(editor.project) in st[key]["message"], st[key]
        mine = _ok(base, "GET", "/debug/breakpoints", agent="alice")["breakpoints"]
        assert [b["line"] for b in mine[MAIN]["alice"]] == [TWICE_LINE], mine
        _breakpoints_in_godot_survive(editor)
    finally:
        second.stop()


async def test_issue_11_disconnect_rules_in_process(tmp_path: Path) -> None:
    """Alone, an agent may disconnect; with someone else connected it needs force; bad
    fields are 400s naming the field."""

    config = Config(
        project=str(tmp_path),
        link_port=None,
        link_token="",
        serve_port=0,
        lsp_port=free_port(),
        dap_port=free_port(),
    )
    sidecar = Sidecar(config)
    client = TestClient(TestServer(sidecar.app))
    await client.start_server()
    try:
        alone = await client.post("/disconnect", json={"service": "dap", "reason": "mine"})
        assert alone.status == 200, await alone.text()
        shown = (await (await client.get("/status")).json())["debug_adapter"]
        assert shown["state"] == "disconnected"
        assert shown["down_reason"] == "mine" and shown["down_by"]
        events = (await (await client.get("/debug/events")).json())["result"]["events"]
        assert [e["event"] for e in events] == ["service_disconnected"]
        assert events[0]["body"]["forced"] is False and events[0]["body"]["others"] == []

        sidecar.agents.add(7, "127.0.0.1:4000").name = "bob"
        busy = await client.post("/disconnect", json={"service": "lsp"})
        answer = await busy.json()
        assert busy.status == 409 and answer["error"]["agents"] == ["bob"], answer
        for body, field in (
            ({"force": "yes"}, "force"),
            ({"resume_after": -1}, "resume_after"),
            ({"resume_after": 601}, "resume_after"),
            ({"reason": 5}, "reason"),
        ):
            bad = await client.post("/disconnect", json=body)
            answer = await bad.json()
            assert bad.status == 400 and answer["error"]["field"] == field, answer
        forced = await client.post("/disconnect", json={"service": "lsp", "force": True})
        assert forced.status == 200, await forced.text()
    finally:
        await client.close()
        await sidecar.dap_session.peer.disconnect()
        await sidecar.lsp_session.peer.disconnect()


def _config(project: Path, **ports: int) -> Config:
    return Config(
        project=str(project),
        link_port=None,
        link_token="",
        serve_port=0,
        lsp_port=ports.get("lsp_port") or free_port(),
        dap_port=ports.get("dap_port") or free_port(),
    )


@pytest.mark.slow  # waits out the LSP verdict and retries (~1.4 s)
async def test_issue_11_dap_without_proof_stays_unverified_and_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No editor pid and no word from the language server: the DAP port is never opened
    (time running out is no proof), /status says why, and it connects once proven."""
    monkeypatch.setattr(bridge_module, "LSP_VERDICT_WAIT", 0.2)

    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sidecar = Sidecar(_config(tmp_path, dap_port=port))
    assert sidecar.identity.editor_pid is None
    sidecar.dap_session.start()  # the LSP stays down: no verdict ever comes
    try:
        await _until(lambda: sidecar.dap.retry_count >= 3, 10)
        assert accepted == []
        shown = sidecar.dap.as_json()
        assert shown["ready"] is False and shown["state"] in ("starting", "reconnecting")
        assert "unverified" in shown["message"] and str(tmp_path) in shown["message"], shown
        sidecar.lsp_session.identified = True  # the language server named our project
        await _until(lambda: bool(accepted), 10)
    finally:
        await sidecar.dap_session.peer.disconnect()
        server.close()
        await server.wait_closed()


async def _fake_lsp(stream: MessageStream) -> None:
    """Answers `initialize` like a Godot whose project is ours (no changeWorkspace)."""
    while True:
        msg = await stream.read()
        if msg.get("method") == "initialize":
            stream.write({"jsonrpc": "2.0", "id": msg["id"], "result": {"capabilities": {}}})
            await stream.drain()


async def test_issue_11_lsp_proof_is_forgotten_when_its_connection_is_lost(tmp_path: Path) -> None:
    streams: list[MessageStream] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = MessageStream(reader, writer, "client")
        streams.append(stream)
        with contextlib.suppress(Exception):
            await _fake_lsp(stream)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = LspSession(_config(tmp_path), ServiceStatus("language_server", port))
    try:
        assert await session.connect(wait=10), session.status.as_json()
        assert session.identified is True
        server.close()
        for stream in streams:
            stream.close()
        await _until(lambda: not session.peer.connected, 5)
        # Whoever serves the port next has proven nothing yet.
        assert session.identified is None
    finally:
        await session.peer.disconnect()
        await server.wait_closed()


async def test_issue_11_mcp_sessions_count_as_other_agents_for_disconnect(tmp_path: Path) -> None:
    sidecar = Sidecar(_config(tmp_path))
    sidecar.mcp.sessions.opened("0123456789abcdef")  # an MCP agent, served in-process
    client = TestClient(TestServer(sidecar.app))
    await client.start_server()
    try:
        busy = await client.post("/disconnect", json={"service": "dap"})
        answer = await busy.json()
        assert busy.status == 409, answer
        assert answer["error"]["agents"] == ["mcp-01234567"], answer
        # The MCP agent itself is not "another" agent.
        assert sidecar._others("mcp-01234567") == []
    finally:
        await client.close()
        await sidecar.dap_session.peer.disconnect()
        await sidecar.lsp_session.peer.disconnect()


def test_issue_11_bridge_announcements_wait_behind_a_stop_being_announced(
    tmp_path: Path,
) -> None:
    """A bridge event during a breakpoint stop's announcement comes after the stop, like
    Godot's own events (DapSession.announce, not a write past the hold)."""
    sidecar = Sidecar(_config(tmp_path))
    session = sidecar.dap_session
    session._held = []  # a breakpoint stop is being announced
    sidecar._announce("service_disconnected", {"service": "debug_adapter"})
    assert session.events.latest == 0
    assert [held[0] for held in session._held] == ["service_disconnected"]
    session._held = None
    sidecar._announce("service_disconnected", {"service": "language_server"})
    assert session.events.latest == 1


def test_issue_11_listener_of_without_net_connections_cannot_tell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """psutil 5.x has no Process.net_connections: 'cannot tell', not an AttributeError."""
    import psutil

    monkeypatch.delattr(psutil.Process, "net_connections")
    monkeypatch.delattr(psutil, "net_connections")
    with _listen(0) as server:
        assert listener_of(server.getsockname()[1], os.getpid()).ours is None


async def test_issue_11_a_port_nobody_listens_on_is_not_connected_to() -> None:
    """The pid check tells an absent server (the editor starting) from a hidden one, so a
    starting editor is probed without connecting and without an 'unverified' wait."""
    port = free_port()
    found = listener_of(port, os.getpid())
    assert found.absent is True and found.ours is None
    identity = EditorIdentity(os.getpid(), "/nowhere")
    with pytest.raises(TransportError, match="nothing listens") as err:
        await identity.check("debug_adapter", port)
    assert not isinstance(err.value, WrongEditor)

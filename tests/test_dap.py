"""The DAP session: its parts alone, then driven through the debug operations' handlers
(their declarations parse the arguments) against a real headless Godot editor and a real
launched demo game (no addon, no HTTP: see test_debug_http.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from harness import REPO, free_port

import sidecar.godot.dap.game as game_module
from sidecar.agents import Agent
from sidecar.api import debug as debug_api
from sidecar.config import Config
from sidecar.errors import RequestError, SidecarError, TransportError
from sidecar.godot.dap.answers import GodotError, body_or_raise
from sidecar.godot.dap.breakpoints import FileBreakpoints, SourceBreakpoint, never_stops
from sidecar.godot.dap.events import DebugEvent
from sidecar.godot.dap.inspector import frame_keys
from sidecar.godot.dap.session import DapSession
from sidecar.godot.identity import ProcessWatch, is_game_of
from sidecar.godot.peer import DapCorrelation, Peer
from sidecar.godot.service import ServiceStatus, State
from sidecar.web.http import RouteTable
from sidecar.web.operation import Caller

MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()


def line_of(snippet: str) -> int:
    (index,) = [i for i, text in enumerate(MAIN_GD) if snippet in text]
    return index + 1


SUM = line_of("var sum: int = a + b")
RETURN_SUM = line_of("return sum")
DOUBLED = line_of("var doubled: int = add_numbers(n, n)")
RETURN_DOUBLED = line_of("return doubled")
READY_CALL = line_of("var total: int = add_numbers(2, 3)")
MAIN = "res://demo/main.gd"


async def call(session: DapSession, command: str, agent: str, args: dict[str, Any]) -> Any:
    """The debug operation served at /debug/<command>, called as an agent would: its
    arguments parsed by its declaration, then its handler (no HTTP)."""
    routes = RouteTable()
    debug_api.register(routes, session)
    (bound,) = [b for b in routes.bound() if b.operation.path == f"/debug/{command}"]
    return await bound.call(args, Caller(agent))


# -- parts, no Godot -------------------------------------------------------------------


def test_godot_failures_map_to_statuses_with_its_message() -> None:
    wrong_path = {
        "success": False,
        "message": "wrong_path",
        "body": {
            "error": {
                "format": 'client is on "{clientPath}", editor on "{editorPath}"',
                "variables": {"clientPath": "/x", "editorPath": "/p"},
            }
        },
    }
    with pytest.raises(GodotError) as err:
        body_or_raise(wrong_path, "setBreakpoints")
    assert err.value.status == 400
    assert 'client is on "/x", editor on "/p"' in err.value.message
    assert "setBreakpoints" in err.value.message
    with pytest.raises(GodotError) as err:
        body_or_raise({"success": False, "message": "unknown"}, "variables")
    assert err.value.status == 502 and err.value.godot_error == "unknown"
    assert body_or_raise({"success": True}, "next") == {}


def test_issue_11_lines_where_the_gamenever_stops() -> None:
    text = [
        "extends Node",
        "class_name Thing",
        "",
        "signal hit(damage: int)",
        "\t# a comment",
        "var speed = 4 # a comment after code",
        "func run():",
        "\tspeed += 1",
        "   ",
    ]
    never = {n: never_stops(text, n) for n in range(1, len(text) + 2)}
    assert [n for n, why in never.items() if why is None] == [6, 7, 8]
    assert "blank" in (never[3] or "") and "blank" in (never[9] or "")
    assert "comment" in (never[5] or "")
    assert "signal hit" in (never[4] or "") and "extends Node" in (never[1] or "")
    assert "past the end" in (never[10] or "")


def test_issue_11_frames_compare_by_function_and_script() -> None:
    def frame(name: str, path: str, line: int) -> dict[str, Any]:
        return {"id": 0, "name": name, "line": line, "source": {"path": path}}

    before = [frame("f", "/p/a.gd", 3), frame("g", "/p/b.gd", 9)]
    after = [frame("g", "/p/b.gd", 10)]
    assert frame_keys(after) == frame_keys(before[1:])  # the caller moved on a line
    assert frame_keys([frame("g", "/p/c.gd", 9)]) != frame_keys(before[1:])


async def test_issue_11_bad_arguments_are_400_before_the_adapter_is_asked_for() -> None:
    """A session that never connected: a malformed request is a 400 naming the field, a
    well-formed one the 503 of an absent adapter (and nothing of it is kept)."""
    config = Config(
        project=str(REPO),
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=0,
        dap_port=free_port(),  # nothing listens there
    )
    session = DapSession(config)
    for command, args, field in (
        ("setBreakpoints", {"source": 5}, "source"),
        ("evaluate", {"frameId": "x", "expression": "a"}, "frameId"),
        ("variables", {}, "variablesReference"),
        ("next", {"threadId": "1"}, "threadId"),
    ):
        with pytest.raises(RequestError) as err:
            await call(session, command, "alice", args)
        assert err.value.status == 400 and err.value.details["field"] == field, command
    good = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM}]}
    for command, args in (("setBreakpoints", good), ("terminate", {})):
        with pytest.raises(TransportError) as unavailable:
            await call(session, command, "alice", args)
        assert unavailable.value.status == 503, command
    assert session.breakpoints() == {}


async def test_issue_12_bad_breakpoint_lines_are_400s_naming_the_field() -> None:
    """Checked by the operation's declaration, whatever the adapter's state; DAP's older
    `lines` form names the item itself (it was `lines[0].line`)."""
    session = offline_session()
    for body, field in (
        ({"source": {"path": MAIN}, "breakpoints": [{"line": 0}]}, "breakpoints[0].line"),
        ({"source": {"path": MAIN}, "breakpoints": [{"line": "3"}]}, "breakpoints[0].line"),
        ({"source": {"path": MAIN}, "breakpoints": [{"line": 3.5}]}, "breakpoints[0].line"),
        ({"source": {"path": MAIN}, "lines": [SUM, 0]}, "lines[1]"),
        ({"source": {"path": ""}}, "source.path"),
    ):
        with pytest.raises(RequestError) as err:
            await call(session, "setBreakpoints", "alice", body)
        assert err.value.status == 400 and err.value.details["field"] == field, body
        assert field in err.value.message
    assert session.breakpoints() == {}


async def test_issue_14_conditions_are_taken_and_bad_ones_refused_as_declared() -> None:
    """condition, hitCondition and logMessage are taken now (issue 14: the bridge emulates
    them); a hitCondition or logMessage that does not parse is a 400 naming the field, for
    REST and MCP alike (one parse), before the adapter is asked for."""
    fields = debug_api.SourceBreakpoint.model_json_schema()["properties"]
    session = offline_session()
    for name, bad in (("hitCondition", "often"), ("logMessage", "{x")):
        assert "refused" not in fields[name]["description"]
        body = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM, name: bad}]}
        with pytest.raises(RequestError) as err:
            await call(session, "setBreakpoints", "alice", body)
        assert err.value.status == 400
        assert err.value.details["field"] == f"breakpoints[0].{name}"
    # null is absent, as DAP clients send it; a good one reaches the (absent) adapter.
    for good in ({"condition": None}, {"condition": "a > 1", "hitCondition": "% 2"}):
        body = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM, **good}]}
        with pytest.raises(TransportError):
            await call(session, "setBreakpoints", "alice", body)


def test_issue_12_the_dap_session_imports_nothing_of_the_web_or_api_layers() -> None:
    code = (
        "import sys, sidecar.godot.dap.session\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('sidecar.web', 'sidecar.api', "
        "'aiohttp')))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.stdout.strip() == "", out.stdout


def offline_session(**config: Any) -> DapSession:
    """A session on the demo project that never connects (its parts are driven by hand)."""
    return DapSession(
        Config(
            project=str(REPO),
            link_port=None,
            link_token="",
            serve_port=None,
            lsp_port=0,
            dap_port=free_port(),  # nothing listens there
            **config,
        )
    )


async def test_issue_11_negative_frame_and_reference_are_400_whatever_the_state() -> None:
    """Checked in the parse half: a 400 even where the adapter is away (or the game runs)."""
    session = offline_session()
    for command, args, field in (
        ("scopes", {"frameId": -1}, "frameId"),
        ("evaluate", {"expression": "a", "frameId": -2}, "frameId"),
        ("variables", {"variablesReference": 0}, "variablesReference"),
        ("variables", {"variablesReference": -5}, "variablesReference"),
    ):
        with pytest.raises(RequestError) as err:
            await call(session, command, "alice", args)
        assert err.value.status == 400 and err.value.details["field"] == field, args


def stopped_at(line: int) -> dict[str, Any]:
    body = {"reason": "breakpoint", "threadId": 1, "hitBreakpointIds": [99], "at": line}
    return {"type": "event", "event": "stopped", "body": body}


async def test_issue_11_two_close_breakpoint_stops_are_each_announced_with_their_own_place() -> (
    None
):
    """Stop 1's trace is still being read when stop 2 comes: stop 1 must not take stop 2's
    place, and stop 2 gets its own place (not Godot's raw event)."""
    session = offline_session()
    script = str(REPO / "demo" / "main.gd")
    release = asyncio.Event()

    async def trace(agent: str, thread: int) -> dict[str, Any]:
        await release.wait()  # Godot answers after stop 2 came in
        stop = session.game.stop
        assert stop is not None
        frame = {"name": "f", "line": stop.body["at"], "source": {"path": script}}
        return {"stackFrames": [frame]}

    session.inspector.trace = trace  # type: ignore[method-assign]
    session._on_event(stopped_at(SUM))
    session._on_event({"type": "event", "event": "output", "body": {"output": "x"}})
    session._on_event(stopped_at(RETURN_SUM))
    release.set()
    for _ in range(100):
        if session._held is None and session.events.latest >= 3:
            break
        await asyncio.sleep(0.01)
    events = [(e.event, e.body) for e in session.events.after(0)[0]]
    assert [name for name, _ in events] == ["stopped", "output", "stopped"]
    first, last = events[0][1], events[2][1]
    # Stop 1 ran on before its place could be read: announced without one.
    assert "line" not in first and first["hitBreakpointIds"] == [] == first["hit_by"]
    assert last["line"] == RETURN_SUM and last["source"]["path"] == MAIN
    assert last["hitBreakpointIds"] == [session.book.breakpoint_id(script, RETURN_SUM)]


async def test_issue_11_a_lost_link_cancels_the_search_for_its_stop() -> None:
    session = offline_session()
    recovering = session._spawn(asyncio.sleep(30))
    session._recovering = recovering
    session._on_lost("gone")
    await asyncio.sleep(0)
    assert recovering.cancelled()


async def test_issue_11_an_evaluation_error_is_found_past_the_redraws_of_a_stopped_game() -> None:
    session = offline_session()
    data = session.custom_data
    data.append("set_pid", {"data": [1]})
    since = data.latest
    data.append("evaluation_return", {"data": ["1 +", 0, "", None]})
    data.append("servers:drawn", {"data": []})
    data.append("performance:profile_frame", {"data": []})
    data.append("error", {"data": [0, 0, 0, 0, "", "", 0, "", "parse error", False]})
    assert await session.inspector.evaluation_error("1 +", since) == "parse error"
    # A real null: the game moved on to something else.
    since = data.latest
    data.append("evaluation_return", {"data": ["n", 0, "", None]})
    data.append("servers:drawn", {"data": []})
    data.append("output", {"data": []})
    data.append("error", {"data": [0, 0, 0, 0, "", "", 0, "", "later", False]})
    assert await session.inspector.evaluation_error("n", since) is None


async def test_issue_11_breakpoints_of_a_closing_connection_are_not_kept(tmp_path: Path) -> None:
    """A setBreakpoints of a connection waiting on the file's lock when it closes."""
    session = offline_session()
    sent: list[dict[str, Any]] = []

    async def godot(agent: str, command: str, arguments: Any) -> dict[str, Any]:
        sent.append(arguments)
        return {"breakpoints": []}

    session._godot = godot  # type: ignore[method-assign]
    script = str(REPO / "demo" / "main.gd")
    session.book.files[script] = bps = FileBreakpoints()
    agent = Agent(7, "peer")
    async with bps.lock:
        wanted = [SourceBreakpoint(SUM)]
        setting = asyncio.ensure_future(session.book.set(agent.identity, script, wanted))
        await asyncio.sleep(0.05)
        session.agent_left(agent)
    await setting
    for _ in range(50):
        if not session._tasks:
            break
        await asyncio.sleep(0.01)
    assert session.breakpoints() == {}
    assert sent[-1]["breakpoints"] == []


# slow: with no game to watch, the session waits out TERMINATE_WAIT (2 s) before giving up.
@pytest.mark.slow
async def test_issue_11_an_end_nobody_saw_is_not_inferred() -> None:
    """No `set_pid` and no editor pid to find the game by: the bridge cannot tell that the
    game ended, so it keeps saying it runs rather than announce an end that did not happen."""
    session = offline_session()
    session.game.running = True
    await session._confirm_end(session.events.latest, None, "alice", session.game.launches)
    assert session.running
    assert session.events.latest == 0


def test_issue_11_only_this_editors_game_on_this_project_is_ended() -> None:
    game = ["/bin/godot", "--path", str(REPO), "--remote-debug", "tcp://127.0.0.1:6007"]
    assert is_game_of(game, str(REPO))
    assert is_game_of([*game, "--editor-pid", "42"], str(REPO), editor_pid=42)
    assert not is_game_of([*game, "--editor-pid", "43"], str(REPO), editor_pid=42)
    assert not is_game_of(game, "/elsewhere")
    assert not is_game_of(game[:-2], str(REPO))


async def test_issue_11_a_reused_pid_gets_no_second_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The game went after SIGTERM and its pid went to another process: no SIGKILL."""
    game = ["/bin/godot", "--path", str(REPO), "--remote-debug", "tcp://127.0.0.1:6007"]
    lines = iter([game, ["/usr/bin/vim"], ["/usr/bin/vim"]])
    monkeypatch.setattr(game_module, "cmdline", lambda pid: next(lines, ["/usr/bin/vim"]))
    monkeypatch.setattr(game_module, "GAME_KILL_WAIT", 0.05)
    monkeypatch.setattr(game_module.os, "kill", lambda pid, sig: signals.append(sig))
    signals: list[int] = []
    assert await game_module.end_game_process(4242, str(REPO))
    assert signals == [signal.SIGTERM]


# -- a real editor ---------------------------------------------------------------------


@dataclass
class GodotDap:
    project: Path
    port: int
    log: Path
    pid: int


def _project_copy(dst: Path) -> Path:
    """The demo project without the addon; a headless editor needs a headless game."""
    dst.mkdir(parents=True, exist_ok=True)
    text = (REPO / "project.godot").read_text()
    text = (
        text.split("[editor_plugins]")[0].rstrip()
        + '\n\n[editor]\n\nrun/main_run_args="--headless"\n'
    )
    (dst / "project.godot").write_text(text)
    shutil.copytree(REPO / "demo", dst / "demo")
    return dst


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"editor exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as s, contextlib.suppress(OSError):
            s.settimeout(0.5)
            s.connect(("127.0.0.1", port))
            return
        time.sleep(0.1)
    raise AssertionError(f"DAP port never opened:\n{log.read_text()[-3000:]}")


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """The editor and the games it launched, by pid."""
    pids = [proc.pid]
    with contextlib.suppress(psutil.Error):
        pids += [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def godot(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[GodotDap]:
    project = _project_copy(tmp_path_factory.mktemp("dap") / "project")
    port = free_port()
    log = project.parent / "editor.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                godot_bin,
                *("--headless", "--editor", "--path", str(project)),
                *("--dap-port", str(port), "--lsp-port", str(free_port())),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_port(port, proc, log, timeout=120)
        yield GodotDap(project, port, log, proc.pid)
    finally:
        _kill_tree(proc)


Scenario = Callable[[DapSession], Awaitable[None]]


async def run(godot: GodotDap, scenario: Scenario, timeout: float = 40) -> None:
    """A fresh session for one scenario; the game is ended whatever happens."""
    config = Config(
        project=str(godot.project),
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=0,
        dap_port=godot.port,
    )
    session = DapSession(config)
    assert await session.connect(), session.status.as_json()
    try:
        await call(session, "terminate", "test", {})  # a game left by an earlier test
        await asyncio.wait_for(scenario(session), timeout)
    finally:
        with contextlib.suppress(Exception):
            await call(session, "terminate", "test", {})
        await session.stop()


async def launch_and_stop(session: DapSession, agent: str = "alice") -> DebugEvent:
    since = session.events.latest
    await call(session, "launch", agent, {"scene": "main"})
    return await next_stop(session, since)


async def next_stop(session: DapSession, since: int, timeout: float = 10) -> DebugEvent:
    event = await session.events.next_of(since, frozenset({"stopped"}), timeout)
    assert event is not None, "the game did not stop"
    return event


async def where(session: DapSession, agent: str = "alice") -> list[tuple[str, int]]:
    trace = await call(session, "stackTrace", agent, {"threadId": 1})
    return [(f["name"], f["line"]) for f in trace["stackFrames"]]


async def launch_until_output(session: DapSession, agent: str = "alice") -> None:
    """Launch the game and wait (bounded) for its first output: it is in its main loop."""
    launched = session.events.latest
    await call(session, "launch", agent, {})
    assert await session.events.next_of(launched, frozenset({"output"}), 20), "game not up"


async def set_bps(session: DapSession, agent: str, lines: list[int]) -> list[dict[str, Any]]:
    body = {"source": {"path": MAIN}, "breakpoints": [{"line": n} for n in lines]}
    return (await call(session, "setBreakpoints", agent, body))["breakpoints"]


async def names_and_values(session: DapSession, ref: int) -> dict[str, str]:
    body = await call(session, "variables", "alice", {"variablesReference": ref})
    return {v["name"]: v["value"] for v in body["variables"]}


async def test_breakpoint_stop_stack_scopes_variables_evaluate(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        start = time.monotonic()
        (bp,) = await set_bps(session, "alice", [SUM])
        assert bp["verified"] is True and bp["line"] == SUM
        assert bp["source"]["path"] == str((godot.project / "demo" / "main.gd").resolve())
        stop = await launch_and_stop(session)
        print(f"setBreakpoints + launch -> stopped: {time.monotonic() - start:.2f} s")
        assert stop.body["reason"] == "breakpoint"
        assert session.stopped is not None

        trace = await call(session, "stackTrace", "alice", {"threadId": 1})
        top, caller = trace["stackFrames"]
        assert (top["name"], top["line"]) == ("add_numbers", SUM)
        assert top["source"]["path"].endswith("demo/main.gd")
        assert (caller["name"], caller["line"]) == ("_ready", READY_CALL)
        assert trace["totalFrames"] == 2

        # Five agents at once get the same real stack.
        traces = await asyncio.gather(
            *(call(session, "stackTrace", f"agent{i}", {"threadId": 1}) for i in range(5))
        )
        assert all(t == trace for t in traces)

        scopes = (await call(session, "scopes", "alice", {"frameId": top["id"]}))["scopes"]
        assert [s["name"] for s in scopes] == ["Locals", "Members", "Globals"]
        local = await names_and_values(session, scopes[0]["variablesReference"])
        assert local["a"] == "2" and local["b"] == "3" and "sum" in local
        assert "counter" in await names_and_values(session, scopes[1]["variablesReference"])

        # The caller's frame: its own locals, not the top frame's.
        outer = (await call(session, "scopes", "bob", {"frameId": caller["id"]}))["scopes"]
        assert set(await names_and_values(session, outer[0]["variablesReference"])) == {"total"}

        result = await call(session, "evaluate", "alice", {"expression": "a + b", "frameId": 0})
        assert result["result"] == "5"
        result = await call(session, "evaluate", "bob", {"expression": "a * 10 + b"})
        assert result["result"] == "23"

    await run(godot, scenario)


async def test_next_step_in_and_step_out_move_to_the_expected_lines(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [DOUBLED])
        await launch_and_stop(session)
        assert (await where(session))[0] == ("twice", DOUBLED)
        await set_bps(session, "alice", [])  # only the steps stop the game from here on

        await call(session, "stepIn", "alice", {"threadId": 1})
        stack = await where(session)  # waits for the step's stop rather than a 409
        assert stack[:2] == [("add_numbers", SUM), ("twice", DOUBLED)]

        await call(session, "next", "alice", {"threadId": 1})
        assert (await where(session))[0] == ("add_numbers", RETURN_SUM)

        result = await call(session, "stepOut", "alice", {"threadId": 1})
        assert result["stopped"] is True and result["steps"] >= 1
        stack = await where(session)
        assert stack[0] == ("twice", RETURN_DOUBLED)
        assert len(stack) == 2

        # next steps over a call: from the call line straight to the line after it.
        await set_bps(session, "alice", [DOUBLED])
        since = session.events.latest
        await call(session, "continue", "alice", {"threadId": 1})
        await next_stop(session, since)
        assert (await where(session))[0] == ("twice", DOUBLED)
        await call(session, "next", "alice", {"threadId": 1})
        assert (await where(session))[0] == ("twice", RETURN_DOUBLED)

    await run(godot, scenario)


async def test_continue_resumes_and_game_output_reaches_every_reader(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        before = session.events.latest
        readers = [asyncio.create_task(session.wait_events(before, wait=15)) for _ in range(2)]
        stop = await launch_and_stop(session)
        pages = await asyncio.gather(*readers)
        for page in pages:  # both pollers were woken; each sees the log from `before`
            assert page["dropped"] == 0
            assert page["events"][0]["seq"] == before + 1
        stopped = [
            [e["seq"] for e in p["events"] if e["event"] == "stopped"]
            for p in await asyncio.gather(
                session.wait_events(before, 0), session.wait_events(before, 0)
            )
        ]
        assert stopped[0] == stopped[1] == [stop.seq]

        await set_bps(session, "alice", [])
        since = session.events.latest
        result = await call(session, "continue", "alice", {"threadId": 1})
        assert result["allThreadsContinued"] is True
        assert session.stopped is None
        seen: list[str] = []
        deadline = time.monotonic() + 10
        cursor = since
        while not any("demo: total=5" in s for s in seen) and time.monotonic() < deadline:
            page = await session.wait_events(cursor, wait=2)
            cursor = page["next"]
            seen += [e["body"].get("output", "") for e in page["events"] if e["event"] == "output"]
        assert any("demo: total=5" in s for s in seen), seen
        kinds = [e["event"] for e in (await session.wait_events(since, 0))["events"]]
        assert "continued" in kinds

    await run(godot, scenario)


async def test_two_agents_breakpoints_in_one_file_do_not_clobber(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        alice = await set_bps(session, "alice", [SUM])
        bob = await set_bps(session, "bob", [DOUBLED, RETURN_DOUBLED])
        assert [(b["line"], b["verified"]) for b in alice] == [(SUM, True)]
        assert [(b["line"], b["verified"]) for b in bob] == [
            (DOUBLED, True),
            (RETURN_DOUBLED, True),
        ]
        assert session.breakpoints()[MAIN] == {
            "alice": [{"line": SUM}],
            "bob": [{"line": DOUBLED}, {"line": RETURN_DOUBLED}],
        }
        await launch_and_stop(session)
        assert (await where(session))[0] == ("add_numbers", SUM)  # alice's, from _ready

        # Bob replaces his own set; his answer lists only his own breakpoints.
        bob = await set_bps(session, "bob", [RETURN_DOUBLED])
        assert [b["line"] for b in bob] == [RETURN_DOUBLED]

        # DOUBLED is gone, alice's SUM is not: the next stop is SUM, called from twice.
        since = session.events.latest
        await call(session, "continue", "bob", {"threadId": 1})
        await next_stop(session, since)
        assert (await where(session))[:2] == [("add_numbers", SUM), ("twice", DOUBLED)]
        since = session.events.latest
        await call(session, "continue", "alice", {"threadId": 1})
        await next_stop(session, since)
        assert (await where(session))[0] == ("twice", RETURN_DOUBLED)

        # Bob clears his; alice's breakpoint still stops the game on the next tick.
        assert await set_bps(session, "bob", []) == []
        assert session.breakpoints(agent="bob") == {}
        since = session.events.latest
        await call(session, "continue", "bob", {"threadId": 1})
        await next_stop(session, since)
        assert (await where(session))[:2] == [("add_numbers", SUM), ("twice", DOUBLED)]

        # A line past the end is refused for its owner without spoiling the union.
        past = await set_bps(session, "carol", [SUM, 999])
        assert [(b["line"], b["verified"]) for b in past] == [(SUM, True), (999, False)]
        assert "past the end" in past[1]["message"]

    await run(godot, scenario)


async def test_409_while_not_stopped_and_400_naming_the_field(godot: GodotDap) -> None:
    async def expect(
        session: DapSession, command: str, args: dict[str, Any], status: int, field: str = ""
    ) -> SidecarError:
        with pytest.raises(SidecarError) as err:
            await call(session, command, "alice", args)
        assert err.value.status == status, (command, err.value.message)
        if field:
            assert err.value.details["field"] == field
            # A 400 names it in words too; a 404 or 403 names the file instead.
            assert err.value.status != 400 or field in err.value.message
        return err.value

    async def scenario(session: DapSession) -> None:
        # No game at all.
        await expect(session, "stackTrace", {"threadId": 1}, 409)
        err = await expect(session, "pause", {"threadId": 1}, 409)
        assert "launch" in err.message

        # Bad requests are 400 (403 outside the project) before anything else.
        await expect(session, "evaluate", {}, 400, "expression")
        await expect(session, "variables", {}, 400, "variablesReference")
        await expect(session, "scopes", {"frameId": "top"}, 400, "frameId")
        await expect(session, "setBreakpoints", {}, 400, "source")
        await expect(session, "setBreakpoints", {"source": {}}, 400, "source.path")
        bad_line = {"source": {"path": MAIN}, "breakpoints": [{"line": 3}, {"line": "x"}]}
        await expect(session, "setBreakpoints", bad_line, 400, "breakpoints[1].line")
        await expect(session, "setBreakpoints", {"source": {"path": "/etc/hosts"}}, 403)
        await expect(session, "setBreakpoints", {"source": {"path": "res://nope.gd"}}, 404)
        await expect(session, "launch", {"scene": "res://demo/nope.tscn"}, 404, "scene")
        await expect(session, "launch", {"scene": "res://demo/main.gd"}, 400, "scene")

        # A running game: everything that needs a stop is a quick, clear 409.
        await call(session, "launch", "alice", {})
        start = time.monotonic()
        for command, args in [
            ("stackTrace", {"threadId": 1}),
            ("scopes", {"frameId": 0}),
            ("variables", {"variablesReference": 1}),
            ("evaluate", {"expression": "counter"}),
            ("next", {"threadId": 1}),
            ("stepIn", {"threadId": 1}),
            ("stepOut", {"threadId": 1}),
            ("continue", {"threadId": 1}),
        ]:
            err = await expect(session, command, args, 409)
            assert err.code == "not_stopped" and command in err.message
        assert time.monotonic() - start < 1.0
        threads = await call(session, "threads", "alice", {})
        assert threads["threads"] == [{"id": 1, "name": "Main"}]

        # Pause stops it; then the same requests work.
        since = session.events.latest
        await call(session, "pause", "alice", {"threadId": 1})
        stop = await next_stop(session, since)
        assert stop.body["reason"] == "paused"
        assert "stackFrames" in await call(session, "stackTrace", "alice", {})
        assert (await call(session, "pause", "bob", {})) == {"alreadyStopped": True}
        await call(session, "continue", "alice", {})
        assert session.stopped is None

    await run(godot, scenario)


async def test_reconnect_puts_the_agents_breakpoints_back(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        await session.disconnect()
        assert session.status.state is State.DISCONNECTED
        with pytest.raises(TransportError) as err:
            await call(session, "threads", "alice", {})
        assert err.value.status == 503 and "Retry-After" in err.value.headers
        # The new connection's initialize clears Godot's breakpoints; ours are re-sent.
        assert await session.connect()
        await launch_and_stop(session)
        assert (await where(session))[0] == ("add_numbers", SUM)

    await run(godot, scenario)


async def test_relaunch_while_stopped_still_announces_stops(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        await launch_and_stop(session)
        # Godot forgets its breakpoint list when a game ends; the session re-sends it.
        stop = await launch_and_stop(session, agent="bob")
        assert stop.body["reason"] == "breakpoint"
        assert (await where(session))[0] == ("add_numbers", SUM)

    await run(godot, scenario)


async def test_stopping_the_session_takes_its_breakpoints_out_of_the_editor(
    godot: GodotDap,
) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        await session.stop()
        # A client that does not initialize (which would clear them anyway) runs the
        # game: with a breakpoint left in the editor it would hang before this print.
        outputs: list[str] = []
        raw = Peer(
            ServiceStatus("raw", godot.port),
            DapCorrelation(),
            what="raw DAP client",
            on_message=lambda m: outputs.append(str((m.get("body") or {}).get("output", ""))),
            ping_interval=None,
        )
        assert await raw.connect()
        try:
            launch = raw.issue("launch", {"project": str(godot.project), "scene": "main"})
            done = raw.issue("configurationDone")
            await asyncio.gather(raw.answer(launch), raw.answer(done))
            deadline = time.monotonic() + 10
            while not any("demo: total=5" in o for o in outputs):
                assert time.monotonic() < deadline, outputs
                await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                await raw.request("terminate")
            await raw.disconnect()

    await run(godot, scenario)


# -- issue 11 --------------------------------------------------------------------------

COUNTER = line_of("counter += 1")  # in _process: a stop with one frame


def kinds_since(session: DapSession, since: int) -> list[str]:
    return [e.event for e in session.events.after(since)[0]]


async def refused(session: DapSession, command: str, args: dict[str, Any]) -> RequestError:
    """The request fails at once: Godot is never asked (a round trip could time out)."""
    issue = session.peer.issue
    asked: list[str] = []

    def spy(name: str, *rest: Any, **kwargs: Any) -> Any:  # every request to Godot passes here
        asked.append(name)
        return issue(name, *rest, **kwargs)

    session.peer.issue = spy  # type: ignore[method-assign]
    start = time.monotonic()
    try:
        with pytest.raises(RequestError) as err:
            await call(session, command, "alice", args)
    finally:
        del session.peer.issue  # the peer's own method again
    assert command not in asked, (command, args, asked)
    # Far below the ~5 s after which Godot fails a deferred request, even on a loaded machine.
    assert time.monotonic() - start < 2.0, (command, args)
    return err.value


async def test_issue_11_bad_frame_or_reference_is_refused_at_once_and_the_game_stays_stopped(
    godot: GodotDap,
) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [COUNTER])
        stop = await launch_and_stop(session)
        assert session.stopped is not None
        epoch = session.stopped.epoch
        assert len(await where(session)) == 1

        err = await refused(session, "evaluate", {"expression": "counter", "frameId": 5})
        assert err.status == 400 and err.details["field"] == "frameId"
        assert "ids 0 to 0" in err.message
        err = await refused(session, "scopes", {"frameId": -1})
        assert err.status == 400 and err.details["field"] == "frameId"
        for ref in (-1, 0, 999):
            err = await refused(session, "variables", {"variablesReference": ref})
            assert err.status == 400 and err.details["field"] == "variablesReference"
            assert "this stop" in err.message

        # Nothing resumed the game: the same stop, no `continued`, and it still answers.
        await asyncio.sleep(1.0)
        assert session.stopped is not None and session.stopped.epoch == epoch
        assert "continued" not in kinds_since(session, stop.seq)
        assert (await where(session))[0][1] == COUNTER
        scopes = (await call(session, "scopes", "alice", {"frameId": 0}))["scopes"]
        members = await names_and_values(session, scopes[1]["variablesReference"])
        result = await call(session, "evaluate", "alice", {"expression": "counter + 1"})
        assert int(result["result"]) == int(members["counter"]) + 1

        # Ids die with their stop: after a continue the old reference is refused.
        await set_bps(session, "alice", [])
        since = session.events.latest
        await call(session, "continue", "alice", {})
        await call(session, "pause", "alice", {})
        await next_stop(session, since)
        err = await refused(session, "variables", {"variablesReference": 2})
        assert err.status == 400

    await run(godot, scenario)


async def test_issue_11_a_pause_is_one_stop_and_evaluate_without_frames_is_409(
    godot: GodotDap,
) -> None:
    async def scenario(session: DapSession) -> None:
        await launch_until_output(session)
        since = session.events.latest
        await call(session, "pause", "alice", {})
        stop = await next_stop(session, since)
        assert stop.body["reason"] == "paused"
        assert session.stopped is not None
        epoch = session.stopped.epoch
        # Godot follows `paused` with an empty `exception` stop: not a second stop.
        await asyncio.sleep(1.5)
        assert kinds_since(session, since).count("stopped") == 1
        assert session.stopped is not None and session.stopped.epoch == epoch

        # Paused between frames: no stack, so nothing to evaluate in; said at once.
        assert await where(session) == []
        err = await refused(session, "evaluate", {"expression": "1 + 1"})
        assert err.status == 409 and "outside any script" in err.message
        err = await refused(session, "scopes", {"frameId": 0})
        assert err.status == 409
        await asyncio.sleep(0.5)
        assert "continued" not in kinds_since(session, since)
        assert session.stopped is not None and session.stopped.epoch == epoch

    await run(godot, scenario)


async def test_issue_11_failed_evaluations_are_errors_with_godots_message(godot: GodotDap) -> None:
    async def evaluate(session: DapSession, expression: str) -> dict[str, Any]:
        return await call(session, "evaluate", "alice", {"expression": expression, "frameId": 0})

    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        await launch_and_stop(session)
        for expression, words in [("1 +", "parse error"), ("no_such_name", "no_such_name")]:
            start = time.monotonic()
            with pytest.raises(RequestError) as err:
                await evaluate(session, expression)
            # Godot's answer, not its ~5 s deferred-request timeout (that would be a 504).
            assert time.monotonic() - start < 4.0
            assert err.value.status == 422 and err.value.code == "evaluate_failed"
            assert words in err.value.message and words in err.value.details["godot_message"]
            assert err.value.details["expression"] == expression
        assert (await evaluate(session, "null"))["result"] == "<null>"
        assert (await evaluate(session, "a + b"))["result"] == "5"
        assert session.stopped is not None
        # The game's own messages never reach the agents' log.
        assert "godot/custom_data" not in kinds_since(session, 0)

    await run(godot, scenario)


async def test_issue_11_a_stop_found_after_a_reconnect_is_announced(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        await launch_and_stop(session)
        since = session.events.latest
        link = session.peer._link  # the connection drops, as a crashed socket would
        assert link is not None
        link.drop("test: connection cut")
        stop = await next_stop(session, since, timeout=15)
        assert stop.body["reason"] == "recovered"
        assert stop.body["source"] == {"path": MAIN} and stop.body["line"] == SUM
        assert stop.body["hit_by"] == ["alice"]
        assert (await where(session))[0] == ("add_numbers", SUM)
        result = await call(session, "evaluate", "alice", {"expression": "a + b"})
        assert result["result"] == "5"

    await run(godot, scenario)


async def test_issue_11_a_pause_found_after_a_reconnect_is_announced(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await launch_until_output(session)
        since = session.events.latest
        await call(session, "pause", "alice", {})
        await next_stop(session, since)
        since = session.events.latest
        link = session.peer._link
        assert link is not None
        link.drop("test: connection cut")
        stop = await next_stop(session, since, timeout=15)
        assert stop.body["reason"] == "recovered" and "line" not in stop.body
        assert await where(session) == []  # stopped between frames, as before
        since = session.events.latest
        await call(session, "continue", "alice", {})
        assert session.stopped is None
        await asyncio.sleep(1.5)  # the game runs again: its ticks are printed
        assert "output" in kinds_since(session, since)

    await run(godot, scenario)


async def test_issue_11_a_running_game_is_not_taken_for_stopped_after_a_reconnect(
    godot: GodotDap,
) -> None:
    async def scenario(session: DapSession) -> None:
        await launch_until_output(session)
        since = session.events.latest
        link = session.peer._link
        assert link is not None
        link.drop("test: connection cut")
        deadline = time.monotonic() + 15
        while session.peer._link in (None, link) or not session.peer.connected:
            assert time.monotonic() < deadline, "no reconnect"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # longer than the look for a stopped game takes
        assert "stopped" not in kinds_since(session, since)
        assert session.stopped is None

    await run(godot, scenario)


async def test_issue_11_stopped_names_the_agents_whose_breakpoint_was_hit(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "bob", [SUM])
        await set_bps(session, "alice", [SUM, DOUBLED])
        await set_bps(session, "carol", [DOUBLED])
        stop = await launch_and_stop(session)
        assert stop.body["reason"] == "breakpoint"
        assert stop.body["hit_by"] == ["alice", "bob"]
        assert stop.body["source"] == {"path": MAIN} and stop.body["line"] == SUM
        since = session.events.latest
        await call(session, "continue", "alice", {})
        stop = await next_stop(session, since)
        assert (stop.body["line"], stop.body["hit_by"]) == (DOUBLED, ["alice", "carol"])

    await run(godot, scenario)


async def test_issue_11_forgotten_and_cleared_breakpoints_leave_godot(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_bps(session, "alice", [SUM])
        await set_bps(session, "bob", [DOUBLED])
        await set_bps(session, "carol", [DOUBLED, RETURN_DOUBLED])
        since = session.events.latest
        await session.forget_agent("alice")
        assert session.breakpoints(agent="alice") == {}
        (event,) = [e for e in session.events.after(since)[0] if e.event == "breakpoints_cleared"]
        assert event.body["cleared"] == [{"path": MAIN, "agent": "alice", "lines": [SUM]}]

        # alice's SUM is gone from Godot: _ready runs through, the first stop is bob's.
        stop = await launch_and_stop(session)
        assert (stop.body["line"], stop.body["hit_by"]) == (DOUBLED, ["bob", "carol"])

        # carol clears her own in the file; then everyone's, deliberately.
        cleared = await call(session, "clearBreakpoints", "carol", {"source": {"path": MAIN}})
        assert cleared["cleared"] == [
            {"path": MAIN, "agent": "carol", "lines": [DOUBLED, RETURN_DOUBLED]}
        ]
        assert session.breakpoints()[MAIN] == {"bob": [{"line": DOUBLED}]}
        with pytest.raises(RequestError) as err:
            await call(session, "clearBreakpoints", "carol", {"everyone": True})
        assert err.value.details["field"] == "source"
        since = session.events.latest
        body = {"source": {"path": MAIN}, "everyone": True}
        cleared = await call(session, "clearBreakpoints", "carol", body)
        assert cleared["cleared"] == [{"path": MAIN, "agent": "bob", "lines": [DOUBLED]}]
        (event,) = [e for e in session.events.after(since)[0] if e.event == "breakpoints_cleared"]
        assert event.body["by"] == "carol" and event.body["everyone"] is True
        assert event.body["path"] == MAIN
        assert session.breakpoints() == {}

        # Nothing stops the game any more.
        since = session.events.latest
        await call(session, "continue", "carol", {})
        await asyncio.sleep(2.5)
        assert "stopped" not in kinds_since(session, since)

    await run(godot, scenario)


async def test_issue_11_bad_hit_conditions_and_non_scripts_are_refused(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        for name, bad in (("hitCondition", "false"), ("logMessage", "}")):
            body = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM, name: bad}]}
            err = await refused(session, "setBreakpoints", body)
            assert err.status == 400 and err.details["field"] == f"breakpoints[0].{name}"
        body = {"source": {"path": "res://demo/main.tscn"}, "breakpoints": [{"line": 1}]}
        err = await refused(session, "setBreakpoints", body)
        assert err.status == 400 and err.details["field"] == "source.path"
        assert err.code == "not_a_script" and "not a GDScript file" in err.message
        assert session.breakpoints() == {}

    await run(godot, scenario)


async def test_issue_11_set_breakpoints_sends_what_godot_reads(godot: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        start = godot.log.stat().st_size
        await set_bps(session, "alice", [SUM, DOUBLED])
        await set_bps(session, "alice", [])
        await call(session, "threads", "alice", {})
        await asyncio.sleep(0.5)
        printed = godot.log.read_bytes()[start:].decode("utf-8", "replace")
        assert "checksums" not in printed, printed

    await run(godot, scenario)


async def launched_game(session: DapSession) -> psutil.Process:
    await call(session, "launch", "alice", {})
    deadline = time.monotonic() + 10
    while session.game.game_pid is None:
        assert time.monotonic() < deadline, "no set_pid from the game"
        await asyncio.sleep(0.05)
    game = psutil.Process(session.game.game_pid)
    assert "--remote-debug" in game.cmdline()
    return game


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class GoneEditor(ProcessWatch):
    """The editor as the session sees it once it died (the real death: test_debug_http)."""

    def gone(self) -> bool:
        return True


async def test_issue_11_stopping_the_session_ends_the_game_it_launched(godot: GodotDap) -> None:
    """Once the editor is gone, nobody else would end the game."""

    async def scenario(session: DapSession) -> None:
        game = await launched_game(session)
        try:
            session.game.editor = GoneEditor(godot.pid)
            await session.stop()
            game.wait(timeout=5)  # raises if the game outlives the session
        finally:
            with contextlib.suppress(psutil.Error):
                game.kill()

    await run(godot, scenario)


async def test_issue_11_a_sidecar_leaving_a_live_editor_leaves_the_game(godot: GodotDap) -> None:
    """The addon starts a new sidecar when the link drops: a game of a live editor stays
    for it, and so does one when no editor pid is known (a sidecar served directly)."""

    async def scenario(session: DapSession) -> None:
        for editor_pid in (godot.pid, None):
            session.game.editor = ProcessWatch(editor_pid) if editor_pid is not None else None
            game = await launched_game(session)
            try:
                await session.stop()
                await asyncio.sleep(0.5)
                assert alive(game)
            finally:
                with contextlib.suppress(psutil.Error):
                    game.kill()
                    game.wait(timeout=5)
            assert await session.connect(), session.status.as_json()
            await call(session, "terminate", "test", {})

    await run(godot, scenario)


async def test_issue_11_a_relaunch_learns_the_new_games_pid(godot: GodotDap) -> None:
    """The old game's end must not make the session ignore the new game's `set_pid`."""

    async def scenario(session: DapSession) -> None:
        first = await launched_game(session)
        second = await launched_game(session)
        assert second.pid != first.pid
        first.wait(timeout=5)  # the first game ended
        assert alive(second)

    await run(godot, scenario)


PROBE_GD = """extends Node
## A static function's frame has no self: Godot cannot evaluate there.


func _ready() -> void:
	print("probe: %d" % triple(2))


static func triple(x: int) -> int:
	var y: int = x * 3
	return y
"""
PROBE_TSCN = """[gd_scene load_steps=2 format=3]

[ext_resource type="Script" path="res://demo/static_probe.gd" id="1"]

[node name="Probe" type="Node"]
script = ExtResource("1")
"""


async def test_issue_11_evaluate_in_a_static_frame_is_refused_without_resuming(
    godot: GodotDap,
) -> None:
    (godot.project / "demo" / "static_probe.gd").write_text(PROBE_GD)
    (godot.project / "demo" / "static_probe.tscn").write_text(PROBE_TSCN)
    probe = "res://demo/static_probe.gd"
    line = PROBE_GD.splitlines().index("\tvar y: int = x * 3") + 1

    async def scenario(session: DapSession) -> None:
        body = {"source": {"path": probe}, "breakpoints": [{"line": line}]}
        await call(session, "setBreakpoints", "alice", body)
        since = session.events.latest
        await call(session, "launch", "alice", {"scene": "res://demo/static_probe.tscn"})
        stop = await next_stop(session, since)
        assert (await where(session)) == [("triple", line), ("_ready", 6)]
        with pytest.raises(RequestError) as err:
            await call(session, "evaluate", "alice", {"expression": "x", "frameId": 0})
        assert err.value.status == 400 and err.value.details["field"] == "frameId"
        assert "static" in err.value.message
        result = await call(session, "evaluate", "alice", {"expression": "1 + 1", "frameId": 1})
        assert result["result"] == "2"
        await asyncio.sleep(0.5)
        assert "continued" not in kinds_since(session, stop.seq)
        assert session.stopped is not None

    await run(godot, scenario)


async def test_issue_12_file_uri_breakpoints_stop_the_game(godot: GodotDap) -> None:
    """A breakpoint set by file:// URI (with the script's real path) stops the game."""
    uri = (godot.project / "demo" / "main.gd").resolve().as_uri()

    async def scenario(session: DapSession) -> None:
        body = {"source": {"path": uri}, "breakpoints": [{"line": SUM}]}
        (bp,) = (await call(session, "setBreakpoints", "alice", body))["breakpoints"]
        assert bp["verified"] is True and bp["line"] == SUM
        assert session.breakpoints() == {MAIN: {"alice": [{"line": SUM}]}}
        stop = await launch_and_stop(session)
        assert stop.body["reason"] == "breakpoint" and stop.body["line"] == SUM
        assert stop.body["hit_by"] == ["alice"]

    await run(godot, scenario)

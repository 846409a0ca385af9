"""The /debug endpoints over HTTP: a real headless editor with the addon and its sidecar,
a real launched demo game, agents as aiohttp clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from harness import REPO, Editor, free_port, game_processes, make_demo_project

MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
SUM = next(i + 1 for i, text in enumerate(MAIN_GD) if "var sum: int = a + b" in text)
MAIN = "res://demo/main.gd"


class Agent:
    """One agent: an HTTP client with its own X-Agent-Id."""

    def __init__(self, http: aiohttp.ClientSession, base: str, name: str) -> None:
        self.http = http
        self.base = base
        self.name = name

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **query: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        async with self.http.request(
            method,
            self.base + path,
            json=body,
            params={k: str(v) for k, v in query.items()},
            headers={"X-Agent-Id": self.name},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            return resp.status, await resp.json(), dict(resp.headers)

    async def ok(self, method: str, path: str, body: dict[str, Any] | None = None, **q: Any) -> Any:
        status, answer, _ = await self.call(method, path, body, **q)
        assert status == 200, (path, answer)
        assert answer["status"] == "ok"
        return answer["result"]

    async def status(self) -> dict[str, Any]:
        """GET /status: the seed's shape, at the top level (no "result")."""
        status, answer, _ = await self.call("GET", "/status")
        assert status == 200 and answer["status"] == "ok", answer
        return answer

    async def launch_to_sum(self) -> dict[str, Any]:
        """Set this agent's breakpoint at SUM, launch, and return the stop there."""
        body = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM}]}
        await self.ok("POST", "/debug/setBreakpoints", body)
        since = (await self.ok("GET", "/debug/events"))["latest"]
        await self.ok("POST", "/debug/launch", {})
        return await self.next_stop(since)

    async def next_stop(self, since: int, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = await self.ok("GET", "/debug/events", since=since, wait=2)
            for event in page["events"]:
                if event["event"] == "stopped":
                    return event
            since = page["next"]
        raise AssertionError("no stopped event")


Scenario = Callable[[Callable[[str], Agent]], Awaitable[None]]


async def run(base: str, scenario: Scenario) -> None:
    async with aiohttp.ClientSession() as http:

        def agent(name: str) -> Agent:
            return Agent(http, base, name)

        try:
            await wait_connected(agent("setup"))
            await scenario(agent)
        finally:
            with contextlib.suppress(Exception):
                await agent("cleanup").call("POST", "/debug/terminate", {})


async def wait_connected(agent: Agent, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await agent.status()
        if status["debug_adapter"]["state"] == "connected":
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"debug adapter never connected: {status['debug_adapter']}")


async def test_debugging_the_demo_over_http(editor: Editor) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        alice, bob = agent("alice"), agent("bob")
        status = await alice.status()
        dap = status["debug_adapter"]
        assert {"service", "port", "state", "retry_count", "last_activity"} <= set(dap)
        assert dap["service"] == "debug_adapter" and dap["port"] == editor.dap_port

        bps = await alice.ok(
            "POST",
            "/debug/setBreakpoints",
            {"source": {"path": MAIN}, "breakpoints": [{"line": SUM}]},
        )
        assert [(b["line"], b["verified"]) for b in bps["breakpoints"]] == [(SUM, True)]
        mine = await alice.ok("GET", "/debug/breakpoints")
        assert mine == {"agent": "alice", "breakpoints": {MAIN: {"alice": [{"line": SUM}]}}}
        assert (await bob.ok("GET", "/debug/breakpoints"))["breakpoints"] == {}

        since = (await alice.ok("GET", "/debug/events"))["latest"]
        await alice.ok("POST", "/debug/launch", {"scene": "main"})
        stop_a, stop_b = await asyncio.gather(alice.next_stop(since), bob.next_stop(since))
        assert stop_a == stop_b and stop_a["body"]["reason"] == "breakpoint"

        # The seed's request from five agents at once: the same real stack for all.
        traces = await asyncio.gather(
            *(agent(f"agent{i}").ok("POST", "/debug/stackTrace", {"threadId": 1}) for i in range(5))
        )
        assert all(t == traces[0] for t in traces)
        top = traces[0]["stackFrames"][0]
        assert (top["name"], top["line"]) == ("add_numbers", SUM)

        scopes = await bob.ok("GET", "/debug/scopes", frameId=top["id"])
        ref = scopes["scopes"][0]["variablesReference"]
        local = await bob.ok("GET", "/debug/variables", variablesReference=ref)
        values = {v["name"]: v["value"] for v in local["variables"]}
        assert values["a"] == "2" and values["b"] == "3"
        result = await alice.ok("POST", "/debug/evaluate", {"expression": "a + b", "frameId": 0})
        assert result["result"] == "5"
        threads = await bob.ok("GET", "/debug/threads")
        assert threads["threads"][0]["id"] == 1

        status, answer, _ = await bob.call("POST", "/debug/evaluate", {"frameId": 0})
        assert status == 400
        assert answer["error"]["field"] == "expression"
        status, answer, _ = await bob.call("GET", "/debug/variables")
        assert status == 400 and answer["error"]["field"] == "variablesReference"

        await alice.ok("POST", "/debug/setBreakpoints", {"source": {"path": MAIN}})
        since = (await alice.ok("GET", "/debug/events"))["latest"]
        await alice.ok("POST", "/debug/continue", {"threadId": 1})
        status, answer, _ = await bob.call("POST", "/debug/stackTrace", {"threadId": 1})
        assert status == 409 and answer["status"] == "error"
        assert answer["error"]["code"] == "not_stopped"

        output = ""
        deadline = time.monotonic() + 10
        while "demo: total=5" not in output and time.monotonic() < deadline:
            page = await bob.ok("GET", "/debug/events", since=since, wait=2)
            since = page["next"]
            output += "".join(
                e["body"].get("output", "") for e in page["events"] if e["event"] == "output"
            )
        assert "demo: total=5" in output
        await alice.ok("POST", "/debug/terminate", {})

    await run(editor.base_url, scenario)


async def test_disconnect_and_connect_on_request(editor: Editor) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        carol = agent("carol")
        # Agents of the earlier tests may still count as connected: say it is meant (issue 11).
        result = await carol.ok("POST", "/disconnect", {"service": "dap", "force": True})
        assert result["debug_adapter"]["state"] == "disconnected"
        assert "language_server" not in result
        status, answer, headers = await carol.call("POST", "/debug/threads", {})
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert answer["error"]["code"] == "not_connected"
        assert "POST /connect" in answer["error"]["message"]
        assert (await carol.status())["debug_adapter"]["state"] == "disconnected"

        result = await carol.ok("POST", "/connect", {"service": "dap"})
        assert result["debug_adapter"]["state"] == "connected"
        assert (await carol.ok("GET", "/debug/threads"))["threads"][0]["id"] == 1

        status, answer, _ = await carol.call("POST", "/connect", {"service": "gdb"})
        assert status == 400 and answer["error"]["field"] == "service"

    await run(editor.base_url, scenario)


class _Forwarder:
    """A TCP port that relays to another one: Godot's DAP 'coming up' on demand."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self.target = target
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(4)
        self._server = server
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._sockets += [client, upstream]
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        for s in [self._server, *self._sockets]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        for thread in self._threads:
            thread.join(timeout=2)


@pytest.fixture
def editor_without_dap(tmp_path: Path, godot_bin: str) -> Iterator[tuple[Editor, _Forwarder]]:
    """An editor whose sidecar looks for the DAP on a port where nothing listens yet."""
    hidden = free_port()
    ed = Editor(make_demo_project(tmp_path / "project"), env={"GODOT_BRIDGE_DAP_PORT": str(hidden)})
    forwarder = _Forwarder(hidden, ed.dap_port)
    try:
        ed.start()
        yield ed, forwarder
    finally:
        forwarder.stop()
        ed.stop()


async def test_absent_debug_adapter_is_503_until_it_comes_up(
    editor_without_dap: tuple[Editor, _Forwarder],
) -> None:
    ed, forwarder = editor_without_dap

    async def scenario(http: aiohttp.ClientSession) -> None:
        dave = Agent(http, ed.base_url, "dave")
        status, answer, headers = await dave.call("POST", "/debug/stackTrace", {"threadId": 1})
        assert status == 503 and "Retry-After" in headers
        assert answer["error"]["code"] == "not_connected"
        dap = (await dave.status())["debug_adapter"]
        deadline = time.monotonic() + 10
        while dap["retry_count"] == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the first probe may still be under way
            dap = (await dave.status())["debug_adapter"]
        # Never connected yet: the editor counts as starting, probed briskly (issue 11).
        assert dap["state"] == "starting" and not dap["ready"]
        assert dap["retry_count"] >= 1 and dap["last_error"], dap
        # The LSP is unaffected.
        status_all = await dave.status()
        assert status_all["overall_ready"] is False

        forwarder.start()
        wait = (dap["next_retry_in_s"] or 0) + 16 + 2  # at worst one full backoff step
        start = time.monotonic()
        status_now = await wait_connected(dave, timeout=wait)
        print(f"connected {time.monotonic() - start:.1f} s after the DAP came up")
        assert status_now["debug_adapter"]["retry_count"] == 0
        assert (await dave.ok("GET", "/debug/threads"))["threads"][0]["id"] == 1

    async with aiohttp.ClientSession() as http:
        await scenario(http)


async def test_issue_11_malformed_requests_are_400_while_the_adapter_is_away(
    editor_without_dap: tuple[Editor, _Forwarder],
) -> None:
    """Arguments are checked before the adapter's availability: a bad request is a 400
    whatever the state, a good one 503 with Retry-After while the adapter is away."""
    ed, _ = editor_without_dap

    async def scenario(http: aiohttp.ClientSession) -> None:
        erin = Agent(http, ed.base_url, "erin")
        dap = (await erin.status())["debug_adapter"]
        assert dap["state"] != "connected", dap
        for command, body, field in (
            ("setBreakpoints", {"source": 5}, "source"),
            (
                "setBreakpoints",
                {"source": {"path": MAIN}, "breakpoints": [{"line": 0}]},
                "breakpoints[0].line",
            ),
            ("evaluate", {"frameId": "x", "expression": "a"}, "frameId"),
            ("evaluate", {"frameId": 0}, "expression"),
            ("scopes", {}, "frameId"),
            ("variables", {"variablesReference": "r"}, "variablesReference"),
            ("stackTrace", {"levels": "all"}, "levels"),
            ("continue", {"threadId": "main"}, "threadId"),
            ("launch", {"scene": 3}, "scene"),
        ):
            status, answer, _ = await erin.call("POST", f"/debug/{command}", body)
            assert status == 400, (command, body, status, answer)
            assert answer["status"] == "error" and answer["error"]["field"] == field, answer
            assert field in answer["error"]["message"], answer
        for command, body in (
            ("setBreakpoints", {"source": {"path": MAIN}, "breakpoints": [{"line": SUM}]}),
            ("evaluate", {"frameId": 0, "expression": "a"}),
            ("stackTrace", {"threadId": 1}),
        ):
            status, answer, headers = await erin.call("POST", f"/debug/{command}", body)
            assert status == 503 and "Retry-After" in headers, (command, status, answer)
            assert answer["error"]["code"] == "not_connected", answer
        # Nothing of the refused setBreakpoints was kept.
        assert (await erin.ok("GET", "/debug/breakpoints"))["breakpoints"] == {}

    async with aiohttp.ClientSession() as http:
        await scenario(http)


# -- issue 11 --------------------------------------------------------------------------


async def everyone_breakpoints(agent: Agent) -> dict[str, Any]:
    return (await agent.ok("GET", "/debug/breakpoints", all="true"))["breakpoints"]


async def next_event(agent: Agent, since: int, kind: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await agent.ok("GET", "/debug/events", since=since, wait=1)
        for event in page["events"]:
            if event["event"] == kind:
                return event
        since = page["next"]
    raise AssertionError(f"no {kind} event")


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_issue_11_breakpoints_of_a_connection_go_when_it_closes(editor: Editor) -> None:
    body = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM}]}

    async def scenario(agent: Callable[[str], Agent]) -> None:
        dora = agent("dora")
        named = await dora.ok("POST", "/debug/setBreakpoints", body)
        assert "warning" not in named
        since = (await dora.ok("GET", "/debug/events"))["latest"]

        # curl-style: no X-Agent-Id, and a new connection for every request.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as curl:
            async with curl.post(editor.base_url + "/debug/setBreakpoints", json=body) as resp:
                answer = await resp.json()
        assert resp.status == 200, answer
        warning = answer["result"]["warning"]
        assert "X-Agent-Id" in warning and "client-" in warning

        async def only_dora_left() -> bool:
            return (await everyone_breakpoints(dora)) == {MAIN: {"dora": [{"line": SUM}]}}

        await wait_until(only_dora_left, 5, "the closed connection's breakpoints stayed")
        cleared = await next_event(dora, since, "breakpoints_cleared")
        assert cleared["body"]["cleared"][0]["agent"].startswith("client-")

        # A kept-alive anonymous connection keeps its breakpoints while it is open.
        async with aiohttp.ClientSession() as keep:
            async with keep.post(editor.base_url + "/debug/setBreakpoints", json=body) as resp:
                assert resp.status == 200
            owners = (await everyone_breakpoints(dora))[MAIN]
            assert len(owners) == 2
        await wait_until(only_dora_left, 5, "the closed connection's breakpoints stayed")

        # Clearing over HTTP: one's own, then (deliberately) everyone's in the file.
        await agent("erin").ok("POST", "/debug/setBreakpoints", body)
        cleared = await agent("erin").ok("POST", "/debug/clearBreakpoints", {})
        assert cleared == {"cleared": [{"path": MAIN, "agent": "erin", "lines": [SUM]}]}
        everyone = {"source": {"path": MAIN}, "everyone": True}
        cleared = await agent("erin").ok("POST", "/debug/clearBreakpoints", everyone)
        assert cleared == {"cleared": [{"path": MAIN, "agent": "dora", "lines": [SUM]}]}
        assert await everyone_breakpoints(dora) == {}
        status, answer, _ = await dora.call("POST", "/debug/clearBreakpoints", {"everyone": True})
        assert status == 400 and answer["error"]["field"] == "source"

    await run(editor.base_url, scenario)


async def test_issue_11_a_failed_evaluation_is_422_with_godots_message(editor: Editor) -> None:
    body = {"source": {"path": MAIN}, "breakpoints": [{"line": SUM}]}

    async def scenario(agent: Callable[[str], Agent]) -> None:
        gil = agent("gil")
        await gil.ok("POST", "/debug/setBreakpoints", body)
        try:
            since = (await gil.ok("GET", "/debug/events"))["latest"]
            await gil.ok("POST", "/debug/launch", {})
            await gil.next_stop(since)
            # A failed evaluation is an error with Godot's message, not a null value.
            for expression, words in [("1 +", "parse error"), ("no_such_name", "no_such_name")]:
                evaluate = {"expression": expression, "frameId": 0}
                status, answer, _ = await gil.call("POST", "/debug/evaluate", evaluate)
                assert status == 422 and answer["status"] == "error", answer
                assert answer["error"]["code"] == "evaluate_failed", answer
                assert words in answer["error"]["message"], answer
            # The stop survives the failures: a good expression still answers.
            good = {"expression": "a + b", "frameId": 0}
            assert (await gil.ok("POST", "/debug/evaluate", good))["result"] == "5"
        finally:
            await gil.ok("POST", "/debug/setBreakpoints", {**body, "breakpoints": []})

    await run(editor.base_url, scenario)  # ends the game on its way out
    deadline = time.monotonic() + 15
    while game_processes(editor):  # the next test starts without a game
        assert time.monotonic() < deadline, "the game outlived /debug/terminate"
        await asyncio.sleep(0.1)


async def test_issue_11_the_game_ends_when_the_editor_dies(fresh_editor: Editor) -> None:
    ed = fresh_editor
    ed.start()
    games: list[psutil.Process] = []

    async def scenario(agent: Callable[[str], Agent]) -> None:
        await agent("fay").launch_to_sum()
        games.extend(game_processes(ed))

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            await wait_connected(Agent(http, ed.base_url, "setup"))
            await scenario(lambda name: Agent(http, ed.base_url, name))

    try:
        await main()
        assert len(games) == 1, games
        os.kill(ed.pid, signal.SIGKILL)  # no quit path: only the sidecar can end the game
        _gone, alive = psutil.wait_procs(games, timeout=8)
        assert not alive, f"the game outlived its editor: {alive}"
    finally:
        for game in games:
            with contextlib.suppress(psutil.Error):
                game.kill()


async def test_issue_11_a_respawned_bridge_finds_the_game_left_running(
    fresh_editor: Editor,
) -> None:
    """A sidecar that exits while its editor lives (the addon starts another) leaves the
    agents' game running, and the next sidecar finds it stopped where it was."""
    ed = fresh_editor
    ed.start()
    games: list[psutil.Process] = []

    async def back(agent: Agent, old: list[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                status, answer, _ = await agent.call("GET", "/status")
                sidecars = set(ed.sidecar_pids())
                if status == 200 and answer["debug_adapter"]["state"] == "connected":
                    if sidecars and not sidecars & set(old):
                        return
            await asyncio.sleep(0.2)
        raise AssertionError("no new sidecar connected to the debug adapter")

    async def scenario(agent: Callable[[str], Agent]) -> None:
        gus = agent("gus")
        await gus.launch_to_sum()
        games.extend(game_processes(ed))
        assert len(games) == 1, games
        old = ed.sidecar_pids()
        assert old
        for pid in old:
            os.kill(pid, signal.SIGTERM)  # a clean exit: the path that used to end the game
        _gone, alive = psutil.wait_procs([psutil.Process(p) for p in old], timeout=10)
        assert not alive, alive
        await back(gus, old)
        assert games[0].is_running() and games[0].status() != psutil.STATUS_ZOMBIE
        stop = await gus.next_stop(0)
        assert stop["body"]["reason"] == "recovered", stop

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            await wait_connected(Agent(http, ed.base_url, "setup"))
            await scenario(lambda name: Agent(http, ed.base_url, name))

    try:
        await main()
    finally:
        for game in games:
            with contextlib.suppress(psutil.Error):
                game.kill()


async def test_issue_12_query_values_and_refused_fields_are_400s_naming_the_field(
    editor: Editor,
) -> None:
    """`?threadId=AAA` was a 400 while `?all=banana` was taken as false; both are read by
    the operation's declaration now. A bad `hitCondition` is refused, as its declaration says, and
    a file:// URI names a breakpoint's script."""

    async def scenario(agent: Callable[[str], Agent]) -> None:
        ida = agent("ida")
        for path, query, field in (
            ("/debug/stackTrace", {"threadId": "AAA"}, "threadId"),
            ("/debug/breakpoints", {"all": "banana"}, "all"),
            ("/debug/scopes", {"frameId": "-1"}, "frameId"),
        ):
            status, answer, _ = await ida.call("GET", path, **query)
            assert status == 400, (path, answer)
            assert answer["error"]["code"] == "invalid_field"
            assert answer["error"]["field"] == field and field in answer["error"]["message"]
        for bad, field in (
            ({"line": SUM, "hitCondition": "a > 1"}, "breakpoints[0].hitCondition"),
            ({"line": 0}, "breakpoints[0].line"),
        ):
            body = {"source": {"path": MAIN}, "breakpoints": [bad]}
            status, answer, _ = await ida.call("POST", "/debug/setBreakpoints", body)
            assert status == 400 and answer["error"]["field"] == field, answer
        assert (await ida.ok("GET", "/debug/breakpoints"))["breakpoints"] == {}

        uri = (editor.project / "demo" / "main.gd").resolve().as_uri()
        body = {"source": {"path": uri}, "breakpoints": [{"line": SUM}]}
        (bp,) = (await ida.ok("POST", "/debug/setBreakpoints", body))["breakpoints"]
        assert bp["verified"] is True and bp["line"] == SUM
        assert (await ida.ok("GET", "/debug/breakpoints"))["breakpoints"] == {
            MAIN: {"ida": [{"line": SUM}]}
        }
        await ida.ok("POST", "/debug/setBreakpoints", {"source": {"path": uri}})

    await run(editor.base_url, scenario)

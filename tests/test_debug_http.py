"""The /debug endpoints over HTTP: a real headless editor with the addon and its sidecar,
a real launched demo game, agents as aiohttp clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import REPO, Editor, free_port, make_demo_project

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


def run(base: str, scenario: Scenario) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:

            def agent(name: str) -> Agent:
                return Agent(http, base, name)

            try:
                await wait_connected(agent("setup"))
                await scenario(agent)
            finally:
                with contextlib.suppress(Exception):
                    await agent("cleanup").call("POST", "/debug/terminate", {})

    asyncio.run(main())


async def wait_connected(agent: Agent, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await agent.ok("GET", "/status")
        if status["debug_adapter"]["state"] == "connected":
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"debug adapter never connected: {status['debug_adapter']}")


def test_debugging_the_demo_over_http(editor: Editor) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        alice, bob = agent("alice"), agent("bob")
        status = await alice.ok("GET", "/status")
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

    run(editor.base_url, scenario)


def test_disconnect_and_connect_on_request(editor: Editor) -> None:
    async def scenario(agent: Callable[[str], Agent]) -> None:
        carol = agent("carol")
        result = await carol.ok("POST", "/disconnect", {"service": "dap"})
        assert result["debug_adapter"]["state"] == "disconnected"
        assert "language_server" not in result
        status, answer, headers = await carol.call("POST", "/debug/threads", {})
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert answer["error"]["code"] == "not_connected"
        assert "POST /connect" in answer["error"]["message"]
        assert (await carol.ok("GET", "/status"))["debug_adapter"]["state"] == "disconnected"

        result = await carol.ok("POST", "/connect", {"service": "dap"})
        assert result["debug_adapter"]["state"] == "connected"
        assert (await carol.ok("GET", "/debug/threads"))["threads"][0]["id"] == 1

        status, answer, _ = await carol.call("POST", "/connect", {"service": "gdb"})
        assert status == 400 and answer["error"]["field"] == "service"

    run(editor.base_url, scenario)


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


def test_absent_debug_adapter_is_503_until_it_comes_up(
    editor_without_dap: tuple[Editor, _Forwarder],
) -> None:
    ed, forwarder = editor_without_dap

    async def scenario(http: aiohttp.ClientSession) -> None:
        dave = Agent(http, ed.base_url, "dave")
        status, answer, headers = await dave.call("POST", "/debug/stackTrace", {"threadId": 1})
        assert status == 503 and "Retry-After" in headers
        assert answer["error"]["code"] == "not_connected"
        dap = (await dave.ok("GET", "/status"))["debug_adapter"]
        assert dap["state"] in ("reconnecting", "connecting") and not dap["ready"]
        assert dap["last_error"]
        # The LSP is unaffected.
        status_all = await dave.ok("GET", "/status")
        assert status_all["overall_ready"] is False

        forwarder.start()
        wait = (dap["next_retry_in_s"] or 0) + 16 + 2  # at worst one full backoff step
        start = time.monotonic()
        status_now = await wait_connected(dave, timeout=wait)
        print(f"connected {time.monotonic() - start:.1f} s after the DAP came up")
        assert status_now["debug_adapter"]["retry_count"] == 0
        assert (await dave.ok("GET", "/debug/threads"))["threads"][0]["id"] == 1

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            await scenario(http)

    asyncio.run(main())

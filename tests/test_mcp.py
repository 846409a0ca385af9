"""`/mcp` driven by the official MCP SDK's own client, against a real editor.

Two MCP sessions are two agents: a breakpoint set in one is that session's, the other
sees it only among everyone's. The tools are the REST handlers, so their answers are
the REST answers.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import httpx2
from harness import REPO, Editor, get_json
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from sidecar.api.mcp.endpoint import MAX_SESSIONS

MAIN = "res://demo/main.gd"
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
COUNTER_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "counter += 1" in t)
TOOLS = {
    "status", "set_breakpoints", "breakpoints", "launch", "continue", "pause", "step",
    "terminate", "stack_trace", "variables", "evaluate", "events", "completion", "hover",
    "definition", "diagnostics", "apply_changes", "reload", "read_file",
}  # fmt: skip


async def call(client: Client, tool: str, **args: Any) -> Any:
    """The tool's structured answer; fails the test on an error answer."""
    result = await client.call_tool(tool, args)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, f"{tool}: {result.content}"
    return result.structured_content


async def error_of(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert result.is_error, f"{tool} should have failed: {result.structured_content}"
    text = result.content[0].text  # type: ignore[union-attr]
    return json.loads(text[text.index("{") :])


async def wait_stopped(client: Client, since: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await call(client, "events", since=since, wait=2)
        for event in page["events"]:
            if event["event"] == "stopped":
                return event
        since = page["next"]
    raise AssertionError("the game never stopped")


async def wait_ready(client: Client, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await call(client, "status")
        if status["overall_ready"] or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.2)


def named_client(url: str, name: str) -> Client:
    http = httpx2.AsyncClient(headers={"X-Agent-Id": name}, timeout=60)
    return Client(streamable_http_client(url, http_client=http))


def test_mcp_sessions_are_agents_with_their_own_breakpoints(editor: Editor) -> None:
    url = editor.base_url + "/mcp"

    async def scenario() -> None:
        async with Client(url) as alice, Client(url) as bob:
            assert alice.protocol_version == "2025-11-25"  # a session, not stateless
            listed = await alice.list_tools()
            assert TOOLS <= {t.name for t in listed.tools}
            status = await wait_ready(alice)
            assert status["debug_adapter"]["service"] == "debug_adapter"

            bps = await call(alice, "set_breakpoints", path=MAIN, lines=[COUNTER_LINE])
            assert [(b["line"], b["verified"]) for b in bps["breakpoints"]] == [
                (COUNTER_LINE, True)
            ]
            mine = await call(alice, "breakpoints")
            theirs = await call(bob, "breakpoints")
            assert mine["agent"].startswith("mcp-") and theirs["agent"].startswith("mcp-")
            assert mine["agent"] != theirs["agent"]
            assert mine["breakpoints"] == {MAIN: {mine["agent"]: [{"line": COUNTER_LINE}]}}
            assert theirs["breakpoints"] == {}
            everyone = await call(bob, "breakpoints", everyone=True)
            assert mine["agent"] in everyone["breakpoints"][MAIN]
            # The REST side sees the MCP session's breakpoint under the same identity.
            rest = get_json(editor.base_url + "/debug/breakpoints?all=true")["result"]
            assert rest["breakpoints"][MAIN] == {mine["agent"]: [{"line": COUNTER_LINE}]}
            sessions = get_json(editor.base_url + "/dashboard/state")["result"]["mcp_sessions"]
            assert {mine["agent"], theirs["agent"]} <= {s["identity"] for s in sessions}

            await debug_through_mcp(alice, bob)
            await language_through_mcp(bob)
            await call(alice, "set_breakpoints", path=MAIN, lines=[])
            await call(alice, "terminate")

    asyncio.run(scenario())


async def debug_through_mcp(alice: Client, bob: Client) -> None:
    since = (await call(alice, "events"))["latest"]
    await call(alice, "launch")
    stop = await wait_stopped(bob, since)
    assert stop["body"]["reason"] == "breakpoint"
    frames = (await call(bob, "stack_trace"))["stackFrames"]
    assert (frames[0]["name"], frames[0]["line"]) == ("_process", COUNTER_LINE)
    variables = await call(bob, "variables")
    members = next(s for s in variables["scopes"] if s["name"] == "Members")
    assert "counter" in {v["name"] for v in members["variables"]}
    assert (await call(alice, "evaluate", expression="counter + 1"))["result"].isdigit()
    error = await error_of(bob, "set_breakpoints", path=MAIN, lines=[0])
    assert error["http_status"] == 400 and error["error"]["field"] == "breakpoints[0].line"
    since = (await call(alice, "events"))["latest"]
    await call(alice, "step", kind="over")
    assert (await wait_stopped(alice, since, 10))["body"]["reason"] == "step"


async def language_through_mcp(bob: Client) -> None:
    done = await call(bob, "completion", path=MAIN, line=9, character=4, limit=5)
    assert done["prefix"] == "pri" and done["items"]
    line = next(i for i, t in enumerate(MAIN_GD) if "add_numbers(2, 3)" in t)
    character = MAIN_GD[line].index("add_numbers") + 2
    hover = await call(bob, "hover", path=MAIN, line=line, character=character)
    assert "add_numbers" in json.dumps(hover)
    found = await call(bob, "definition", path=MAIN, line=line, character=character)
    assert found["locations"][0]["uri"].endswith("/demo/main.gd")
    diagnostics = await call(bob, "diagnostics", path=MAIN, wait=5)
    assert diagnostics["diagnostics"] == []
    missing = await error_of(bob, "diagnostics", path="res://../outside.gd")
    assert missing["http_status"] == 403


def test_mcp_client_named_by_x_agent_id(editor: Editor) -> None:
    async def scenario() -> str:
        async with named_client(editor.base_url + "/mcp", "dave") as dave:
            return (await call(dave, "breakpoints"))["agent"]

    assert asyncio.run(scenario()) == "dave"


def test_mcp_refuses_web_pages(editor: Editor) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    req = urllib.request.Request(
        editor.base_url + "/mcp",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Origin": "http://evil.example",
        },
    )
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a cross-origin MCP request was served")
    except urllib.error.HTTPError as err:
        assert err.code == 403
        assert json.loads(err.read())["error"]["code"] == "forbidden_origin"


def test_mcp_has_no_server_stream(editor: Editor) -> None:
    req = urllib.request.Request(editor.base_url + "/mcp", headers={"Accept": "text/event-stream"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("GET /mcp was served")
    except urllib.error.HTTPError as err:
        assert err.code == 405 and "POST" in err.headers["Allow"]


# -- sessions that never end must not lock MCP out (issue 11) ----------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "one-shot", "version": "1"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def session_identity(session_id: str) -> str:
    """The agent an MCP session without X-Agent-Id acts as (README: `mcp-<session id>`)."""
    return f"mcp-{session_id[:8]}"


async def mcp_post(
    http: aiohttp.ClientSession, url: str, message: dict[str, Any], session: str | None = None
) -> tuple[int, str | None]:
    """(status, session id) of one raw MCP message."""
    headers = dict(MCP_HEADERS)
    if session is not None:
        headers["Mcp-Session-Id"] = session
        headers["MCP-Protocol-Version"] = "2025-11-25"
    async with http.post(url, json=message, headers=headers) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Mcp-Session-Id")


async def one_shot(http: aiohttp.ClientSession, url: str, tool: str | None = None) -> str:
    """What the MCP Inspector CLI does on every run: open a session, call, never DELETE."""
    status, session = await mcp_post(http, url, INITIALIZE)
    assert status == 200 and session, status
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await mcp_post(http, url, initialized, session))[0] == 202
    if tool is not None:
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
        call["params"] = {"name": tool, "arguments": {}}
        assert (await mcp_post(http, url, call, session))[0] == 200
    return session


def test_issue_11_one_shot_sessions_never_lock_mcp_out(editor: Editor) -> None:
    url = editor.base_url + "/mcp"

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(MAX_SESSIONS + 5):
                await one_shot(http, url, "breakpoints")
        async with Client(url) as late:
            assert (await call(late, "breakpoints"))["agent"].startswith("mcp-")

    asyncio.run(scenario())
    sessions = get_json(editor.base_url + "/dashboard/state")["result"]["mcp_sessions"]
    assert 0 < len(sessions) <= MAX_SESSIONS


def test_issue_11_a_session_that_ends_takes_its_breakpoints_along(editor: Editor) -> None:
    url = editor.base_url + "/mcp"

    def everyone() -> dict[str, Any]:
        answer = get_json(editor.base_url + "/debug/breakpoints?all=true")
        return answer["result"]["breakpoints"].get(MAIN, {})

    async def scenario() -> str:
        async with Client(url) as alice:  # the SDK's client DELETEs its session on exit
            mine = await call(alice, "set_breakpoints", path=MAIN, lines=[COUNTER_LINE])
            assert mine["breakpoints"][0]["line"] == COUNTER_LINE
            agent = (await call(alice, "breakpoints"))["agent"]
            assert everyone()[agent] == [{"line": COUNTER_LINE}]
        return agent

    agent = asyncio.run(scenario())
    assert agent not in everyone()


def _in_process(idle: float, ended: list[str]) -> tuple[Any, str]:
    """The /mcp route alone on an aiohttp app; `ended` collects the identities that ended."""
    from sidecar.agents import AgentRegistry
    from sidecar.api.mcp import endpoint as mcp_api
    from sidecar.web.http import RouteTable, make_app
    from sidecar.web.local import RouteCaller

    async def forget(identity: str) -> None:
        ended.append(identity)

    routes = RouteTable()
    endpoint = mcp_api.register(routes, RouteCaller(routes), forget)
    endpoint.sessions.idle = idle
    return make_app(routes, AgentRegistry()), mcp_api.MCP_PATH


def test_issue_11_full_session_table_evicts_the_least_recently_used() -> None:
    from aiohttp.test_utils import TestServer

    ended: list[str] = []
    app, path = _in_process(600.0, ended)

    async def scenario() -> None:
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
            url = str(server.make_url(path))
            ids = [await one_shot(http, url) for _ in range(MAX_SESSIONS)]
            ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
            assert (await mcp_post(http, url, ping, ids[0]))[0] == 200  # ids[1] is now oldest
            newcomer = await one_shot(http, url)
            assert newcomer not in ids
            assert ended == [session_identity(ids[1])]
            assert (await mcp_post(http, url, ping, ids[1]))[0] == 404  # the client re-inits
            assert (await mcp_post(http, url, ping, ids[0]))[0] == 200
            assert (await mcp_post(http, url, ping, newcomer))[0] == 200

    asyncio.run(scenario())


def test_issue_11_idle_sessions_expire_and_deleted_ones_are_forgotten() -> None:
    from aiohttp.test_utils import TestServer

    ended: list[str] = []
    app, path = _in_process(0.5, ended)

    async def scenario() -> None:
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
            url = str(server.make_url(path))
            idle = await one_shot(http, url)
            deadline = time.monotonic() + 10
            while session_identity(idle) not in ended:
                assert time.monotonic() < deadline, "the idle session never expired"
                await asyncio.sleep(0.05)
            ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
            assert (await mcp_post(http, url, ping, idle))[0] == 404
            deleted = await one_shot(http, url)
            headers = {"Mcp-Session-Id": deleted, "MCP-Protocol-Version": "2025-11-25"}
            async with http.delete(url, headers=headers) as resp:
                assert resp.status == 200
            assert ended == [session_identity(idle), session_identity(deleted)]

    asyncio.run(scenario())


def test_issue_11_idle_timeout_is_configurable(monkeypatch: Any) -> None:
    from sidecar.api.mcp import endpoint as mcp_api

    monkeypatch.delenv(mcp_api.IDLE_ENV, raising=False)  # the default, whatever the shell set
    assert mcp_api.idle_timeout_from_env() == 300.0
    monkeypatch.setenv(mcp_api.IDLE_ENV, "")
    assert mcp_api.idle_timeout_from_env() == 300.0
    monkeypatch.setenv(mcp_api.IDLE_ENV, "42")
    assert mcp_api.idle_timeout_from_env() == 42.0
    for bad in ("soon", "0", "-5", "inf"):
        monkeypatch.setenv(mcp_api.IDLE_ENV, bad)
        assert mcp_api.idle_timeout_from_env() == 300.0


# -- the ASGI adapter, with a toy application (no editor) --------------------------------


async def _toy_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the body, then streams two more chunks, then waits for the disconnect."""
    message = await receive()
    headers = [(b"content-type", b"text/plain"), (b"x-path", scope["path"].encode())]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": message["body"], "more_body": True})
    for chunk in (b"|one", b"|two"):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    assert (await receive())["type"] == "http.disconnect"


def test_asgi_adapter_streams_an_asgi_answer() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from sidecar.web import asgi

    async def handler(request: web.Request) -> web.StreamResponse:
        return await asgi.serve(_toy_app, request, {})

    async def main() -> tuple[int, str, str]:
        app = web.Application()
        app.router.add_post("/toy", handler)
        async with TestClient(TestServer(app)) as client:
            resp = await client.post("/toy", data=b"hello")
            return resp.status, await resp.text(), resp.headers["x-path"]

    assert asyncio.run(main()) == (201, "hello|one|two", "/toy")

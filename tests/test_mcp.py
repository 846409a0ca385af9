"""`/mcp` driven by the official MCP SDK's own client, against a real editor.

Two MCP sessions are two agents: a breakpoint set in one is that session's, the other
sees it only among everyone's. The tools are the served operations (issue 12): a tool's
arguments are the REST body, its answers and errors the REST answers.

Until every endpoint is declared as an operation, three tests here need operations other
branches declare (set_breakpoints, breakpoints, launch, stack_trace, scopes, variables,
evaluate, next, terminate, completion, hover, definition, diagnostics):
test_mcp_sessions_are_agents_with_their_own_breakpoints, test_mcp_client_named_by_x_agent_id
and test_issue_11_a_session_that_ends_takes_its_breakpoints_along.
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
import pytest
from aiohttp.test_utils import TestServer
from harness import REPO, Editor, get_json
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from pydantic import Field

from sidecar.api import catalog
from sidecar.api.debug import EVENTS
from sidecar.api.mcp.endpoint import MAX_SESSIONS
from sidecar.api.mcp.tools import inline_refs
from sidecar.errors import SidecarError
from sidecar.web.http import RouteTable, make_app
from sidecar.web.operation import Answer, Arguments, Caller, Operation

MAIN = "res://demo/main.gd"
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
COUNTER_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "counter += 1" in t)
# Every operation the route table serves is a tool (the catalog lists what it serves).
TOOLS = {op.name for op in catalog.OPERATIONS if op.tool}


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


def source(path: str) -> dict[str, Any]:
    return {"source": {"path": path}}


def at(path: str, line: int, character: int) -> dict[str, Any]:
    """An LSP request's body: the document and a 0-based position."""
    return {"textDocument": {"uri": path}, "position": {"line": line, "character": character}}


async def test_mcp_sessions_are_agents_with_their_own_breakpoints(editor: Editor) -> None:
    url = editor.base_url + "/mcp"

    async with Client(url) as alice, Client(url) as bob:
        assert alice.protocol_version == "2025-11-25"  # a session, not stateless
        listed = await alice.list_tools()
        assert TOOLS <= {t.name for t in listed.tools}
        status = await wait_ready(alice)
        assert status["debug_adapter"]["service"] == "debug_adapter"

        lines = [{"line": COUNTER_LINE}]
        bps = await call(alice, "set_breakpoints", **source(MAIN), breakpoints=lines)
        assert [(b["line"], b["verified"]) for b in bps["breakpoints"]] == [(COUNTER_LINE, True)]
        mine = await call(alice, "breakpoints")
        theirs = await call(bob, "breakpoints")
        assert mine["agent"].startswith("mcp-") and theirs["agent"].startswith("mcp-")
        assert mine["agent"] != theirs["agent"]
        assert mine["breakpoints"] == {MAIN: {mine["agent"]: [{"line": COUNTER_LINE}]}}
        assert theirs["breakpoints"] == {}
        everyone = await call(bob, "breakpoints", all=True)
        assert mine["agent"] in everyone["breakpoints"][MAIN]
        # The REST side sees the MCP session's breakpoint under the same identity.
        rest = get_json(editor.base_url + "/debug/breakpoints?all=true")["result"]
        assert rest["breakpoints"][MAIN] == {mine["agent"]: [{"line": COUNTER_LINE}]}
        sessions = get_json(editor.base_url + "/dashboard/state")["result"]["mcp_sessions"]
        assert {mine["agent"], theirs["agent"]} <= {s["identity"] for s in sessions}

        await debug_through_mcp(alice, bob)
        await language_through_mcp(bob)
        await call(alice, "set_breakpoints", **source(MAIN), breakpoints=[])
        await call(alice, "terminate")


async def debug_through_mcp(alice: Client, bob: Client) -> None:
    since = (await call(alice, "events"))["latest"]
    await call(alice, "launch")
    stop = await wait_stopped(bob, since)
    assert stop["body"]["reason"] == "breakpoint"
    frames = (await call(bob, "stack_trace"))["stackFrames"]
    assert (frames[0]["name"], frames[0]["line"]) == ("_process", COUNTER_LINE)
    scopes = (await call(bob, "scopes", frameId=frames[0]["id"]))["scopes"]
    members = next(s for s in scopes if s["name"] == "Members")
    variables = await call(bob, "variables", variablesReference=members["variablesReference"])
    assert "counter" in {v["name"] for v in variables["variables"]}
    assert (await call(alice, "evaluate", expression="counter + 1"))["result"].isdigit()
    error = await error_of(bob, "set_breakpoints", **source(MAIN), breakpoints=[{"line": 0}])
    assert error["http_status"] == 400 and error["error"]["field"] == "breakpoints[0].line"
    since = (await call(alice, "events"))["latest"]
    await call(alice, "next")
    assert (await wait_stopped(alice, since, 10))["body"]["reason"] == "step"


async def language_through_mcp(bob: Client) -> None:
    done = await call(bob, "completion", **at(MAIN, 9, 4), limit=5)
    assert done["prefix"] == "pri" and done["items"]
    line = next(i for i, t in enumerate(MAIN_GD) if "add_numbers(2, 3)" in t)
    character = MAIN_GD[line].index("add_numbers") + 2
    hover = await call(bob, "hover", **at(MAIN, line, character))
    assert "add_numbers" in json.dumps(hover)
    found = json.dumps(await call(bob, "definition", **at(MAIN, line, character)))
    assert "/demo/main.gd" in found
    diagnostics = await call(bob, "diagnostics", uri=MAIN, wait=5)
    assert diagnostics["diagnostics"] == []
    outside = {"uri": "res://../outside.gd"}
    assert (await error_of(bob, "diagnostics", **outside))["http_status"] == 403


async def test_mcp_client_named_by_x_agent_id(editor: Editor) -> None:
    async with named_client(editor.base_url + "/mcp", "dave") as dave:
        agent = (await call(dave, "breakpoints"))["agent"]
    assert agent == "dave"


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


async def test_issue_11_one_shot_sessions_never_lock_mcp_out(editor: Editor) -> None:
    url = editor.base_url + "/mcp"
    async with aiohttp.ClientSession() as http:
        for _ in range(MAX_SESSIONS + 5):
            await one_shot(http, url, "events")
    async with Client(url) as late:
        assert (await call(late, "events"))["latest"] >= 0
    sessions = get_json(editor.base_url + "/dashboard/state")["result"]["mcp_sessions"]
    assert 0 < len(sessions) <= MAX_SESSIONS


async def test_issue_11_a_session_that_ends_takes_its_breakpoints_along(editor: Editor) -> None:
    url = editor.base_url + "/mcp"

    def everyone() -> dict[str, Any]:
        answer = get_json(editor.base_url + "/debug/breakpoints?all=true")
        return answer["result"]["breakpoints"].get(MAIN, {})

    async with Client(url) as alice:  # the SDK's client DELETEs its session on exit
        lines = [{"line": COUNTER_LINE}]
        mine = await call(alice, "set_breakpoints", **source(MAIN), breakpoints=lines)
        assert mine["breakpoints"][0]["line"] == COUNTER_LINE
        agent = (await call(alice, "breakpoints"))["agent"]
        assert everyone()[agent] == [{"line": COUNTER_LINE}]
    assert agent not in everyone()


def _in_process(idle: float, ended: list[str], routes: RouteTable | None = None) -> tuple[Any, str]:
    """The /mcp route on an aiohttp app (with `routes`' operations, if given); `ended`
    collects the identities whose sessions ended."""
    from sidecar.agents import AgentRegistry
    from sidecar.api.mcp import endpoint as mcp_api

    async def forget(identity: str) -> None:
        ended.append(identity)

    routes = RouteTable() if routes is None else routes
    endpoint = mcp_api.register(routes, forget)
    endpoint.sessions.idle = idle
    return make_app(routes, AgentRegistry()), mcp_api.MCP_PATH


async def test_issue_11_full_session_table_evicts_the_least_recently_used() -> None:
    ended: list[str] = []
    app, path = _in_process(600.0, ended)

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


# slow: it waits out a 0.5 s idle timeout.
@pytest.mark.slow
async def test_issue_11_idle_sessions_expire_and_deleted_ones_are_forgotten() -> None:
    ended: list[str] = []
    app, path = _in_process(0.5, ended)

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


# -- the tools are the operations (issue 12) ----------------------------------------------


async def test_issue_12_mcp_tools_are_the_served_operations(editor: Editor) -> None:
    """Each served operation is a tool with its declaration's schema and defaults (the
    events limit is 500 as on REST, not MCP's own 100), and a tool's answers and errors
    are REST's, to the field its 400 names."""
    url = editor.base_url + "/mcp"

    def rest(body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            editor.base_url + EVENTS.path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return {"http_status": resp.status, **json.loads(resp.read())}
        except urllib.error.HTTPError as err:
            return {"http_status": err.code, **json.loads(err.read())}

    async with Client(url) as agent:
        listed = {t.name: t for t in (await agent.list_tools()).tools}
        assert set(listed) == TOOLS
        events = listed["events"]
        assert events.input_schema == inline_refs(EVENTS.arguments.model_json_schema())
        assert events.input_schema["properties"]["limit"]["default"] == 500
        assert events.description == EVENTS.summary
        assert events.output_schema is not None
        assert {"events", "next", "latest"} <= set(events.output_schema["properties"])
        assert listed["status"].annotations and listed["status"].annotations.read_only_hint

        page = await call(agent, "events", since=0, wait=0)
        assert page["latest"] == rest({})["result"]["latest"]
        status = await call(agent, "status")
        assert status["sidecar"]["pid"] == get_json(editor.base_url + "/status")["sidecar"]["pid"]
        for wrong in ({"since": -1}, {"since": "3"}, {"wait": True}):
            refused = await error_of(agent, "events", **wrong)
            assert refused == rest(wrong), wrong
            assert refused["error"]["field"] == next(iter(wrong))


class _Place(Arguments):
    line: int = Field(ge=1, description="1-based")
    column: int = Field(0, ge=0)


class EchoArguments(Arguments):
    word: str = Field(min_length=1, description="what to say back")
    times: int = Field(2, ge=1, description="how many times")
    places: list[_Place] = Field(default_factory=list)


class Echo(Answer):
    said: str
    identity: str
    connection_scoped: bool


ECHO = Operation(
    name="echo",
    path="/test/echo",
    summary="say it back",
    description="Twice unless told.",
    arguments=EchoArguments,
    answer=Echo,
    errors=("not_found",),
)
LETTERS = Operation(
    name="letters",
    path="/test/letters",
    methods=("GET",),
    summary="the letters of a word",
    arguments=EchoArguments,
    answer=list[str],
)
HIDDEN = Operation(
    name="hidden",
    path="/test/hidden",
    summary="no tool",
    arguments=EchoArguments,
    answer=Echo,
    tool=False,
)


def _echo_routes(calls: list[Caller]) -> RouteTable:
    async def echo(args: EchoArguments, caller: Caller) -> Echo:
        calls.append(caller)
        if args.word == "nowhere":
            raise SidecarError("no such word", code="not_found", details={"word": args.word})
        if args.word == "crash":
            raise RuntimeError("a secret the agent must not see")
        said = args.word * args.times
        return Echo(said=said, identity=caller.identity, connection_scoped=caller.connection_scoped)

    async def letters(args: EchoArguments, caller: Caller) -> list[str]:
        return list(args.word)

    routes = RouteTable()
    routes.serve(ECHO, echo)
    routes.serve(LETTERS, letters)
    routes.serve(HIDDEN, echo)
    return routes


async def test_issue_12_an_operation_declared_once_is_an_mcp_tool() -> None:
    calls: list[Caller] = []
    app, path = _in_process(600.0, [], _echo_routes(calls))

    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        url = str(server.make_url(path))

        async def rest(body: dict[str, Any]) -> dict[str, Any]:
            async with http.post(server.make_url(ECHO.path), json=body) as resp:
                return {"http_status": resp.status, **await resp.json()}

        async with Client(url) as alice, Client(url) as bob:
            tools = {t.name: t for t in (await alice.list_tools()).tools}
            assert set(tools) == {"echo", "letters"}  # `hidden` is tool=False
            echo = tools["echo"]
            assert echo.description == "say it back\n\nTwice unless told."
            schema = echo.input_schema
            assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
            assert schema["required"] == ["word"]
            assert schema["properties"]["times"] == {
                "default": 2,
                "description": "how many times",
                "minimum": 1,
                "title": "Times",
                "type": "integer",
            }
            place = schema["properties"]["places"]["items"]
            assert place["properties"]["line"]["minimum"] == 1
            assert place["required"] == ["line"]
            assert echo.output_schema is not None
            assert echo.output_schema["required"] == ["said", "identity", "connection_scoped"]
            assert echo.annotations is None  # a POST may change things
            letters = tools["letters"]
            assert letters.output_schema == {
                "type": "object",
                "properties": {"result": {"items": {"type": "string"}, "type": "array"}},
                "required": ["result"],
            }
            assert letters.annotations and letters.annotations.read_only_hint

            said = await call(alice, "echo", word="hi")
            assert said["said"] == "hihi" and said["identity"].startswith("mcp-")
            assert said["connection_scoped"] is False
            assert (await call(alice, "echo", word="o", times=3))["said"] == "ooo"
            theirs = await call(bob, "echo", word="x")
            assert theirs["identity"].startswith("mcp-")
            assert theirs["identity"] != said["identity"]
            assert calls[-1] == Caller(theirs["identity"], connection_scoped=False)
            assert await call(alice, "letters", word="ab") == {"result": ["a", "b"]}

            for wrong in (
                {},
                {"word": ""},
                {"word": "x", "times": "2"},
                {"word": "x", "places": [{"line": 3}, {"line": 0}]},
                {"word": "nowhere"},
            ):
                assert await error_of(alice, "echo", **wrong) == await rest(wrong), wrong
            crash = await error_of(alice, "echo", word="crash")
            assert crash == await rest({"word": "crash"})
            assert crash["http_status"] == 500 and "secret" not in json.dumps(crash)
            unknown = await alice.call_tool("set_breakpoints", {})
            assert unknown.is_error

        async with named_client(url, "dave") as dave:
            assert (await call(dave, "echo", word="d"))["identity"] == "dave"


async def test_issue_12_tools_follow_operations_served_later() -> None:
    """The tool list is read from the route table, so it grows as operations are served.

    Served after the aiohttp app was built, `echo` has no HTTP route at all: its tool
    call can only be the handler called directly, not a request made up for a route."""
    routes = RouteTable()
    app, path = _in_process(600.0, [], routes)

    async def echo(args: EchoArguments, caller: Caller) -> Echo:
        return Echo(said=args.word, identity=caller.identity, connection_scoped=False)

    async with TestServer(app, host="127.0.0.1") as server:
        async with Client(str(server.make_url(path))) as agent:
            assert (await agent.list_tools()).tools == []
            routes.serve(ECHO, echo)
            assert [t.name for t in (await agent.list_tools()).tools] == ["echo"]
            assert (await call(agent, "echo", word="late"))["said"] == "late"


def test_issue_12_recursive_schemas_keep_their_references() -> None:
    tree = {
        "$defs": {
            "Node": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/Node"}}}}
        },
        "$ref": "#/$defs/Node",
    }
    assert inline_refs(tree) == tree
    flat = {
        "$defs": {"P": {"type": "integer"}},
        "properties": {"p": {"$ref": "#/$defs/P", "description": "d"}},
    }
    assert inline_refs(flat) == {"properties": {"p": {"type": "integer", "description": "d"}}}


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


async def test_asgi_adapter_streams_an_asgi_answer() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from sidecar.web import asgi

    async def handler(request: web.Request) -> web.StreamResponse:
        return await asgi.serve(_toy_app, request, {})

    app = web.Application()
    app.router.add_post("/toy", handler)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/toy", data=b"hello")
        answer = resp.status, await resp.text(), resp.headers["x-path"]
    assert answer == (201, "hello|one|two", "/toy")

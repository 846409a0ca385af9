"""sidecar/web/http.py: the route table, the error shape and body parsing, served by aiohttp;
a tiny declared operation stands for every real one (sidecar/web/operation.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sidecar.agents import AgentRegistry
from sidecar.errors import PeerTimeout, TransportError
from sidecar.web.http import MAX_BODY, RouteTable, make_app
from sidecar.web.operation import Arguments, Caller, Operation


class EchoArguments(Arguments):
    line: int
    name: str | None = None
    flag: bool = False


ECHO = Operation(
    name="echo",
    path="/echo",
    methods=("GET", "POST"),
    summary="echo the arguments",
    arguments=EchoArguments,
    answer=dict,
)


def _table() -> RouteTable:
    routes = RouteTable()

    async def echo(args: EchoArguments, caller: Caller) -> Any:
        return {"line": args.line, "all": args.model_dump()}

    async def down(request: web.Request) -> Any:
        raise TransportError("not connected", code="not_connected", retry_after=2)

    async def slow(request: web.Request) -> Any:
        raise PeerTimeout("Godot did not answer 'stackTrace' within 10 s")

    async def boom(request: web.Request) -> Any:
        raise RuntimeError("bug")

    routes.serve(ECHO, echo)
    routes.add("GET", "/down", down, "a service that is not there")
    routes.add("GET", "/slow", slow, "a peer that timed out")
    routes.add("GET", "/boom", boom, "a bug")
    return routes


Call = Callable[..., Awaitable[tuple[int, dict, Any]]]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def call() -> Call:
    async def do(method: str, path: str, **kw: Any) -> tuple[int, dict, Any]:
        app = make_app(_table(), AgentRegistry())
        async with TestClient(TestServer(app)) as client:
            resp = await client.request(method, path, **kw)
            return resp.status, await resp.json(), resp.headers

    return do


async def test_success_is_wrapped_in_ok(call: Call) -> None:
    status, body, _ = await call("POST", "/echo", json={"line": 3})
    assert status == 200
    everything = {"line": 3, "name": None, "flag": False}
    assert body == {"status": "ok", "result": {"line": 3, "all": everything}}


async def test_get_query_values_are_read_as_their_fields_type(call: Call) -> None:
    status, body, _ = await call("GET", "/echo?line=1&name=x&flag=true")
    assert status == 200
    assert body["result"]["all"] == {"line": 1, "name": "x", "flag": True}
    status, body, _ = await call("GET", "/echo?line=AAA")
    assert (status, body["error"]["field"]) == (400, "line")
    status, body, _ = await call("GET", "/echo?line=1&flag=banana")
    assert (status, body["error"]["field"]) == (400, "flag")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"line": ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
async def test_bad_json_is_400_saying_why(call: Call, data: bytes, needle: str) -> None:
    status, body, _ = await call("POST", "/echo", data=data, headers=JSON)
    assert status == 400
    assert body["status"] == "error"
    assert body["error"]["code"] == "invalid_json"
    assert needle in body["error"]["message"]


async def test_missing_and_wrong_typed_fields_are_named(call: Call) -> None:
    status, body, _ = await call("POST", "/echo", json={})
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "missing_field", "line")
    status, body, _ = await call("POST", "/echo", json={"line": "3"})
    assert status == 400
    assert body["error"]["code"] == "invalid_field"
    assert "'line'" in body["error"]["message"] and "integer" in body["error"]["message"]
    status, body, _ = await call("POST", "/echo", json={"line": True})
    assert status == 400 and body["error"]["field"] == "line"


async def test_unknown_path_is_404_listing_every_endpoint(call: Call) -> None:
    status, body, _ = await call("GET", "/nope")
    assert status == 404
    assert body["error"]["code"] == "not_found"
    listed = {(e["path"], tuple(e["methods"])) for e in body["error"]["endpoints"]}
    assert ("/echo", ("GET", "POST")) in listed
    assert ("/down", ("GET",)) in listed


async def test_wrong_method_is_405_with_allow(call: Call) -> None:
    status, body, headers = await call("PUT", "/down")
    assert status == 405
    assert body["error"]["code"] == "method_not_allowed"
    assert headers["Allow"] == "GET"


async def test_transport_error_is_503_with_retry_after(call: Call) -> None:
    status, body, headers = await call("GET", "/down")
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert body["error"] == {"code": "not_connected", "message": "not connected"}


async def test_peer_timeout_is_504_naming_the_command(call: Call) -> None:
    status, body, _ = await call("GET", "/slow")
    assert status == 504
    assert "stackTrace" in body["error"]["message"]


async def test_a_bug_is_500_in_the_error_shape(call: Call) -> None:
    status, body, _ = await call("GET", "/boom")
    assert status == 500
    assert body["error"]["code"] == "internal_error"


async def test_body_over_the_cap_is_413(call: Call) -> None:
    status, body, _ = await call("POST", "/echo", data=b"x" * (MAX_BODY + 1), headers=JSON)
    assert status == 413
    assert body["error"]["code"] == "body_too_large"

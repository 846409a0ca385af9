"""sidecar/http.py: the route table, the error shape and body parsing, served by aiohttp."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sidecar.agents import AgentRegistry
from sidecar.errors import PeerTimeout, TransportError
from sidecar.web.http import MAX_BODY, RouteTable, json_body, make_app, require


def _table() -> RouteTable:
    routes = RouteTable()

    @routes.route("POST", "/echo", "echo the arguments")
    async def echo(request: web.Request) -> Any:
        body = await json_body(request)
        return {"line": require(body, "line", int), "all": body}

    @routes.route("GET", "/echo", "echo the query")
    async def echo_get(request: web.Request) -> Any:
        return await json_body(request)

    @routes.route("GET", "/down", "a service that is not there")
    async def down(request: web.Request) -> Any:
        raise TransportError("not connected", code="not_connected", retry_after=2)

    @routes.route("GET", "/slow", "a peer that timed out")
    async def slow(request: web.Request) -> Any:
        raise PeerTimeout("Godot did not answer 'stackTrace' within 10 s")

    @routes.route("GET", "/boom", "a bug")
    async def boom(request: web.Request) -> Any:
        raise RuntimeError("bug")

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
    assert body == {"status": "ok", "result": {"line": 3, "all": {"line": 3}}}


async def test_get_query_values_are_decoded_as_json(call: Call) -> None:
    status, body, _ = await call("GET", "/echo?threadId=1&name=x&flag=true")
    assert status == 200
    assert body["result"] == {"threadId": 1, "name": "x", "flag": True}


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
    assert "'line' must be an integer, got str" in body["error"]["message"]
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

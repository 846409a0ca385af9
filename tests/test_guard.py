"""sidecar/web/guard.py: loopback Host and Origin only, JSON bodies, the optional token.

Most checks run against the aiohttp application in this process; the last tests start a
real editor whose project setting holds a token (the addon hands it to the sidecar through
the environment) and check that nothing listens on a non-loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from harness import Editor, http_get, make_demo_project, read_response

from sidecar.agents import AgentRegistry
from sidecar.web.guard import is_loopback_host, is_loopback_origin, token_matches
from sidecar.web.http import MAX_BODY, RouteTable, json_body, make_app

JSON = {"Content-Type": "application/json"}
TOKEN = "t0k3n-for-tests"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8080", "localhost", "LocalHost:1", "[::1]", "[::1]:65535"],
)
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
        "localhost.",
        "localhost.evil.example",
        "127.0.0.2",
        "127.1",
        "0.0.0.0",
        "192.0.2.2:8080",
        "::1",
        "[::ffff:127.0.0.1]",
        "localhost:",
        "localhost:0",
        "localhost:65536",
        "localhost:http",
        "127.0.0.1:8080:1",
        "user@127.0.0.1",
        "127.0.0.1 evil.example",
    ],
)
def test_other_hosts_are_refused(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost", True),
        ("https://[::1]:3000", True),
        ("null", False),
        ("http://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("file://", False),
        ("ws://localhost:8080", False),
        ("http://localhost:8080/path", False),
        ("http://user@localhost", False),
        ("http://[::1", False),
    ],
)
def test_origins(origin: str, ok: bool) -> None:
    assert is_loopback_origin(origin) is ok


def test_token_comparison() -> None:
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"bearer  {TOKEN} ", TOKEN)
    for header in (
        None,
        "",
        TOKEN,
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        "Bearer",
        "Bearer \udcff",
    ):
        assert not token_matches(header, TOKEN), header


# --- the application, in this process ------------------------------------------------------


def _routes() -> RouteTable:
    routes = RouteTable()

    async def echo(request: web.Request) -> Any:
        return await json_body(request)

    async def hello(request: web.Request) -> Any:
        return "hi"

    routes.add("POST", "/echo", echo, "echo the body")
    routes.add("GET", "/hello", hello, "a GET")
    return routes


async def _request(
    token: str | None, method: str, path: str, **kw: Any
) -> tuple[int, dict[str, Any], Any]:
    app = make_app(_routes(), AgentRegistry(), token=token)
    async with TestClient(TestServer(app)) as client:
        resp = await client.request(method, path, **kw)
        return resp.status, await resp.json(), resp.headers


async def call(
    method: str, path: str, token: str | None = None, **kw: Any
) -> tuple[int, dict, Any]:
    return await _request(token, method, path, **kw)


def _error(body: dict[str, Any], code: str) -> str:
    assert body["status"] == "error", body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]["message"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io"])
async def test_rebinding_host_is_421_in_json(host: str) -> None:
    status, body, _ = await call("GET", "/hello", headers={"Host": host})
    assert status == 421
    assert "DNS rebinding" in _error(body, "misdirected_request")


async def test_loopback_hosts_pass() -> None:
    for host in ("localhost", "localhost:9", "[::1]:9", "127.0.0.1"):
        status, body, _ = await call("GET", "/hello", headers={"Host": host})
        assert (status, body["result"]) == (200, "hi"), host


async def test_missing_host_is_400() -> None:
    app = make_app(_routes(), AgentRegistry())
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /hello HTTP/1.0\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert raw.startswith(b"HTTP/1.0 400") or raw.startswith(b"HTTP/1.1 400"), raw
    assert b'"missing_host"' in raw


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost.evil.example"])
async def test_foreign_origin_is_403(origin: str) -> None:
    status, body, _ = await call("POST", "/echo", json={"a": 1}, headers={"Origin": origin})
    assert status == 403
    _error(body, "forbidden_origin")


async def test_loopback_origin_passes() -> None:
    status, body, _ = await call(
        "POST", "/echo", json={"a": 1}, headers={"Origin": "http://127.0.0.1:1"}
    )
    assert (status, body["result"]) == (200, {"a": 1})


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_declared_json_is_415(content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    skip = () if content_type else ("Content-Type",)
    app = make_app(_routes(), AgentRegistry())
    async with TestClient(TestServer(app), skip_auto_headers=skip) as client:
        resp = await client.post("/echo", data=b'{"a": 1}', headers=headers)
        status, body = resp.status, await resp.json()
    assert status == 415
    assert "application/json" in _error(body, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
async def test_json_bodies_pass(content_type: str) -> None:
    status, body, _ = await call(
        "POST", "/echo", data=b'{"a": 1}', headers={"Content-Type": content_type}
    )
    assert (status, body["result"]) == (200, {"a": 1})


async def test_a_post_without_a_body_needs_no_content_type() -> None:
    # aiohttp's client labels even an empty POST application/octet-stream.
    status, body, _ = await call("POST", "/echo")
    assert (status, body["result"]) == (200, {})
    status, body, _ = await call("POST", "/echo", headers={"Content-Type": "text/plain"})
    assert (status, body["result"]) == (200, {})


async def test_declared_length_over_the_cap_is_413_before_the_body_is_sent() -> None:
    app = make_app(_routes(), AgentRegistry())
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {10 * MAX_BODY}\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.readuntil(b"}}"), 5)
        writer.close()
    assert raw.startswith(b"HTTP/1.1 413"), raw
    assert b'"body_too_large"' in raw


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"[" * 200_000, "nests too deeply"),
        (b'{"a": ' + b"1" * 5000 + b"}", "not usable JSON"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": -Infinity}', "-Infinity is not JSON"),
    ],
)
async def test_json_that_python_chokes_on_is_400(data: bytes, needle: str) -> None:
    status, body, _ = await call("POST", "/echo", data=data, headers=JSON)
    assert status == 400, body
    assert needle in _error(body, "invalid_json")


async def test_token_is_needed_everywhere_but_health() -> None:
    status, body, headers = await call("GET", "/hello", token=TOKEN)
    assert status == 401
    assert "Authorization: Bearer" in _error(body, "unauthorized")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await call("GET", "/nope", token=TOKEN)  # no endpoint listing without it
    assert status == 401 and "endpoints" not in body["error"]
    status, body, _ = await call(
        "GET", "/hello", token=TOKEN, headers={"Authorization": "Bearer x"}
    )
    assert status == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body, _ = await call("GET", "/hello", token=TOKEN, headers=auth)
    assert (status, body["result"]) == (200, "hi")
    status, body, _ = await call("GET", "/health", token=TOKEN)
    assert (status, body["result"]) == (200, {"healthy": True})
    status, body, _ = await call("POST", "/health", token=TOKEN)
    assert status == 401  # only the GET is open


async def test_host_is_checked_before_the_token() -> None:
    status, _, _ = await call("GET", "/health", token=TOKEN, headers={"Host": "evil.example"})
    assert status == 421


async def test_without_a_token_everything_is_open_and_health_is_listed() -> None:
    status, body, _ = await call("GET", "/nope")
    assert status == 404
    assert {"path": "/health", "methods": ["GET"]} in body["error"]["endpoints"]


# --- the real stack -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_editor(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Editor]:
    """An editor whose project setting godot_debug_connection/token is set."""
    project = make_demo_project(tmp_path_factory.mktemp("token_project"))
    with (project / "project.godot").open("a") as f:
        f.write(f'\n[godot_debug_connection]\n\ntoken="{TOKEN}"\n')
    if os.environ.get("GODOT_BRIDGE_TOKEN"):
        pytest.skip(
            "GODOT_BRIDGE_TOKEN is set in this environment and would override the project "
            "setting this test checks; unset it to run the test"
        )
    ed = Editor(project, token=TOKEN)
    try:
        ed.start()
        yield ed
    finally:
        ed.stop()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(http_get(port, path, headers))
        answer = read_response(s)
        return answer.status, answer.json()


def test_token_from_the_project_setting_reaches_the_sidecar(token_editor: Editor) -> None:
    port = token_editor.bridge_port
    status, body = _wait_health(port)
    assert (status, body["result"]) == (200, {"healthy": True})
    status, body = _get(port, "/status")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = _get(port, "/status", {"Authorization": "Bearer wrong"})
    assert status == 401
    status, body = _get(port, "/status", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and body["sidecar"]["pid"] > 0
    sidecar = psutil.Process(body["sidecar"]["pid"])
    assert sidecar.environ().get("GODOT_BRIDGE_TOKEN") == TOKEN


def test_issue_5_dashboard_page_opens_without_the_token_but_not_its_data(
    token_editor: Editor,
) -> None:
    port = token_editor.bridge_port
    _wait_health(port)
    for path in ("/", "/dashboard"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(http_get(port, path))
            page = read_response(s)
        assert page.status == 200, page.body[:200]
        assert page.headers["content-type"].startswith("text/html")
        assert b"/dashboard/state" in page.body
    status, body = _get(port, "/dashboard/state")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = _get(port, "/dashboard/state", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "breakpoints" in body["result"] and "status" in body["result"]


def _wait_health(port: int, timeout: float = 60) -> tuple[int, dict]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = _get(port, "/health")
            if status == 200:
                return status, body
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "sidecar never answered /health"
        time.sleep(0.1)


def _other_local_addresses() -> list[str]:
    """This machine's non-loopback, non-link-local interface addresses."""
    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                found.append(a.address)
            elif a.family == socket.AF_INET6 and a.address not in ("::1",):
                if not a.address.lower().startswith("fe80"):
                    found.append(a.address.split("%")[0])
    return found


def test_listens_on_loopback_only(token_editor: Editor) -> None:
    _wait_health(token_editor.bridge_port)
    procs = [psutil.Process(token_editor.pid), *map(psutil.Process, token_editor.sidecar_pids())]
    listening = [
        (p.name(), c.laddr)
        for p in procs
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    # The bridge, the link port and Godot's own LSP and DAP servers.
    assert any(addr.port == token_editor.bridge_port for _, addr in listening)
    assert len(listening) >= 3, listening
    assert all(addr.ip in ("127.0.0.1", "::1") for _, addr in listening), listening

    others = _other_local_addresses()
    print(f"\nnon-loopback addresses tried: {others or 'none on this machine'}")
    for address in others:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            code = s.connect_ex((address, token_editor.bridge_port))
        assert code in (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH), (address, code)
    with contextlib.suppress(OSError), socket.socket() as s:
        # 127.0.0.2 is loopback too, but not the address the bridge is bound to.
        s.settimeout(3)
        assert s.connect_ex(("127.0.0.2", token_editor.bridge_port)) == errno.ECONNREFUSED

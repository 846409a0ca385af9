"""The addon's agent server, end to end: a real headless editor, addon and sidecar.

Mirrors addons/godot_debug_connection/agent_server.gd; the first three tests are the
seed's scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import psutil
import pytest
from harness import REPO, Editor, http_get, read_response

STACK_TRACE = {"threadId": 1}
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
TWICE_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "var doubled: int" in t)
COMPLETION = {
    "textDocument": {"uri": "res://demo/main.gd"},
    # the cursor after "add_" in "add_numbers(n, n)"
    "position": {"line": TWICE_LINE - 1, "character": MAIN_GD[TWICE_LINE - 1].index("add_") + 4},
    "prefix": "add_",
}


def _assert_error_shape(body: dict, code: str) -> None:
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def _call(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=30), **kw) as r:
        body = await r.json()
        assert r.status == 200, (url, body)
        assert body["status"] == "ok"
        # /status answers the seed's shape at the top level; everything else in "result".
        return body if url.endswith("/status") else body["result"]


async def _until_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (await _call(session, "GET", base + "/status"))["overall_ready"]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("services never became ready")


async def _stopped_game(session: aiohttp.ClientSession, base: str) -> None:
    """Launch the demo with a breakpoint in twice() and wait until it stops there."""
    since = (await _call(session, "GET", base + "/debug/events"))["next"]
    await _call(
        session,
        "POST",
        base + "/debug/setBreakpoints",
        json={"source": {"path": "res://demo/main.gd"}, "breakpoints": [{"line": TWICE_LINE}]},
    )
    await _call(session, "POST", base + "/debug/launch", json={"scene": "main"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = await _call(session, "GET", base + f"/debug/events?since={since}&wait=2")
        if any(e["event"] == "stopped" for e in page["events"]):
            return
        since = page["next"]
    raise AssertionError("the game never stopped at the breakpoint")


async def _end_game(session: aiohttp.ClientSession, base: str) -> None:
    await _call(
        session,
        "POST",
        base + "/debug/setBreakpoints",
        json={"source": {"path": "res://demo/main.gd"}, "breakpoints": []},
    )
    await _call(session, "POST", base + "/debug/terminate", json={})


async def _agent(base: str, n: int) -> tuple[dict, dict, dict]:
    async with aiohttp.ClientSession(headers={"X-Agent-Id": f"agent-{n}"}) as session:
        return (
            await _call(session, "GET", base + "/status"),
            await _call(session, "POST", base + "/debug/stackTrace", json=STACK_TRACE),
            await _call(session, "POST", base + "/lsp/completion", json=COMPLETION),
        )


def _assert_real_answers(status: dict, stack: dict, completion: dict, editor: Editor) -> None:
    assert status["overall_ready"] is True
    for key, port in (("debug_adapter", editor.dap_port), ("language_server", editor.lsp_port)):
        svc = status[key]
        assert (svc["port"], svc["state"]) == (port, "connected")
        assert {"service", "retry_count", "last_activity"} <= svc.keys()
    top = stack["stackFrames"][0]
    assert (top["name"], top["line"]) == ("twice", TWICE_LINE)
    assert top["source"]["path"].endswith("demo/main.gd")
    assert "add_numbers" in [item["label"].split("(")[0] for item in completion["items"]]


async def test_five_agents_at_once_get_real_answers(editor: Editor) -> None:
    """Seed scenario 1: five agents at once, each gets /status, a stack and completions."""
    async with aiohttp.ClientSession(headers={"X-Agent-Id": "setup"}) as session:
        await _until_ready(session, editor.base_url)
        await _stopped_game(session, editor.base_url)
        try:
            answers = await asyncio.gather(*(_agent(editor.base_url, n) for n in range(5)))
        finally:
            await _end_game(session, editor.base_url)
    for status, stack, completion in answers:
        _assert_real_answers(status, stack, completion, editor)


async def test_mixed_concurrent_requests_on_one_session_all_answered(editor: Editor) -> None:
    """Seed scenario 3: three kinds of request at once on one client session."""
    async with aiohttp.ClientSession() as session:
        await _until_ready(session, editor.base_url)
        await _stopped_game(session, editor.base_url)
        try:
            status, stack, completion = await asyncio.gather(
                _call(session, "GET", editor.base_url + "/status"),
                _call(session, "POST", editor.base_url + "/debug/stackTrace", json=STACK_TRACE),
                _call(session, "POST", editor.base_url + "/lsp/completion", json=COMPLETION),
            )
        finally:
            await _end_game(session, editor.base_url)
    _assert_real_answers(status, stack, completion, editor)


def test_limit_101st_connection_gets_polite_503_and_slot_is_reused(editor: Editor) -> None:
    mark = editor.mark()
    socks: list[socket.socket] = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10)
            socks.append(s)
            s.sendall(http_get(editor.bridge_port, "/status"))
            assert read_response(s).status == 200
        editor.wait_for(r"Total clients: 100\b", 10, mark)
        status = _status_over(socks[0], editor.bridge_port)
        assert status["clients"]["active"] == 100
        assert status["clients"]["max"] == 100

        extra = socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10)
        extra.sendall(http_get(editor.bridge_port, "/status"))
        refused = read_response(extra)
        assert refused.status == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["connection"] == "close"
        _assert_error_shape(refused.json(), "server_full")
        assert extra.recv(1) == b""  # then closed
        extra.close()
        editor.wait_for(r"Max clients reached \(100\), rejecting new connection", 10, mark)

        # One leaves; its slot is served again.
        leave_mark = editor.mark()
        socks.pop().close()
        editor.wait_for(r"✗ Client \d+ disconnected", 10, leave_mark)
        _wait_until(lambda: _status_over(socks[0], editor.bridge_port)["clients"]["active"] == 99)
        again = socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10)
        socks.append(again)
        again.sendall(http_get(editor.bridge_port, "/status"))
        answer = read_response(again)
        assert answer.status == 200, answer.body
    finally:
        for s in socks:
            s.close()
    _wait_active(editor, 0)


def test_issue_11_slots_of_closed_agents_are_free_for_the_next_one_at_once(
    editor: Editor,
) -> None:
    # 100 curl-style agents leave and one connects right after: the closed ones still hold
    # their slots until the pump's next status sweep (while it is parked, up to a second),
    # so the newcomer must not be refused with 503 for that.
    _wait_active(editor, 0)
    for _ in range(3):
        mark = editor.mark()
        socks: list[socket.socket] = []
        try:
            for _ in range(100):
                s = socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10)
                socks.append(s)
                s.sendall(http_get(editor.bridge_port, "/status"))
                assert read_response(s).status == 200
            editor.wait_for(r"Total clients: 100\b", 10, mark)
            time.sleep(1.3)  # past the pump's 1 s of warmth: it parks
        finally:
            for s in socks:
                s.close()
        with socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10) as s:
            s.sendall(http_get(editor.bridge_port, "/status"))
            answer = read_response(s)
            assert answer.status == 200, answer.body
        _wait_active(editor, 0)


BURST = 100
# s: a rare SYN-cookie straggler (RELIABILITY.md) resends its request with a doubling backoff
# (1, 3, 7, ... 63, 127 s); seen answered after 28 s and 55 s on a busy machine.
BURST_ANSWERED_WITHIN = 130.0
RESENDS_DONE = 8.5  # s after a burst: its resend windows (1 s, 3 s, 7 s) are over by ~7.1 s
# s of CPU from 1.5 s to 8.5 s: measured 0.11-0.13 with the pump's naps on a quiet machine and
# up to 0.28 on 2 cores loaded by other editors; 0.39-0.51 spinning
PUMP_BUSY_LIMIT = 0.35


def _thread_cpu(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def _busiest_helper_thread(pid: int, before: dict[int, float]) -> float:
    """CPU seconds since `before` of the busiest thread other than the main one (the pump)."""
    after = _thread_cpu(pid)
    return max((cpu - before.get(t, 0.0) for t, cpu in after.items() if t != pid), default=0.0)


async def _first_answer_status(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(http_get(port, "/status"))
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (
                int(v)
                for k, _, v in (x.partition(":") for x in lines[1:])
                if k.strip().lower() == "content-length"
            ),
            0,
        )
        await reader.readexactly(length)
        return int(lines[0].split()[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _burst_and_watch_pump(editor: Editor) -> tuple[list[Any], float]:
    """100 connections at the same instant (as `autocannon -c 100`); meanwhile, the pump's CPU
    from 1.5 s after the burst (its first wave answered) until its resend windows are over."""
    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(_first_answer_status(editor.bridge_port)) for _ in range(BURST)]
    await asyncio.sleep(1.5)
    before = _thread_cpu(editor.pid)
    await asyncio.sleep(RESENDS_DONE - (time.monotonic() - t0))
    busy = _busiest_helper_thread(editor.pid, before)
    left = max(1.0, BURST_ANSWERED_WITHIN - (time.monotonic() - t0))
    done, pending = await asyncio.wait(tasks, timeout=left)
    for task in pending:
        task.cancel()
    return [t.exception() or t.result() for t in done] + ["no answer"] * len(pending), busy


@pytest.mark.timing
async def test_issue_11_burst_of_100_all_answered_and_the_pump_idles_after(editor: Editor) -> None:
    # Godot's listen backlog of 8 drops most SYNs of such a burst; their clients resend them
    # 1 s, 3 s and 7 s later, and the pump watches the listen socket around those moments. Every
    # connection must get its 200 (none refused or dropped), and the watching must not burn a
    # core (it spun without a pause: ~0.2 s of CPU per window); then the pump parks.
    _wait_active(editor, 0)
    await asyncio.sleep(1.5)  # past the pump's 1 s of warmth: a burst usually finds it parked
    results, busy = await _burst_and_watch_pump(editor)
    assert results.count(200) == BURST, {repr(r) for r in results if r != 200}
    assert busy < PUMP_BUSY_LIMIT, f"the pump used {busy:.2f} s of CPU watching for resends"
    _wait_active(editor, 0)
    await asyncio.sleep(1.5)
    before = _thread_cpu(editor.pid)
    await asyncio.sleep(2.0)
    idle = _busiest_helper_thread(editor.pid, before)
    assert idle < 0.04, f"a thread other than the main one stayed busy: {idle:.3f} s in 2 s"


def test_connect_and_disconnect_lines_are_logged(editor: Editor) -> None:
    mark = editor.mark()
    with socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10) as s:
        s.sendall(http_get(editor.bridge_port, "/status"))
        assert read_response(s).status == 200
        m = editor.wait_for(r"✓ Client (\d+) connected\. Total clients: (\d+)", 10, mark)
    client_id = m.group(1)
    editor.wait_for(rf"✗ Client {client_id} disconnected", 10, mark)


def test_client_ids_increase_and_are_unique(editor: Editor) -> None:
    mark = editor.mark()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10) as s:
            s.sendall(http_get(editor.bridge_port, "/status"))
            read_response(s)
    editor.wait_for(r"(?s)(✗ Client \d+ disconnected.*){3}", 10, mark)
    ids = [int(x) for x in _findall(editor, r"✓ Client (\d+) connected", mark)]
    assert len(ids) == 3
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_keep_alive_and_pipelining(editor: Editor) -> None:
    with socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10) as s:
        # Two requests in one write: both answered, in order, on the same connection.
        s.sendall(http_get(editor.bridge_port, "/status") + http_get(editor.bridge_port, "/nope"))
        buf = bytearray()
        first = read_response(s, buf)
        second = read_response(s, buf)
        assert first.status == 200 and first.json()["status"] == "ok"
        assert second.status == 404
        # The connection is still usable afterwards.
        s.sendall(http_get(editor.bridge_port, "/status"))
        assert read_response(s, buf).status == 200


def test_status_names_agents_and_counts_requests(editor: Editor) -> None:
    with socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10) as s:
        buf = bytearray()
        for _ in range(3):
            s.sendall(http_get(editor.bridge_port, "/status", {"X-Agent-Id": "planner"}))
            last = read_response(s, buf).json()
    agents = last["clients"]["agents"]
    me = [a for a in agents if a["agent"] == "planner"]
    assert len(me) == 1
    assert me[0]["requests"] == 3
    assert me[0]["connected_at"].endswith("Z")
    assert isinstance(me[0]["id"], int)


def test_unknown_path_lists_endpoints_and_wrong_method_is_405(editor: Editor) -> None:
    with socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=10) as s:
        buf = bytearray()
        s.sendall(http_get(editor.bridge_port, "/no/such/thing"))
        missing = read_response(s, buf)
        assert missing.status == 404
        body = missing.json()
        _assert_error_shape(body, "not_found")
        paths = {e["path"] for e in body["error"]["endpoints"]}
        assert {"/status", "/debug/stackTrace", "/lsp/completion"} <= paths
        s.sendall(b"DELETE /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        wrong = read_response(s, buf)
        assert wrong.status == 405
        _assert_error_shape(wrong.json(), "method_not_allowed")
        assert "GET" in wrong.headers["allow"]


async def test_bad_json_is_400_naming_the_problem(editor: Editor) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            editor.base_url + "/debug/stackTrace",
            data=b'{"threadId": ',
            headers={"Content-Type": "application/json"},
        ) as r:
            code, body = r.status, await r.json()
    assert code == 400
    _assert_error_shape(body, "invalid_json")
    assert "not valid JSON" in body["error"]["message"]


def _status_over(sock: socket.socket, port: int) -> dict:
    sock.sendall(http_get(port, "/status"))
    return read_response(sock).json()


def _findall(editor: Editor, pattern: str, start: int) -> list[str]:
    import re

    return re.findall(pattern, editor.output[start:])


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _wait_active(editor: Editor, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    active = -1
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", editor.bridge_port), timeout=5) as s,
        ):
            body = _status_over(s, editor.bridge_port)
            # 503 server_full while the addon has not yet seen the others leave
            active = body["clients"]["active"] if body.get("status") == "ok" else -1
            if active == n + 1:  # the asking connection itself
                return
        time.sleep(0.1)
    pytest.fail(f"expected {n} other clients, /status says {active - 1}")


def test_agent_records_unit_tests_in_gdscript(godot_bin: str) -> None:
    # No editor: agent_server.gd on its own, on loopback sockets (tests/gd/test_agent_server.gd).
    cmd = [godot_bin, "--headless", "--path", str(REPO), "--script"]
    cmd += ["res://tests/gd/test_agent_server.gd"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    summary = re.search(r"^gdscript: (\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert summary, output[-3000:]
    assert (int(summary[1]), int(summary[2])) == (29, 0), output[-3000:]
    # The one warning is the refusal over the limit; nothing leaks.
    noise = [ln for ln in output.splitlines() if re.search(r"ERROR|WARNING|leaked", ln)]
    assert len(noise) == 1 and "Max clients reached (1)" in noise[0], noise

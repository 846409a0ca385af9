"""The control lease (sidecar/control/lease.py) and the policy every operation passes by its
effect (sidecar/api/control.py): the lease's rules on a fake clock, a made-up operation of
each effect served through REST and called as MCP calls it, and two agents sharing a real
editor and its launched demo game."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp.test_utils import TestClient, TestServer
from harness import REPO, Editor, call_json, latest_event, ok_json, wait_event
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from sidecar.agents import Agent, AgentRegistry
from sidecar.api.control import ControlPolicy, register
from sidecar.api.mcp.tools import tool_of
from sidecar.control.audit import AuditLog
from sidecar.control.lease import ControlLease, LeaseChange, LeaseHeld
from sidecar.errors import RequestError
from sidecar.web.http import RouteTable, make_app
from sidecar.web.operation import Arguments, Caller, Effect, Operation


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_764_651_600.0

    def __call__(self) -> float:
        return self.now


# --- the lease's rules -----------------------------------------------------------------------


def test_issue_14_lease_take_renew_release_and_expiry() -> None:
    clock = Clock()
    lease = ControlLease(clock)
    changes: list[LeaseChange] = []
    lease.on_change = changes.append
    lease.check("bob", "continue")  # nobody holds it: open to all

    assert lease.take("alice", 30).action == "taken"
    lease.check("alice", "continue")  # the holder may
    with pytest.raises(LeaseHeld) as held:
        lease.check("bob", "continue")
    err = held.value
    assert (err.status, err.code) == (409, "lease_held")
    assert err.details == {
        "holder": "alice",
        "expires_at": "2025-12-02T05:00:30.000Z",
        "expires_in_s": 30.0,
    }
    assert err.headers["Retry-After"] == "30"
    assert "alice" in err.message and "2025-12-02T05:00:30.000Z" in err.message

    clock.now += 20
    renewed = lease.take("alice", 30)  # renewing: 30 s from now, not from the first take
    assert renewed.action == "renewed" and renewed.lease.expires_at == clock.now + 30
    with pytest.raises(LeaseHeld):
        lease.take("bob", 30)  # no take-over without force

    clock.now += 29.9
    with pytest.raises(LeaseHeld):
        lease.check("bob", "continue")
    clock.now += 0.2
    lease.check("bob", "continue")  # it ran out
    assert lease.as_json() is None
    assert [c.action for c in changes] == ["taken", "renewed", "expired"]

    lease.take("bob", 10)
    with pytest.raises(LeaseHeld):
        lease.release("alice")  # only its holder gives it back
    assert lease.release("bob") is not None
    assert lease.release("bob") is None  # nobody holds it
    assert [c.action for c in changes][-2:] == ["taken", "released"]


def test_issue_14_forced_take_over_needs_a_reason() -> None:
    lease = ControlLease(Clock())
    lease.take("alice", 60)
    for reason in (None, "", "   "):
        with pytest.raises(RequestError) as missing:
            lease.take("bob", 60, force=True, reason=reason)
        assert missing.value.code == "missing_field"
        assert missing.value.details == {"field": "reason"}
    assert lease.as_json()["holder"] == "alice"  # type: ignore[index]

    forced = lease.take("bob", 60, force=True, reason="alice's agent hangs")
    assert (forced.action, forced.previous, forced.reason) == (
        "forced",
        "alice",
        "alice's agent hangs",
    )
    assert lease.as_json()["holder"] == "bob"  # type: ignore[index]


@pytest.mark.parametrize("ttl", [0.5, 601.0])
def test_issue_14_lease_ttl_is_bounded(ttl: float) -> None:
    with pytest.raises(RequestError) as err:
        ControlLease(Clock()).take("alice", ttl)
    assert err.value.details == {"field": "ttl"}


def test_issue_14_a_connection_scoped_lease_ends_with_its_connection() -> None:
    lease = ControlLease(Clock())
    lease.take("client-7", 60, connection_scoped=True)
    assert lease.connection_closed("client-8") is None
    dropped = lease.connection_closed("client-7")
    assert dropped is not None and dropped.action == "dropped"
    assert lease.as_json() is None
    # A named agent's lease outlives any one connection (it can renew it from another).
    lease.take("alice", 60)
    assert lease.connection_closed("alice") is None
    assert lease.as_json() is not None


# --- the policy, by effect alone, over REST and MCP ----------------------------------------


class Nothing(Arguments):
    pass


def _operation(effect: Effect) -> Operation[Nothing]:
    # A made-up operation: nothing tells the policy about it but its effect.
    return Operation(
        name=f"made_up_{effect}",
        path=f"/made-up/{effect}",
        summary=f"an operation of effect {effect}",
        arguments=Nothing,
        answer=dict,
        effect=effect,
    )


def _table(tmp_path: Path, clock: Clock) -> tuple[RouteTable, ControlPolicy, list[str]]:
    policy = ControlPolicy(ControlLease(clock), AuditLog(tmp_path / "audit.jsonl", clock=clock))
    routes = RouteTable(policy=policy)
    served: list[str] = []

    for effect in ("read", "change", "control"):

        async def handler(args: Nothing, caller: Caller, effect: str = effect) -> Any:
            served.append(f"{effect} by {caller.identity}")
            return {"done": effect}

        routes.serve(_operation(effect), handler)  # type: ignore[arg-type]
    register(routes, policy)
    return routes, policy, served


async def test_issue_14_policy_by_effect_over_rest(tmp_path: Path) -> None:
    clock = Clock()
    routes, policy, served = _table(tmp_path, clock)
    app = make_app(routes, AgentRegistry())
    async with TestClient(TestServer(app)) as client:

        async def post(path: str, agent: str, body: Any = None) -> tuple[int, Any, Any]:
            resp = await client.post(path, json=body or {}, headers={"X-Agent-Id": agent})
            return resp.status, await resp.json(), resp.headers.get("Retry-After")

        assert (await post("/made-up/control", "bob"))[0] == 200  # no lease: open
        status, taken, _ = await post("/control/lease", "alice", {"ttl": 45})
        assert status == 200 and taken["result"]["action"] == "taken", taken
        status, refused, retry = await post("/made-up/control", "bob")
        assert status == 409 and retry == "45", refused
        error = refused["error"]
        assert error["code"] == "lease_held" and error["holder"] == "alice", error
        assert error["expires_in_s"] == 45.0 and error["expires_at"].endswith("Z")
        for effect in ("read", "change"):  # open to everyone under the lease
            assert (await post(f"/made-up/{effect}", "bob"))[0] == 200
        assert (await post("/made-up/control", "alice"))[0] == 200

        resp = await client.get("/control/lease", headers={"X-Agent-Id": "bob"})
        shown = (await resp.json())["result"]
        assert shown["lease"]["holder"] == "alice" and shown["you"] == "bob"

        status, no_reason, _ = await post("/control/lease", "bob", {"force": True})
        assert status == 400 and no_reason["error"]["field"] == "reason", no_reason
        status, not_holder, _ = await post("/control/release", "bob")
        assert status == 409 and not_holder["error"]["code"] == "lease_held"
        status, forced, _ = await post(
            "/control/lease", "bob", {"force": True, "reason": "alice is stuck", "ttl": 10}
        )
        assert status == 200 and forced["result"]["previous"] == "alice", forced
        assert (await post("/made-up/control", "alice"))[0] == 409
        clock.now += 11
        assert (await post("/made-up/control", "alice"))[0] == 200  # bob's ran out

    assert served == [
        "control by bob",
        "read by bob",
        "change by bob",
        "control by alice",
        "control by alice",
    ]
    # Every change and control request, refused ones too, and the lease's changes; no read.
    page = policy.audit.read(0)
    rows = [
        (r["agent"], r["operation"], r["outcome"].get("code"), (r.get("lease") or {}).get("action"))
        for r in page["records"]
    ]
    assert rows == [
        ("bob", "made_up_control", None, None),
        ("alice", "take_lease", None, "taken"),
        ("bob", "made_up_control", "lease_held", None),
        ("bob", "made_up_change", None, None),
        ("alice", "made_up_control", None, None),
        ("bob", "take_lease", "missing_field", None),
        ("bob", "release_lease", "lease_held", None),
        ("bob", "take_lease", None, "forced"),
        ("alice", "made_up_control", "lease_held", None),
        ("bob", "lease_expired", None, "expired"),
        ("alice", "made_up_control", None, None),
    ]
    forced_record = page["records"][7]
    assert forced_record["args"] == {"force": True, "reason": "alice is stuck", "ttl": 10}
    assert forced_record["lease"]["previous"] == "alice"


async def test_issue_14_policy_holds_for_mcp_calls_too(tmp_path: Path) -> None:
    routes, policy, served = _table(tmp_path, Clock())
    policy.lease.take("alice", 60)
    control = next(b for b in routes.bound() if b.operation.name == "made_up_control")
    result: CallToolResult = await tool_of(control).call({}, Caller("mcp-bob"))
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert '"code":"lease_held"' in text and '"holder":"alice"' in text
    assert served == []
    assert policy.audit.read(0, kind="made_up_control")["records"][0]["agent"] == "mcp-bob"


async def test_issue_14_expiry_is_announced_without_anyone_asking(tmp_path: Path) -> None:
    policy = ControlPolicy(ControlLease(), AuditLog(tmp_path / "audit.jsonl"))
    announced: list[tuple[str, dict[str, Any]]] = []
    policy.announce = lambda event, body: announced.append((event, body))
    policy.lease.take("alice", 1.0)
    deadline = time.monotonic() + 10
    while len(announced) < 2 and time.monotonic() < deadline:
        await _sleep(0.05)
    assert [(e, b["action"], b["holder"]) for e, b in announced] == [
        ("lease", "taken", "alice"),
        ("lease", "expired", "alice"),
    ]
    assert policy.audit.read(0, kind="lease")["records"][-1]["operation"] == "lease_expired"


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def test_issue_14_agent_registry_drops_a_connection_scoped_lease(tmp_path: Path) -> None:
    policy = ControlPolicy(ControlLease(), AuditLog(None))
    policy.lease.take("client-3", 60, connection_scoped=True)
    policy.agent_left(Agent(client_id=3, peer="127.0.0.1:1"))
    assert policy.status() is None
    assert policy.audit.read(0)["records"][-1]["operation"] == "lease_dropped"


# --- two agents, a real editor and its game ----------------------------------------------

A, B = "lease-alice", "lease-bob"


def as_(agent: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return call_json(EDITOR[0], method, path, body, agent)


EDITOR: list[Editor] = []


@pytest.fixture
def shared(editor: Editor) -> Iterator[Editor]:
    """The module's editor with a launched demo game; no lease and no game afterwards."""
    EDITOR[:] = [editor]
    deadline = time.monotonic() + 60
    while ok_json(editor, "GET", "/status")["debug_adapter"]["state"] != "connected":
        assert time.monotonic() < deadline, "the debug adapter never connected"
        time.sleep(0.2)
    try:
        yield editor
    finally:
        for agent in (A, B):
            call_json(editor, "POST", "/control/release", {}, agent)
            call_json(editor, "POST", "/debug/clearBreakpoints", {}, agent)
        call_json(editor, "POST", "/debug/terminate", {}, A)


def wait_tree(agent: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = as_(agent, "GET", "/game/tree")
        if last[0] == 200 and any(
            c["name"] == "Main" for c in last[1]["result"]["root"]["children"]
        ):
            return last[1]["result"]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"no game tree: {last}")


def test_issue_14_two_agents_share_one_game_under_a_lease(shared: Editor) -> None:
    status, taken = as_(A, "POST", "/control/lease", {"ttl": 120})
    assert status == 200 and taken["result"]["holder"] == A, taken
    assert as_(A, "POST", "/debug/launch", {})[0] == 200
    wait_tree(B)  # reading the game is open to B

    # B's control requests are refused, naming A and when the lease ends.
    for path in ("/debug/pause", "/debug/continue", "/debug/launch", "/debug/terminate"):
        status, refused = as_(B, "POST", path, {})
        assert status == 409, (path, refused)
        error = refused["error"]
        assert error["code"] == "lease_held" and error["holder"] == A, refused
        assert 0 < error["expires_in_s"] <= 120 and error["expires_at"].endswith("Z")
        assert A in error["message"]

    # /status shows the holder; B's reads all answer.
    control = ok_json(shared, "GET", "/status", agent=B)["control"]
    assert control["holder"] == A and control["expires_at"] == error["expires_at"]
    assert as_(B, "POST", "/lsp/hover", HOVER)[0] == 200
    assert as_(B, "GET", "/debug/threads")[0] == 200
    assert wait_tree(B)["root"]["name"] == "root"

    # A's breakpoint stops the game (breakpoints are "change": open); B reads the frames.
    since = latest_event(shared, B)
    lines = {"source": {"path": MAIN}, "breakpoints": [{"line": COUNTER_LINE}]}
    assert as_(A, "POST", "/debug/setBreakpoints", lines)[0] == 200
    wait_event(shared, since, {"stopped"}, 30, B)
    frames = _stack(B)
    assert frames[0]["line"] == COUNTER_LINE, frames
    assert as_(B, "POST", "/debug/continue", {})[0] == 409
    assert as_(A, "POST", "/debug/setBreakpoints", {**lines, "breakpoints": []})[0] == 200

    # A releases: B's control works again.
    released = as_(A, "POST", "/control/release", {})
    assert released[0] == 200 and released[1]["result"]["released"] is True
    assert ok_json(shared, "GET", "/status", agent=B)["control"] is None
    assert as_(B, "POST", "/debug/continue", {})[0] == 200

    # The refusals and the lease's changes are in the audit trail, and in the event log.
    records = ok_json(shared, "GET", f"/audit?agent={B}&kind=control&limit=500", agent=A)
    codes = [r["outcome"].get("code") for r in records["records"]]
    assert codes.count("lease_held") >= 5 and codes[-1] is None, codes
    events = ok_json(shared, "GET", "/debug/events?limit=500", agent=A)["events"]
    actions = [(e["body"]["action"], e["body"]["holder"]) for e in events if e["event"] == "lease"]
    assert ("taken", A) in actions and ("released", A) in actions, actions


def test_issue_14_lease_expires_and_forced_take_over(shared: Editor) -> None:
    assert as_(A, "POST", "/control/lease", {"ttl": 2})[0] == 200
    assert as_(B, "POST", "/debug/launch", {})[0] == 409
    deadline = time.monotonic() + 10
    while as_(B, "GET", "/control/lease")[1]["result"]["lease"] is not None:
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.2)
    assert as_(B, "POST", "/debug/launch", {})[0] == 200  # open again
    wait_tree(A)

    assert as_(A, "POST", "/control/lease", {"ttl": 120})[0] == 200
    status, missing = as_(B, "POST", "/control/lease", {"force": True})
    assert status == 400 and missing["error"]["field"] == "reason", missing
    status, forced = as_(B, "POST", "/control/lease", {"force": True, "reason": "A is stuck"})
    assert status == 200 and forced["result"]["previous"] == A, forced
    assert as_(A, "POST", "/debug/terminate", {})[0] == 409  # A lost it
    assert as_(B, "POST", "/debug/terminate", {})[0] == 200

    trail = ok_json(shared, "GET", "/audit?kind=lease&limit=500", agent=A)["records"]
    kinds = [(r["operation"], r["lease"]["action"]) for r in trail]
    assert ("lease_expired", "expired") in kinds, kinds
    forced_record = next(r for r in reversed(trail) if r["lease"]["action"] == "forced")
    assert forced_record["agent"] == B and forced_record["args"]["reason"] == "A is stuck"
    assert forced_record["lease"]["previous"] == A


async def test_issue_14_mcp_control_call_under_another_agents_lease(shared: Editor) -> None:
    assert as_(A, "POST", "/control/lease", {"ttl": 60})[0] == 200
    http = httpx2.AsyncClient(headers={"X-Agent-Id": B}, timeout=60)
    async with Client(streamable_http_client(shared.base_url + "/mcp", http_client=http)) as bob:
        refused = await bob.call_tool("terminate", {})
        assert refused.is_error
        error = json.loads(refused.content[0].text)  # type: ignore[union-attr]
        assert error["http_status"] == 409, error
        assert error["error"]["code"] == "lease_held" and error["error"]["holder"] == A
        read = await bob.call_tool("control_lease", {})  # reading stays open
        assert not read.is_error and read.structured_content["lease"]["holder"] == A
    assert as_(A, "POST", "/control/release", {})[0] == 200


MAIN = "res://demo/main.gd"
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
COUNTER_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "counter += 1" in t)
HOVER = {"textDocument": {"uri": "res://demo/main.gd"}, "position": {"line": 3, "character": 5}}


def _stack(agent: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    last: Any = None
    while time.monotonic() < deadline:
        last = as_(agent, "GET", "/debug/stackTrace")
        if last[0] == 200 and last[1]["result"]["stackFrames"]:
            return last[1]["result"]["stackFrames"]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"no stack: {last}")


def test_issue_14_a_lease_without_agent_id_ends_with_its_connection(shared: Editor) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", shared.bridge_port, timeout=30)
    try:
        conn.request("POST", "/control/lease", body=b'{"ttl": 120}', headers=JSON_HEADERS)
        taken = json.loads(conn.getresponse().read())["result"]
        holder = taken["holder"]
        assert holder.startswith("client-") and taken["connection_scoped"] is True, taken
        assert "ends when it closes" in taken["warning"]
        status, refused = as_(B, "POST", "/debug/terminate", {})
        assert status == 409 and refused["error"]["holder"] == holder, refused
    finally:
        conn.close()
    deadline = time.monotonic() + 15
    while (lease := as_(B, "GET", "/control/lease")[1]["result"]["lease"]) is not None:
        assert time.monotonic() < deadline, f"the lease outlived its connection: {lease}"
        time.sleep(0.2)
    dropped = ok_json(shared, "GET", "/audit?kind=lease_dropped", agent=B)["records"][-1]
    assert dropped["agent"] == holder and dropped["lease"]["action"] == "dropped"


JSON_HEADERS = {"Content-Type": "application/json"}

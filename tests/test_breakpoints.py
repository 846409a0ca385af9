"""Breakpoints Godot does not have (issue 14): conditions, hit counts and logpoints, per
agent, emulated by the bridge (sidecar/godot/dap/breakpoints.py, hits.py, session.py).

The decision logic alone with a fake evaluator first; then against a real headless
editor and the demo game, whose `_process` adds 1 to `counter` every frame (the line
`counter += 1` runs with counter = 0, 1, 2, ... at its successive hits).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_dap import (
    MAIN,
    GodotDap,
    call,
    kinds_since,
    line_of,
    next_stop,
    run,
)
from test_dap import godot as godot  # the editor fixture (re-exported: one for this module)

from sidecar.api import debug as debug_api
from sidecar.errors import RequestError
from sidecar.godot.dap.breakpoints import HitCondition, SourceBreakpoint, log_parts
from sidecar.godot.dap.hits import ExpressionError, decide
from sidecar.godot.dap.session import DapSession

COUNTER = line_of("counter += 1")  # in _process: every frame


@pytest.fixture(scope="module")
def dap(request: pytest.FixtureRequest, godot_bin: str) -> GodotDap:
    """test_dap's editor fixture (godot_bin: marked `godot`, out of `make unit`)."""
    editor: GodotDap = request.getfixturevalue("godot")
    return editor


# -- the grammar and the decision, no Godot ---------------------------------------------


def test_issue_14_hit_condition_grammar() -> None:
    def hits(text: str) -> list[int]:
        condition = HitCondition.parse(text)
        return [n for n in range(1, 13) if condition.met(n)]

    assert hits("5") == hits(">= 5") == hits(" >=5 ") == list(range(5, 13))
    assert hits("== 5") == [5]
    assert hits("> 10") == [11, 12]
    assert hits("< 3") == [1, 2] and hits("<= 2") == [1, 2]
    assert hits("% 5") == hits("% 5 == 0") == [5, 10]
    assert hits("%4==1") == [1, 5, 9]
    for bad in ("", "five", "= 5", ">= -1", "% 0", "% 3 == 3", "5 5", "!= 2"):
        with pytest.raises(ValueError, match=r"hit condition|% N == R"):
            HitCondition.parse(bad)


def test_issue_14_log_message_parts() -> None:
    assert log_parts("n={n}, twice {n * 2}!") == [
        ("n=", False),
        ("n", True),
        (", twice ", False),
        ("n * 2", True),
        ("!", False),
    ]
    assert log_parts("{{literal}} {x}") == [("{literal} ", False), ("x", True)]
    for bad in ("{", "a } b", "{}", "{ {x} }"):
        with pytest.raises(ValueError):
            log_parts(bad)


class FakeFrame:
    """A stopped frame's values; the conditions as the session sends them."""

    def __init__(self, **values: Any) -> None:
        self.values = values
        self.asked: list[str] = []

    async def evaluate(self, expression: str) -> str:
        self.asked.append(expression)
        try:
            value = eval(expression.replace("not not", "not not "), {}, dict(self.values))
        except NameError as err:
            raise ExpressionError(f"Invalid named index '{err.name}'") from err
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


async def test_issue_14_the_decision_names_whose_stop_it_is() -> None:
    frame = FakeFrame(counter=7)
    counts: dict[str, int] = {}

    def count(agent: str) -> int:
        counts[agent] = counts.get(agent, 0) + 1
        return counts[agent]

    here = {
        "alice": [SourceBreakpoint(COUNTER, condition="counter > 100")],
        "bob": [SourceBreakpoint(COUNTER)],
        "carol": [SourceBreakpoint(COUNTER, log_message="c={counter} d={counter * 2}")],
        "dan": [SourceBreakpoint(COUNTER, condition="counter > 100")],
        "eve": [SourceBreakpoint(COUNTER, hit_condition="== 2")],
    }
    verdict = await decide(here, count, frame.evaluate)
    assert verdict.stop and verdict.stopped_for == ["bob"]
    assert [h.log for h in verdict.logs] == ["c=7 d=14"]
    assert frame.asked.count("not not (counter > 100)") == 1  # once for alice and dan
    assert "alice" not in counts  # a false condition is not a hit
    verdict = await decide(here, count, frame.evaluate)
    assert verdict.stopped_for == ["bob", "eve"]
    assert [h.hit_count for h in verdict.hits if h.agent == "eve"] == [2]


async def test_issue_14_a_condition_that_fails_stops_with_the_error_a_logpoint_never() -> None:
    frame = FakeFrame(counter=1)
    here = {
        "alice": [SourceBreakpoint(COUNTER, condition="nope > 1")],
        "bob": [SourceBreakpoint(COUNTER, log_message="{nope}")],
    }
    verdict = await decide(here, lambda agent: 1, frame.evaluate)
    (alice, bob) = verdict.hits
    assert alice.stops and alice.why == "condition_error" and "nope" in (alice.error or "")
    assert not bob.stops and bob.log == "<error: Invalid named index 'nope'>"
    falsy = {"bob": here["bob"], "carol": [SourceBreakpoint(COUNTER, condition="counter - 1")]}
    verdict = await decide(falsy, lambda agent: 1, frame.evaluate)
    assert not verdict.stop and verdict.stopped_for == [] and len(verdict.logs) == 1


def test_issue_14_bad_hit_conditions_and_log_messages_are_400s_naming_the_field() -> None:
    from sidecar.api.debug import SET_BREAKPOINTS

    for bp, field in (
        ({"line": 3, "hitCondition": "every 5"}, "breakpoints[0].hitCondition"),
        ({"line": 3, "hitCondition": "% 0"}, "breakpoints[0].hitCondition"),
        ({"line": 3, "logMessage": "n={n"}, "breakpoints[0].logMessage"),
        ({"line": 3, "condition": 5}, "breakpoints[0].condition"),
    ):
        with pytest.raises(RequestError) as err:
            SET_BREAKPOINTS.parse({"source": {"path": MAIN}, "breakpoints": [bp]})
        assert err.value.status == 400 and err.value.details["field"] == field, bp
    good = {"line": 3, "condition": "a > 1", "hitCondition": "% 10 == 0", "logMessage": "{a}"}
    args = SET_BREAKPOINTS.parse({"source": {"path": MAIN}, "breakpoints": [good]})
    assert args.breakpoints is not None
    assert args.breakpoints[0].spec() == SourceBreakpoint(3, "a > 1", "% 10 == 0", "{a}")
    assert "hitCondition" in debug_api.SourceBreakpoint.model_json_schema()["properties"]


# -- against a real editor and game --------------------------------------------------------


async def set_at_counter(session: DapSession, agent: str, **fields: Any) -> dict[str, Any]:
    body = {"source": {"path": MAIN}, "breakpoints": [{"line": COUNTER, **fields}]}
    (bp,) = (await call(session, "setBreakpoints", agent, body))["breakpoints"]
    assert bp["verified"] is True, bp
    return dict(bp)


async def launch(session: DapSession) -> int:
    since = session.events.latest
    await call(session, "launch", "alice", {"scene": "main"})
    return since


async def counter_now(session: DapSession, agent: str = "alice") -> int:
    answer = await call(session, "evaluate", agent, {"expression": "counter", "frameId": 0})
    return int(answer["result"])


async def outputs_of(session: DapSession, since: int, agent: str, count: int) -> list[str]:
    """The first `count` logpoint messages of `agent` after `since` (bounded wait)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        found = [
            e.body["message"]
            for e in session.events.after(since)[0]
            if e.event == "output" and e.body.get("agent") == agent
        ]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_issue_14_a_false_condition_never_stops_and_shows_nothing(dap: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_at_counter(session, "alice", condition="counter < 0")
        await set_at_counter(session, "carol", logMessage="c={counter}")  # hits, proof
        since = await launch(session)
        assert len(await outputs_of(session, since, "carol", 5)) >= 5
        kinds = kinds_since(session, since)
        assert "stopped" not in kinds and "continued" not in kinds, kinds
        assert session.game.stop is None or session._deciding is session.game.stop

    await run(dap, scenario)


async def test_issue_14_a_true_condition_stops_for_its_agent(dap: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        bp = await set_at_counter(session, "alice", condition="counter >= 12")
        stop = await next_stop(session, await launch(session), timeout=30)
        assert stop.body["reason"] == "breakpoint" and stop.body["line"] == COUNTER
        assert stop.body["hit_by"] == ["alice"] and stop.body["hitBreakpointIds"] == [bp["id"]]
        assert stop.body["hits"] == [{"agent": "alice", "why": "condition", "hitCount": 1}]
        assert await counter_now(session) == 12  # the first hit where it held

    await run(dap, scenario)


async def test_issue_14_a_hit_condition_stops_at_the_nth_hit_exactly(dap: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_at_counter(session, "alice", hitCondition="== 6")
        stop = await next_stop(session, await launch(session), timeout=30)
        assert stop.body["hits"] == [{"agent": "alice", "why": "hitCondition", "hitCount": 6}]
        assert await counter_now(session) == 5  # the 6th hit: counter 0, 1, ..., 5
        (listed,) = session.breakpoints("alice")[MAIN]["alice"]
        assert listed == {"line": COUNTER, "hitCondition": "== 6", "hitCount": 6}
        # `% 4` from here: the counts start again when the agent sets its breakpoints.
        await set_at_counter(session, "alice", hitCondition="% 4")
        since = session.events.latest
        await call(session, "continue", "alice", {})
        await next_stop(session, since, timeout=30)
        assert await counter_now(session) == 5 + 4

    await run(dap, scenario)


async def test_issue_14_a_logpoint_logs_for_its_agent_and_never_stops(dap: GodotDap) -> None:
    async def scenario(session: DapSession) -> None:
        await set_at_counter(
            session, "alice", logMessage="counter={counter}, twice {counter * 2} {{x}}"
        )
        since = await launch(session)
        found = await outputs_of(session, since, "alice", 4)
        assert found[:4] == [f"counter={n}, twice {n * 2} {{x}}" for n in range(4)]
        (first,) = [
            e.body
            for e in session.events.after(since)[0]
            if e.event == "output" and e.body.get("agent") == "alice"
        ][:1]
        assert first["category"] == "console" and first["logpoint"] is True
        assert first["output"] == "[alice] counter=0, twice 0 {x}\n"
        assert first["line"] == COUNTER and first["source"]["path"] == MAIN
        kinds = kinds_since(session, since)
        assert "stopped" not in kinds and "continued" not in kinds, kinds

        # Taken out while the game stops there every frame: the stop it was already on
        # its way to is nobody's either, and the game runs on.
        await call(session, "setBreakpoints", "alice", {"source": {"path": MAIN}})
        since = session.events.latest
        await asyncio.sleep(2.5)
        assert "stopped" not in kinds_since(session, since), kinds_since(session, since)
        assert session.game.stop is None and session.game.running

    await run(dap, scenario)


async def test_issue_14_two_agents_on_one_line_stop_for_the_one_who_wants_it(
    dap: GodotDap,
) -> None:
    async def scenario(session: DapSession) -> None:
        await set_at_counter(session, "alice", condition="counter < 0")
        await set_at_counter(session, "carol", logMessage="at {counter}")
        await set_at_counter(session, "bob")
        since = await launch(session)
        stop = await next_stop(session, since, timeout=30)
        assert stop.body["hit_by"] == ["bob"]
        assert stop.body["hits"] == [{"agent": "bob", "why": "breakpoint", "hitCount": 1}]
        assert await counter_now(session, "bob") == 0
        # Carol's logpoint logged that hit all the same, before the stop was announced.
        (log,) = [e for e in session.events.after(since)[0] if e.body.get("agent") == "carol"]
        assert log.body["message"] == "at 0" and log.seq < stop.seq

        # Bob's gone: alice's false condition lets the game run on, unseen.
        await set_at_counter(session, "bob", line=COUNTER + 1)  # on `if counter % 60`
        since = session.events.latest
        await call(session, "continue", "bob", {})
        stop = await next_stop(session, since, timeout=30)
        assert stop.body["line"] == COUNTER + 1 and stop.body["hit_by"] == ["bob"]
        # A step that lands on alice's line is bob's step, not a breakpoint hit.
        since = session.events.latest
        await call(session, "next", "bob", {})
        stop = await next_stop(session, since, timeout=30)
        assert stop.body["reason"] == "step", stop.body
        await call(session, "setBreakpoints", "bob", {"source": {"path": MAIN}})
        since = session.events.latest
        await call(session, "continue", "bob", {})
        await outputs_of(session, since, "carol", 3)
        assert "stopped" not in kinds_since(session, since)

    await run(dap, scenario)


async def test_issue_14_a_condition_that_fails_to_evaluate_stops_and_says_why(
    dap: GodotDap,
) -> None:
    async def scenario(session: DapSession) -> None:
        await set_at_counter(session, "alice", condition="no_such_thing > 1")
        stop = await next_stop(session, await launch(session), timeout=30)
        (hit,) = stop.body["hits"]
        assert hit["agent"] == "alice" and hit["why"] == "condition_error"
        assert "no_such_thing" in hit["error"], hit

    await run(dap, scenario)


async def test_issue_14_a_pause_among_silent_hits_is_one_stop(dap: GodotDap) -> None:
    """A pause while the bridge decides or lets the game run on from a hit nobody wants
    is not lost: one `stopped` (paused), and the game stays stopped until continued."""

    async def scenario(session: DapSession) -> None:
        await set_at_counter(session, "alice", logMessage="{counter}")
        since = await launch(session)
        assert len(await outputs_of(session, since, "alice", 3)) >= 3
        since = session.events.latest
        await call(session, "pause", "bob", {})
        stop = await next_stop(session, since, timeout=30)
        assert stop.body["reason"] == "paused", kinds_since(session, since)
        # The hit the pause landed on may still log; nothing after it.
        await asyncio.sleep(0.5)
        logged = len(await outputs_of(session, since, "alice", 0))
        await asyncio.sleep(1.5)
        events = [
            (e.event, e.body.get("reason") or e.body.get("message"))
            for e in session.events.after(since)[0]
        ]
        assert len(await outputs_of(session, since, "alice", 0)) == logged, events
        assert logged <= 1 and kinds_since(session, since).count("stopped") == 1, events
        await call(session, "continue", "bob", {})
        assert len(await outputs_of(session, since, "alice", logged + 3)) >= logged + 3

    await run(dap, scenario)

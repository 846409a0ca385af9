"""Fair turns and shared identical reads (sidecar/godot/lsp/sharing.py), against a fake server.

The fake stands for Godot's language server: it records what reached it and answers when
the test says so. The real editor's side is tests/test_lsp_fairness.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from sidecar.errors import PeerTimeout
from sidecar.godot.lsp.sharing import SharedRequests
from sidecar.godot.scheduler import FairScheduler

HOVER = "textDocument/hover"


class FakeServer:
    """Records every request that reaches it; answers each when `answer` is called."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self._open: list[asyncio.Future[dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def send(self, method: str, params: Any) -> dict[str, Any]:
        self.received.append((method, params))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._open.append(future)
        self.arrived.set()
        return await future

    def answer_all(self, error: Exception | None = None) -> None:
        for n, future in enumerate(self._open):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result({"jsonrpc": "2.0", "id": n, "result": {"n": n}})
        self._open.clear()

    def params_received(self) -> list[Any]:
        return [p for _, p in self.received]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def sharing(window: int = 4, per_agent: int | None = None) -> tuple[SharedRequests, FakeServer]:
    server = FakeServer()
    return SharedRequests(FairScheduler(window, per_agent), server.send), server


async def test_issue_14_identical_reads_reach_the_server_once() -> None:
    turns, server = sharing()
    asks = [asyncio.create_task(turns.ask(f"agent-{i}", HOVER, {"p": 1}, "k")) for i in range(12)]
    await settle()
    server.answer_all()
    answers = await asyncio.gather(*asks)
    assert len(server.received) == 1
    assert all(a == answers[0] for a in answers)
    assert (turns.traffic.sent, turns.traffic.shared) == (1, 11)
    assert turns.flights == 0  # answered: the next identical read is a new request


async def test_issue_14_other_keys_and_unkeyed_requests_are_their_own() -> None:
    turns, server = sharing()
    asks = [
        asyncio.create_task(turns.ask("a", HOVER, {"p": 1}, "k1")),
        asyncio.create_task(turns.ask("b", HOVER, {"p": 1}, "k2")),  # another document state
        asyncio.create_task(turns.ask("c", HOVER, {"p": 1})),  # not shareable
        asyncio.create_task(turns.ask("d", HOVER, {"p": 1})),
    ]
    await settle()
    server.answer_all()
    await asyncio.gather(*asks)
    assert len(server.received) == 4
    assert turns.traffic.shared == 0


async def test_issue_14_a_read_after_the_answer_is_asked_again() -> None:
    turns, server = sharing()
    first = asyncio.create_task(turns.ask("a", HOVER, {}, "k"))
    await settle()
    server.answer_all()
    await first
    second = asyncio.create_task(turns.ask("b", HOVER, {}, "k"))
    await settle()
    server.answer_all()
    await second
    assert len(server.received) == 2


async def test_issue_14_a_waiter_giving_up_leaves_the_others_their_answer() -> None:
    turns, server = sharing()
    asks = {a: asyncio.create_task(turns.ask(a, HOVER, {}, "k")) for a in ("a", "b", "c")}
    await settle()
    assert len(server.received) == 1
    asks["a"].cancel()  # the agent that asked first goes away
    with contextlib.suppress(asyncio.CancelledError):
        await asks["a"]
    await settle()
    server.answer_all()
    assert (await asks["b"])["result"] == (await asks["c"])["result"]
    assert len(server.received) == 1


async def test_issue_14_a_timeout_is_every_waiters_answer_once() -> None:
    turns, server = sharing()
    asks = [asyncio.create_task(turns.ask(a, HOVER, {}, "k")) for a in ("a", "b")]
    await settle()
    server.answer_all(PeerTimeout("language server did not answer 'textDocument/hover'"))
    for ask in asks:
        with pytest.raises(PeerTimeout):
            await ask
    assert len(server.received) == 1


async def test_issue_14_a_read_nobody_waits_for_any_more_is_not_sent() -> None:
    turns, server = sharing(window=1)
    busy = asyncio.create_task(turns.ask("busy", HOVER, {"p": 0}))
    await settle()
    queued = [asyncio.create_task(turns.ask(a, HOVER, {"p": 1}, "k")) for a in ("a", "b")]
    await settle()
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    server.answer_all()
    await busy
    await settle()
    assert server.params_received() == [{"p": 0}]
    assert turns.flights == 0
    assert turns.scheduler.in_flight == 0 and turns.scheduler.waiting == 0


async def test_issue_14_a_burst_does_not_starve_another_agent() -> None:
    turns, server = sharing(window=2, per_agent=1)
    first = asyncio.create_task(turns.ask("quiet", HOVER, {"q": 0}))
    await settle()
    server.answer_all()
    await first
    burst = [asyncio.create_task(turns.ask("burst", HOVER, {"n": i})) for i in range(100)]
    await settle()
    quiet = asyncio.create_task(turns.ask("quiet", HOVER, {"q": 1}))
    await settle()
    # The quiet agent asked a moment ago, so the burst holds one slot only; the other was
    # free for the quiet agent's next request: sent at once.
    assert server.params_received() == [{"q": 0}, {"n": 0}, {"q": 1}]
    server.answer_all()
    await quiet
    for task in burst:
        task.cancel()
    await asyncio.gather(*burst, return_exceptions=True)


async def test_issue_14_joining_a_queued_read_goes_in_the_joiners_turn() -> None:
    turns, server = sharing(window=1)
    burst = [asyncio.create_task(turns.ask("burst", HOVER, {"n": i}, i)) for i in range(50)]
    await settle()
    # The quiet agent asks what the burst has far back in its queue.
    quiet = asyncio.create_task(turns.ask("quiet", HOVER, {"n": 40}, 40))
    await settle()
    for _ in range(2):  # one more turn of the burst's (its round began first), then quiet's
        server.answer_all()
        await settle()
    assert server.params_received() == [{"n": 0}, {"n": 1}, {"n": 40}]
    server.answer_all()
    assert (await quiet) == (await burst[40])
    for _ in range(60):
        server.answer_all()
        await settle()
    await asyncio.gather(*burst)
    # The burst's own turn for n=40 was given back unused: 50 requests in all.
    assert len(server.received) == 50
    assert turns.scheduler.in_flight == 0 and turns.scheduler.waiting == 0

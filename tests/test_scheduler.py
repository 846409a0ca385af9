"""The fair scheduler (sidecar/godot/scheduler.py) of the DAP and LSP sessions."""

from __future__ import annotations

import asyncio
import contextlib

from sidecar.godot.scheduler import FairScheduler


async def test_fair_scheduler_takes_agents_in_turn() -> None:
    sched = FairScheduler(window=1)
    order: list[str] = []
    gate = asyncio.Event()

    async def work(agent: str, hold: bool = False) -> None:
        async with sched.slot(agent):
            order.append(agent)
            if hold:
                await gate.wait()

    first = asyncio.create_task(work("busy", hold=True))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(work("busy")) for _ in range(4)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(work("quiet")), asyncio.create_task(work("other"))]
    await asyncio.sleep(0)
    assert sched.waiting == 6
    gate.set()
    await asyncio.gather(first, *tasks)
    # One turn each per round, not the busy agent's whole backlog first.
    assert order == ["busy", "busy", "quiet", "other", "busy", "busy", "busy"]


async def test_fair_scheduler_survives_cancelled_waiters() -> None:
    sched = FairScheduler(window=1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with sched.slot("a"):
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    gate.set()
    await holder
    async with sched.slot("b"):
        pass  # the slot came back: nothing leaked


async def test_issue_14_per_agent_cap_keeps_room_for_another_agent() -> None:
    sched = FairScheduler(window=4, per_agent=2)
    gate = asyncio.Event()
    running: list[str] = []

    async def work(agent: str, hold: bool = True) -> None:
        async with sched.slot(agent):
            running.append(agent)
            if hold:
                await gate.wait()

    await work("quiet", hold=False)  # the quiet agent asked a moment ago: it is active
    burst = [asyncio.create_task(work("burst")) for _ in range(10)]
    await asyncio.sleep(0)
    assert running == ["quiet", "burst", "burst"]  # its share, not the whole window
    quiet = asyncio.create_task(work("quiet"))
    await asyncio.sleep(0)
    assert running[-1] == "quiet"  # went at once, no turn to wait for
    assert (sched.in_flight, sched.waiting) == (3, 8)
    gate.set()
    await asyncio.gather(quiet, *burst)
    assert (sched.in_flight, sched.waiting) == (0, 0)


async def test_issue_14_an_agent_alone_has_the_whole_window() -> None:
    sched = FairScheduler(window=4, per_agent=1, recent=0.05)
    gate = asyncio.Event()
    running: list[str] = []

    async def work(agent: str, hold: bool = True) -> None:
        async with sched.slot(agent):
            running.append(agent)
            if hold:
                await gate.wait()

    solo = [asyncio.create_task(work("solo")) for _ in range(6)]
    await asyncio.sleep(0)
    assert len(running) == 4  # nobody else active: no cap
    late = asyncio.create_task(work("late"))
    await asyncio.sleep(0)
    assert sched.waiting == 3  # the late agent waits for the next free slot...
    gate.set()
    await asyncio.gather(late, *solo)
    # ... and took it before the solo agent's next ones (one turn each), which then went
    # one at a time while the late agent was active.
    assert running.index("late") == 4, running
    await asyncio.sleep(0.1)  # the late agent is no longer active
    gate.clear()
    again = [asyncio.create_task(work("solo")) for _ in range(4)]
    await asyncio.sleep(0)
    assert sched.in_flight == 4
    gate.set()
    await asyncio.gather(*again)

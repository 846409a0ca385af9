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

    async def work(agent: str) -> None:
        async with sched.slot(agent):
            running.append(agent)
            await gate.wait()

    burst = [asyncio.create_task(work("burst")) for _ in range(10)]
    await asyncio.sleep(0)
    assert running == ["burst", "burst"]  # its share, not the whole window
    quiet = asyncio.create_task(work("quiet"))
    await asyncio.sleep(0)
    assert running[-1] == "quiet"  # went at once, no turn to wait for
    assert (sched.in_flight, sched.waiting) == (3, 8)
    gate.set()
    await asyncio.gather(quiet, *burst)
    assert (sched.in_flight, sched.waiting) == (0, 0)

"""The DAP session's event log (sidecar/godot/dap/events.py): numbered, bounded, long-polled."""

from __future__ import annotations

import asyncio
import time

from sidecar.godot.dap.events import EventLog


async def test_event_log_numbers_bounds_and_reports_dropped_events() -> None:
    log = EventLog(capacity=3)
    for i in range(5):
        log.append("output", {"output": f"line {i}"})
    page = await log.read(since=0, wait=0, limit=10)
    assert [e["seq"] for e in page["events"]] == [3, 4, 5]
    assert page["dropped"] == 2
    assert page["next"] == 5 and page["latest"] == 5
    page = await log.read(since=3, wait=0, limit=1)
    assert [e["seq"] for e in page["events"]] == [4]
    assert page["dropped"] == 0 and page["next"] == 4
    # A number from before a restart is clamped rather than waiting forever.
    page = await log.read(since=99, wait=0, limit=10)
    assert page["events"] == [] and page["next"] == 5


async def test_event_log_long_poll_wakes_every_reader_on_append() -> None:
    log = EventLog()
    log.append("process")
    readers = [asyncio.create_task(log.read(since=1, wait=5, limit=10)) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert not any(r.done() for r in readers)
    start = time.monotonic()
    log.append("stopped", {"reason": "breakpoint"})
    pages = await asyncio.gather(*readers)
    assert time.monotonic() - start < 0.5
    for page in pages:
        assert [(e["seq"], e["event"]) for e in page["events"]] == [(2, "stopped")]
    start = time.monotonic()
    page = await log.read(since=2, wait=0.3, limit=10)
    assert page["events"] == [] and 0.25 < time.monotonic() - start < 1.0

"""The debug event log: numbered events, the newest of them kept, read at each agent's pace.

Every agent reads the same log with long-polls (`since`, `wait`); a reader that fell
behind is told how many events it missed instead of being handed a silently cut list.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from dataclasses import dataclass
from typing import Any

Args = dict[str, Any]
MAX_WAIT = 30.0  # longest long-poll, in seconds


@dataclass(frozen=True)
class DebugEvent:
    seq: int
    time: float
    event: str
    body: Args

    def as_json(self) -> Args:
        return {
            "seq": self.seq,
            "time": round(self.time, 3),
            "event": self.event,
            "body": self.body,
        }


class EventLog:
    """Numbered debug events, the newest `capacity` of them, with long-poll reads."""

    def __init__(self, capacity: int = 2000) -> None:
        self._events: collections.deque[DebugEvent] = collections.deque(maxlen=capacity)
        self._latest = 0
        self._changed = asyncio.Event()

    @property
    def latest(self) -> int:
        return self._latest

    def append(self, event: str, body: Args | None = None) -> DebugEvent:
        self._latest += 1
        item = DebugEvent(self._latest, time.time(), event, body or {})
        self._events.append(item)
        # Wake every waiter, then start a fresh generation for the next append.
        self._changed.set()
        self._changed = asyncio.Event()
        return item

    def after(self, since: int, limit: int | None = None) -> tuple[list[DebugEvent], int]:
        """Events numbered above `since`, and how many of those fell out of the log."""
        first = self._events[0].seq if self._events else self._latest + 1
        dropped = max(0, first - 1 - since)
        out = [e for e in self._events if e.seq > since]
        return (out[:limit] if limit is not None else out), dropped

    async def wait(self, since: int, timeout: float) -> None:
        """Return once there is an event after `since`, or after `timeout` seconds."""
        if self._latest > since or timeout <= 0:
            return
        # Every append sets the current event, and any append is an event after `since`.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def next_of(
        self, since: int, kinds: frozenset[str] | None, timeout: float
    ) -> DebugEvent | None:
        """The first event after `since` whose kind is in `kinds` (None: any), waiting up
        to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            events, _ = self.after(since)
            for e in events:
                if kinds is None or e.event in kinds:
                    return e
            if events:
                since = events[-1].seq
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            await self.wait(since, remaining)

    async def read(self, since: int, wait: float, limit: int) -> Args:
        since = min(max(since, 0), self._latest)  # a number from before a restart
        await self.wait(since, min(max(wait, 0.0), MAX_WAIT))
        events, dropped = self.after(since, limit)
        return {
            "events": [e.as_json() for e in events],
            "next": events[-1].seq if events else since,
            "latest": self._latest,
            "dropped": dropped,
        }

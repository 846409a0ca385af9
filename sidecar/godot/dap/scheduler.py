"""Fair turns at Godot's one DAP connection for many agents."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator


class FairScheduler:
    """At most `window` requests in flight at Godot, granted round-robin per agent.

    Godot works through one connection's requests one at a time, so what we can do for
    fairness is decide the order: an agent with many requests queued gets one turn per
    round, not a place in front of everyone else.
    """

    def __init__(self, window: int = 4) -> None:
        self.window = window
        self._busy = 0
        self._queues: dict[str, collections.deque[asyncio.Future[None]]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, agent: str) -> AsyncIterator[None]:
        await self._acquire(agent)
        try:
            yield
        finally:
            self._release()

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def _acquire(self, agent: str) -> None:
        if self._busy < self.window and not self._queues:
            self._busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(agent, collections.deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            else:
                self._forget(agent, future)
            raise

    def _forget(self, agent: str, future: asyncio.Future[None]) -> None:
        queue = self._queues.get(agent)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(future)
        if not queue:
            del self._queues[agent]

    def _release(self) -> None:
        self._busy -= 1
        while self._busy < self.window and self._queues:
            agent = next(iter(self._queues))
            queue = self._queues.pop(agent)
            future = queue.popleft()
            if queue:
                self._queues[agent] = queue  # back of the round
            if future.done():
                continue
            self._busy += 1
            future.set_result(None)

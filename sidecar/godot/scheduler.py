"""Fair turns at one of Godot's connections (DAP or LSP) for many agents."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator

# How long an agent counts as active after its last request (see FairScheduler.per_agent).
RECENT = 1.0


class FairScheduler:
    """At most `window` requests in flight at Godot, granted round-robin per agent.

    Godot works through one connection's requests in order, so what we can do for
    fairness is decide the order: an agent with many requests queued gets one turn per
    round, not a place in front of everyone else.

    `per_agent` (default: the whole window) caps one agent's requests in flight while another
    agent is active (has a request in flight or queued, or asked within `recent` seconds).
    Below the window it keeps room free for another agent's request to go at once: Godot's
    language server answers everything that arrived before an editor loop iteration in that
    iteration, so a request that has to wait for a slot waits a whole iteration more. An
    agent alone has the whole window.
    """

    def __init__(
        self, window: int = 4, per_agent: int | None = None, recent: float = RECENT
    ) -> None:
        self.window = max(1, window)
        self.per_agent = max(1, min(per_agent or self.window, self.window))
        self.recent = recent
        self._busy = 0
        self._held: dict[str, int] = {}  # agent -> its requests in flight
        self._queues: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._seen: dict[str, float] = {}  # agent -> when it last asked for a slot

    @contextlib.asynccontextmanager
    async def slot(self, agent: str) -> AsyncIterator[None]:
        await self._acquire(agent)
        try:
            yield
        finally:
            self._release(agent)

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    @property
    def in_flight(self) -> int:
        return self._busy

    async def _acquire(self, agent: str) -> None:
        if self.per_agent < self.window:
            self._seen[agent] = time.monotonic()
        # Whoever is queued and may go was granted already (_grant runs on every release),
        # so a free slot here belongs to this agent unless it has a queue of its own.
        if (
            self._busy < self.window
            and agent not in self._queues
            and self._may_go(agent, self._active())
        ):
            self._take(agent)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(agent, collections.deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(agent)  # granted just as we were cancelled: pass it on
            else:
                self._forget(agent, future)
            raise

    def _active(self) -> set[str]:
        """The agents that have requests in flight or queued, or asked a moment ago."""
        if self.per_agent >= self.window:
            return set()  # no cap to apply: nothing to know
        horizon = time.monotonic() - self.recent
        for agent in [a for a, t in self._seen.items() if t < horizon]:
            del self._seen[agent]
        return set(self._seen) | set(self._held) | set(self._queues)

    def _may_go(self, agent: str, active: set[str]) -> bool:
        alone = not active or active == {agent}
        return self._held.get(agent, 0) < (self.window if alone else self.per_agent)

    def _take(self, agent: str) -> None:
        self._busy += 1
        self._held[agent] = self._held.get(agent, 0) + 1

    def _forget(self, agent: str, future: asyncio.Future[None]) -> None:
        queue = self._queues.get(agent)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(future)
        if not queue:
            del self._queues[agent]

    def _release(self, agent: str) -> None:
        self._busy -= 1
        held = self._held.get(agent, 0) - 1
        if held > 0:
            self._held[agent] = held
        else:
            self._held.pop(agent, None)
        self._grant()

    def _grant(self) -> None:
        active = self._active()
        while self._busy < self.window:
            agent = next((a for a in self._queues if self._may_go(a, active)), None)
            if agent is None:
                return
            queue = self._queues.pop(agent)
            future = queue.popleft()
            if queue:
                self._queues[agent] = queue  # back of the round
            if future.done():
                continue
            self._take(agent)
            future.set_result(None)

"""Agents' requests to the language server: fair turns, and one request for identical reads.

Every request goes to Godot in its agent's turn (the ``FairScheduler``): one agent's burst
queues behind its own requests, not in front of everyone else's. A pure read the caller
gives a key for (method, params and the state of the documents it reads) is a *flight*:
while one is on its way, an identical read joins it instead of being sent again, and every
waiter gets the one answer.

A joining agent also queues for a turn of its own, so joining a flight that another,
busier agent has far back in its queue costs no fairness: the flight goes at whichever of
its agents' turns comes first, and the other turns are given back unused. A waiter that
gives up (its HTTP request cancelled) leaves the flight; the request is withdrawn only
while nobody is left waiting and it has not been sent yet.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import TransportError
from sidecar.godot.scheduler import FairScheduler

# Sends one request to Godot and returns its raw answer message.
Send = Callable[[str, Any], Awaitable[dict[str, Any]]]


@dataclass
class _Flight:
    method: str
    params: Any
    key: Hashable | None
    answer: asyncio.Future[dict[str, Any]]
    # agent -> its task queued for a turn (until one of them sends the request)
    contenders: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    waiters: collections.Counter[str] = field(default_factory=collections.Counter)
    sent: bool = False


@dataclass
class Traffic:
    """What `/status` shows of the language server's requests."""

    sent: int = 0  # requests that went to Godot
    shared: int = 0  # answers taken from a request another waiter had already asked


class SharedRequests:
    """Requests to one language server connection, taken in fair turns, identical reads once."""

    def __init__(self, scheduler: FairScheduler, send: Send) -> None:
        self.scheduler = scheduler
        self._send = send
        self._flights: dict[Hashable, _Flight] = {}
        self.traffic = Traffic()

    @property
    def flights(self) -> int:
        """Shareable requests waiting for a turn or for Godot's answer."""
        return len(self._flights)

    async def ask(
        self, agent: str, method: str, params: Any, key: Hashable | None = None
    ) -> dict[str, Any]:
        """Godot's raw answer to `method`; `key` None: never shared (always its own request)."""
        flight = self._flights.get(key) if key is not None else None
        if flight is None:
            loop = asyncio.get_running_loop()
            flight = _Flight(method, params, key, loop.create_future())
            # Nobody may be left to read a failure (every waiter gave up): not an error.
            flight.answer.add_done_callback(_consume)
            if key is not None:
                self._flights[key] = flight
        else:
            self.traffic.shared += 1
        self._join(flight, agent)
        try:
            # Shielded: one waiter giving up must not cancel the answer the others wait for.
            return await asyncio.shield(flight.answer)
        finally:
            self._leave(flight, agent)

    def _join(self, flight: _Flight, agent: str) -> None:
        flight.waiters[agent] += 1
        if not flight.sent and agent not in flight.contenders:
            flight.contenders[agent] = asyncio.create_task(
                self._contend(flight, agent), name=f"lsp:{flight.method}:{agent}"
            )

    def _leave(self, flight: _Flight, agent: str) -> None:
        flight.waiters[agent] -= 1
        if flight.waiters[agent] > 0:
            return
        del flight.waiters[agent]
        if flight.sent:
            return  # on its way: its answer still serves the others (and costs nothing more)
        task = flight.contenders.pop(agent, None)
        if task is not None:
            task.cancel()  # the agent no longer wants it: its turn goes to someone else
        if not flight.waiters:
            self._drop(flight)

    def _drop(self, flight: _Flight) -> None:
        if flight.key is not None and self._flights.get(flight.key) is flight:
            del self._flights[flight.key]

    async def _contend(self, flight: _Flight, agent: str) -> None:
        async with self.scheduler.slot(agent):
            if flight.sent:
                return  # another agent's turn came first (its cancel raced our grant)
            flight.sent = True
            for other, task in flight.contenders.items():
                if other != agent:
                    task.cancel()  # their turns are not needed: given back
            flight.contenders.clear()
            self.traffic.sent += 1
            try:
                answer = await self._send(flight.method, flight.params)
            except asyncio.CancelledError:
                _settle(flight.answer, TransportError("the language server request was dropped"))
                raise
            except Exception as exc:
                _settle(flight.answer, exc)
            else:
                if not flight.answer.done():
                    flight.answer.set_result(answer)
            finally:
                # Answered: the next identical read is a new request (the documents may
                # have changed since).
                self._drop(flight)


def _settle(answer: asyncio.Future[dict[str, Any]], exc: BaseException) -> None:
    if not answer.done():
        answer.set_exception(exc)


def _consume(answer: asyncio.Future[dict[str, Any]]) -> None:
    if not answer.cancelled():
        with contextlib.suppress(BaseException):
            answer.exception()

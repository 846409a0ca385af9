"""The control lease: one agent at a time may hold the game's controls, for a while.

Nobody holds it at first, and then control is open to every agent (a single agent needs no
ceremony). An agent that takes it holds it for `ttl` seconds, renews it by taking it again,
and gives it back by releasing it or letting it run out. While it is held, every other
agent's control request is refused with 409 `lease_held` naming the holder and when the
lease ends; reading and changing shared state stay open to all. Another agent can take it
over only by force, with a reason (audited).

A lease taken by an agent known only by its connection (no `X-Agent-Id`) ends with that
connection: nobody else could ever renew or release it under that name.

Expiry is read off the clock each time the lease is looked at; `on_change` hears of every
change (taken, renewed, forced, released, expired, dropped), expiry included once noticed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from sidecar.errors import RequestError, SidecarError

MIN_TTL = 1.0
MAX_TTL = 600.0
DEFAULT_TTL = 60.0

Action = Literal["taken", "renewed", "forced", "released", "expired", "dropped"]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Lease:
    holder: str
    taken_at: float  # seconds since the epoch
    expires_at: float
    # Held by a connection without X-Agent-Id: it ends when that connection closes.
    connection_scoped: bool = False
    reason: str | None = None  # a forced take-over's

    def left(self, now: float) -> float:
        return max(self.expires_at - now, 0.0)

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "taken_at": iso(self.taken_at),
            "expires_at": iso(self.expires_at),
            "expires_in_s": round(self.left(now), 3),
            "connection_scoped": self.connection_scoped,
        }


@dataclass(frozen=True)
class LeaseChange:
    """What happened to the lease, for the event log and the audit trail."""

    action: Action
    lease: Lease  # the lease as it is now (released, expired, dropped: as it was)
    by: str  # the agent that did it (the holder itself for expired and dropped)
    previous: str | None = None  # a forced take-over's former holder
    reason: str | None = None

    def as_json(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "by": self.by, **self.lease.as_json(now)}
        if self.action in ("released", "expired", "dropped"):
            out["expires_in_s"] = 0.0
        if self.previous is not None:
            out["previous"] = self.previous
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def iso(t: float) -> str:
    """Seconds since the epoch as UTC ISO 8601 with milliseconds (`2026-12-02T05:01:02.345Z`)."""
    whole = int(t)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1000):03d}Z"
    )


class LeaseHeld(SidecarError):
    """409: the controls are leased to another agent."""

    status = 409
    code = "lease_held"

    def __init__(self, lease: Lease, now: float, message: str) -> None:
        left = lease.left(now)
        super().__init__(
            message,
            headers={"Retry-After": str(max(math.ceil(left), 1))},
            details={
                "holder": lease.holder,
                "expires_at": iso(lease.expires_at),
                "expires_in_s": round(left, 3),
            },
        )


class ControlLease:
    """The one control lease of a sidecar."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lease: Lease | None = None
        self.on_change: Callable[[LeaseChange], None] | None = None

    def current(self) -> Lease | None:
        """The lease in force, or None (one that ran out is dropped, and said so, here)."""
        lease = self._lease
        if lease is not None and lease.left(self._clock()) <= 0:
            self._lease = None
            self._tell(LeaseChange("expired", lease, lease.holder))
            return None
        return lease

    def check(self, agent: str, what: str) -> None:
        """Nothing when `agent` may use the controls; else 409 `lease_held`."""
        lease = self.current()
        if lease is None or lease.holder == agent:
            return
        now = self._clock()
        raise LeaseHeld(
            lease,
            now,
            f"{what} refused: the controls are leased to agent '{lease.holder}' until "
            f"{iso(lease.expires_at)} ({lease.left(now):.0f} s from now). Reading stays open "
            "to everyone; retry after the lease ends (Retry-After), ask its holder to release "
            'it, or take it over with POST /control/lease {"force": true, "reason": "..."} '
            "(audited)",
        )

    def take(
        self,
        agent: str,
        ttl: float = DEFAULT_TTL,
        *,
        force: bool = False,
        reason: str | None = None,
        connection_scoped: bool = False,
    ) -> LeaseChange:
        """Take the lease for `ttl` seconds, or renew it (the holder). Held by another: 409,
        unless forced, which needs a reason."""
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise RequestError(
                f"field 'ttl': must be between {MIN_TTL:g} and {MAX_TTL:g} seconds",
                code="invalid_field",
                details={"field": "ttl"},
            )
        reason = (reason or "").strip() or None
        if force and reason is None:
            raise RequestError(
                "missing field 'reason': a forced take-over must say why (it is audited and "
                "announced to every agent)",
                code="missing_field",
                details={"field": "reason"},
            )
        held = self.current()
        previous = held.holder if held is not None and held.holder != agent else None
        if previous is not None and not force:
            self.check(agent, "taking the lease")
        now = self._clock()
        if held is not None and previous is None:
            lease = replace(held, expires_at=now + ttl, reason=reason or held.reason)
            change = LeaseChange("renewed", lease, agent, reason=reason)
        else:
            lease = Lease(agent, now, now + ttl, connection_scoped, reason)
            action: Action = "forced" if previous is not None else "taken"
            change = LeaseChange(action, lease, agent, previous=previous, reason=reason)
        self._lease = lease
        self._tell(change)
        return change

    def release(self, agent: str) -> LeaseChange | None:
        """Give the lease back (None: nobody held it). Held by another: 409."""
        lease = self.current()
        if lease is None:
            return None
        self.check(agent, "releasing the lease")
        self._lease = None
        change = LeaseChange("released", lease, agent)
        self._tell(change)
        return change

    def connection_closed(self, identity: str) -> LeaseChange | None:
        """A connection without X-Agent-Id closed: the lease it took (as `identity`) ends."""
        lease = self._lease
        if lease is None or not lease.connection_scoped or lease.holder != identity:
            return None
        self._lease = None
        change = LeaseChange("dropped", lease, identity)
        self._tell(change)
        return change

    def as_json(self) -> dict[str, Any] | None:
        lease = self.current()
        return None if lease is None else lease.as_json(self._clock())

    def now(self) -> float:
        return self._clock()

    def _tell(self, change: LeaseChange) -> None:
        if self.on_change is not None:
            self.on_change(change)

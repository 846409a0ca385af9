"""The control lease and the audit trail, as operations, and the policy every call passes.

`ControlPolicy` is given to the route table by the composition root (app.py): every call of
every operation, REST or MCP, goes through it, and what it does hangs on nothing but the
operation's declared `effect` (web/operation.py):

- "read": passed through, untouched and unrecorded;
- "change": recorded in the audit trail (arguments, outcome, the answer's plain fields);
- "control": refused with 409 `lease_held` to everyone but the holder while a control
  lease is held, and recorded (refusals too).

Operations: `GET /control/lease` (who holds it), `POST /control/lease` (take, renew,
force), `POST /control/release`, `GET /audit` (the records, with a cursor and filters).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ConfigDict, Field, field_validator
from pydantic_core import to_jsonable_python

from sidecar.agents import Agent
from sidecar.control.audit import MAX_WAIT, AuditLog, result_summary
from sidecar.control.lease import DEFAULT_TTL, MAX_TTL, MIN_TTL, ControlLease, LeaseChange
from sidecar.errors import SidecarError
from sidecar.web.http import RouteTable
from sidecar.web.operation import (
    Answer,
    Arguments,
    Caller,
    Effect,
    NoArguments,
    Operation,
)

# The codes an operation can answer because of its effect, beyond its own (OpenAPI lists them).
EFFECT_ERRORS: dict[Effect, tuple[str, ...]] = {"control": ("lease_held",)}
AUDITED: frozenset[Effect] = frozenset({"change", "control"})

MAX_RECORDS = 500
DEFAULT_RECORDS = 100
DASHBOARD_RECORDS = 20

Announce = Callable[[str, dict[str, Any]], None]

CONNECTION_SCOPED_WARNING = (
    "this lease belongs to this connection ({identity}) and ends when it closes (curl opens "
    "a new one for every call); send an X-Agent-Id header to hold it under a name of your own"
)


# --- declarations ------------------------------------------------------------------------------


class LeaseState(Answer):
    holder: str = Field(description="the agent holding the controls")
    taken_at: str = Field(description="when it took them (UTC, ISO 8601)")
    expires_at: str = Field(description="when the lease ends unless renewed (UTC, ISO 8601)")
    expires_in_s: float = Field(description="seconds until then")
    connection_scoped: bool = Field(
        description="held by a connection without X-Agent-Id: ends when it closes"
    )


class LeaseAnswer(Answer):
    lease: LeaseState | None = Field(description="the lease in force; null: control is open")
    you: str = Field(description="your identity, as the lease names its holder")


class TakeLeaseArguments(Arguments):
    # A forced take-over names its reason: said in the schema, so documents and fuzzers know.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"force": {"const": True}}, "required": ["force"]},
            "then": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
        }
    )

    ttl: float = Field(
        DEFAULT_TTL,
        ge=MIN_TTL,
        le=MAX_TTL,
        description="seconds to hold the controls; taking it again renews it for this long",
        examples=[60],
    )
    force: bool = Field(
        False, description="take it over from another agent (needs `reason`; audited)"
    )
    reason: str | None = Field(
        None,
        max_length=500,
        json_schema_extra={"pattern": r"\S"},  # not blank (checked below, said nicely)
        description="why: required with `force`, announced and audited",
    )

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, reason: str | None) -> str | None:
        if reason is not None and not reason.strip():
            raise ValueError("must say something (not only spaces)")
        return reason


class LeaseTaken(LeaseState):
    action: str = Field(description="`taken`, `renewed` or `forced` (taken over)")
    previous: str | None = Field(None, description="a forced take-over's former holder")
    reason: str | None = None
    warning: str | None = Field(None, description="set when the lease ends with your connection")


class LeaseReleased(Answer):
    released: bool = Field(description="false: nobody held it")
    lease: LeaseState | None = Field(description="the lease given back")


class AuditArguments(Arguments):
    since: int = Field(0, description="records numbered above this (the last answer's `next`)")
    agent: str | None = Field(None, description="only this agent's records")
    kind: str | None = Field(
        None,
        description="only records of this operation (`continue`), effect (`change`, "
        "`control`), or `lease` (every change of the control lease)",
        examples=["control"],
    )
    limit: int = Field(DEFAULT_RECORDS, ge=1, le=MAX_RECORDS, description="most records")
    wait: float = Field(
        0.0,
        ge=0.0,
        le=MAX_WAIT,
        description="seconds to wait for a record after `since` when there is none (long-poll)",
    )


class AuditRecord(Answer):
    seq: int
    time: float = Field(description="seconds since the epoch")
    agent: str
    operation: str = Field(
        description="the operation's name, or `lease_expired` / `lease_dropped` (a lease "
        "that ran out, or whose connection closed)"
    )
    effect: str = Field(description="`change` or `control`")
    args: Any = Field(description="the arguments as sent (long text cut: head, length, sha256)")
    outcome: dict[str, Any] = Field(
        description='`{"ok": true}`, or `{"ok": false, "status": 409, "code": "lease_held"}`'
    )
    result: dict[str, Any] | None = Field(
        None, description="the answer's plain fields (an edit's `sha256`, `previous_sha256`)"
    )
    lease: dict[str, Any] | None = Field(
        None, description="the lease change it made (`action`, `holder`, `expires_at`, ...)"
    )
    ms: float | None = Field(None, description="how long the request took")


class AuditPage(Answer):
    records: list[AuditRecord]
    next: int = Field(description="the `since` of your next read")
    latest: int = Field(description="the newest record's number")
    dropped: int = Field(description="records after `since` no longer kept")
    file: str | None = Field(description="where the trail is kept (null: memory only)")


CONTROL_LEASE = Operation(
    name="control_lease",
    path="/control/lease",
    methods=("GET",),
    summary="who holds the control lease (null: control is open to everyone)",
    arguments=NoArguments,
    answer=LeaseAnswer,
    tags=("control",),
)
TAKE_LEASE = Operation(
    name="take_lease",
    effect="change",  # never refused by the lease itself: the holder rules are its own
    path="/control/lease",
    methods=("POST",),
    summary="take, renew or (force, reason) take over the control lease for ttl seconds",
    description="While you hold it, every other agent's control request (launch, continue, "
    "step, pause, terminate, ...: each operation says its effect) is refused with 409 "
    "`lease_held`; reading and changing shared state stay open. Held by another agent: 409 "
    "`lease_held` unless `force` (with a `reason`: audited and announced). Announced in "
    "/debug/events as a `lease` event. Without X-Agent-Id it ends with your connection.",
    arguments=TakeLeaseArguments,
    answer=LeaseTaken,
    errors=("invalid_field", "missing_field", "lease_held"),
    tags=("control",),
)
RELEASE_LEASE = Operation(
    name="release_lease",
    effect="change",
    path="/control/release",
    summary="give the control lease back (only its holder; nobody holding it: released false)",
    arguments=NoArguments,
    answer=LeaseReleased,
    errors=("lease_held",),
    tags=("control",),
)
AUDIT = Operation(
    name="audit",
    path="/audit",
    methods=("GET",),
    summary="the audit trail: every change and control request and lease change, after "
    "'since' (filters: agent, kind; long-poll: wait)",
    description="Kept in the project's .godot/godot_debug_connection/audit.jsonl (bounded, "
    "rotated), so it outlives the sidecar; never in version control.",
    arguments=AuditArguments,
    answer=AuditPage,
    errors=("invalid_field",),
    tags=("control",),
)

OPERATIONS: tuple[Operation[Any], ...] = (CONTROL_LEASE, TAKE_LEASE, RELEASE_LEASE, AUDIT)


# --- the policy ------------------------------------------------------------------------------

# The audit record of the request being served: a lease change made by it goes there.
_PENDING: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "audit_pending", default=None
)


class ControlPolicy:
    """The lease and the audit trail around every operation's call (web/operation.py
    CallPolicy), by its effect alone."""

    def __init__(self, lease: ControlLease, audit: AuditLog) -> None:
        self.lease = lease
        self.audit = audit
        self.announce: Announce | None = None  # the debug event log every agent reads
        self._expiry: asyncio.TimerHandle | None = None
        lease.on_change = self._changed

    async def __call__(
        self,
        operation: Operation[Any],
        raw: dict[str, Any],
        caller: Caller,
        run: Callable[[], Awaitable[Any]],
    ) -> Any:
        if operation.effect not in AUDITED:
            return await run()
        pending: dict[str, Any] = {}
        token = _PENDING.set(pending)
        started = time.monotonic()
        outcome: dict[str, Any] = {"ok": False, "status": 500, "code": "internal_error"}
        summary: dict[str, Any] | None = None
        try:
            if operation.effect == "control":
                self.lease.check(caller.identity, operation.name)
            answer = await run()
            outcome = {"ok": True}
            summary = result_summary(to_jsonable_python(answer, by_alias=True))
            return answer
        except SidecarError as err:
            outcome = {"ok": False, "status": err.status, "code": err.code}
            raise
        except asyncio.CancelledError:  # the agent went away; what it asked may have happened
            outcome = {"ok": False, "code": "cancelled"}
            raise
        finally:
            _PENDING.reset(token)
            self._record(operation, raw, caller, outcome, summary, pending, started)

    def _record(
        self,
        operation: Operation[Any],
        raw: dict[str, Any],
        caller: Caller,
        outcome: dict[str, Any],
        result: dict[str, Any] | None,
        pending: dict[str, Any],
        started: float,
    ) -> None:
        self.audit.record(
            agent=caller.identity,
            operation=operation.name,
            effect=operation.effect,
            args=raw,
            outcome=outcome,
            result=result,
            lease=pending.get("lease"),
            ms=(time.monotonic() - started) * 1000,
        )

    def _changed(self, change: LeaseChange) -> None:
        """A lease change: announced to every agent, recorded (in the request's record when
        a request made it), and the expiry timer set for the lease now in force."""
        body = change.as_json(self.lease.now())
        if self.announce is not None:
            self.announce("lease", body)
        pending = _PENDING.get()
        if pending is not None and change.action not in ("expired", "dropped"):
            pending["lease"] = body  # the request being served did it
        else:  # it ran out, or its connection closed: no request of anyone's did it
            self.audit.record(
                agent=change.by,
                operation=f"lease_{change.action}",
                effect="control",
                lease=body,
            )
        self._schedule(change)

    def _schedule(self, change: LeaseChange) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if change.action in ("released", "expired", "dropped"):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test): expiry is still noticed when read
            return
        # Noticed (announced, recorded) when it runs out even if nobody asks.
        left = change.lease.left(self.lease.now())
        self._expiry = loop.call_later(left + 0.05, self.lease.current)

    def agent_left(self, agent: Agent) -> None:
        """AgentRegistry's hook: a lease taken without X-Agent-Id goes with its connection."""
        self.lease.connection_closed(agent.scoped_identity)

    def status(self) -> dict[str, Any] | None:
        """What /status says of the lease: holder and when it ends, or null."""
        return self.lease.as_json()

    def newest(self, count: int = DASHBOARD_RECORDS) -> list[dict[str, Any]]:
        return self.audit.newest(count)


def register(routes: RouteTable, policy: ControlPolicy) -> None:
    """Serve the lease and audit operations."""
    lease = policy.lease

    async def control_lease(args: NoArguments, caller: Caller) -> Any:
        return {"lease": lease.as_json(), "you": caller.identity}

    async def take_lease(args: TakeLeaseArguments, caller: Caller) -> Any:
        change = lease.take(
            caller.identity,
            args.ttl,
            force=args.force,
            reason=args.reason,
            connection_scoped=caller.connection_scoped,
        )
        answer = change.as_json(lease.now())
        if caller.connection_scoped:
            answer["warning"] = CONNECTION_SCOPED_WARNING.format(identity=caller.identity)
        return answer

    async def release_lease(args: NoArguments, caller: Caller) -> Any:
        change = lease.release(caller.identity)
        if change is None:
            return {"released": False, "lease": None}
        return {"released": True, "lease": change.lease.as_json(lease.now())}

    async def audit(args: AuditArguments, caller: Caller) -> Any:
        await policy.audit.wait(args.since, args.wait)
        page = policy.audit.read(args.since, agent=args.agent, kind=args.kind, limit=args.limit)
        path = policy.audit.path
        return {**page, "file": None if path is None else str(path)}

    routes.serve(CONTROL_LEASE, control_lease)
    routes.serve(TAKE_LEASE, take_lease)
    routes.serve(RELEASE_LEASE, release_lease)
    routes.serve(AUDIT, audit)

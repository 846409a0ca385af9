"""One DAP session with Godot's debug adapter, shared by every agent.

Godot's adapter has one global debug state and a few habits (see GODOT_NOTES.md) that
this module turns into something many agents can share:

- `initialize` clears every editor breakpoint, so it is sent once per connection and the
  agents' breakpoints are sent again right after.
- `setBreakpoints` replaces a file's breakpoints for everyone, so each agent's set is
  kept here and Godot always gets the union per file.
- `launch` is answered only after `configurationDone`; both are written back to back.
- There is no `stepOut`: it is emulated with `next` until the stack is shorter.
- `variables` fails while the editor is still fetching a frame's variables: retried.
- Requests needing a stopped game (`evaluate` above all) hold up Godot's queue for
  seconds when the game runs, so they are refused here with 409 instead.
- Events go into a numbered, bounded log every agent reads at its own pace.

Agents' requests reach Godot through a small fair scheduler: a bounded number in flight,
taken round-robin per agent, so a chatty or slow agent does not starve the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .errors import BridgeError, PeerTimeout, ProtocolError, RequestError
from .http import require
from .peer import Call, DapCorrelation, Peer
from .service import ServiceStatus

log = logging.getLogger(__name__)

THREAD_ID = 1  # Godot debugs one thread and always calls it 1
MAX_WAIT = 30.0
STEP_OUT_LIMIT = 200
VARIABLES_PATIENCE = 3.0
VARIABLES_RETRY_DELAY = 0.1
# After next/stepIn the game stops again within milliseconds; a read arriving in between
# waits this long for that stop instead of failing with 409.
STEP_GRACE = 2.0
GAME_END_WAIT = 1.0
STOP_BUDGET = 1.0  # seconds the sidecar may spend tidying up on its way out
SIDECAR = "sidecar"  # the scheduler's name for requests the sidecar makes on its own

Args = dict[str, Any]


# -- request arguments ---------------------------------------------------------------


def _optional(args: Args, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    return require(args, name, kind) if args.get(name) is not None else default


def _thread(args: Args) -> int:
    # Godot has one thread; a missing threadId means that one.
    return _optional(args, "threadId", int, THREAD_ID)


@dataclass(frozen=True)
class SourceBreakpoint:
    line: int
    condition: str | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> SourceBreakpoint:
        if not isinstance(raw, dict):
            raise RequestError(f"'{where}' must be an object with a 'line'", code="invalid_field")
        try:
            line = require(raw, "line", int)
            condition = _optional(raw, "condition", str, None)
        except RequestError as err:
            field_name = f"{where}.{err.details.get('field')}"
            raise RequestError(
                err.message.replace(f"'{err.details.get('field')}'", f"'{field_name}'"),
                code=err.code,
                details={"field": field_name},
            ) from None
        if line < 1:
            raise RequestError(
                f"'{where}.line' must be 1 or more (lines start at 1)",
                code="invalid_field",
                details={"field": f"{where}.line"},
            )
        return cls(line, condition)

    def as_json(self) -> Args:
        out: Args = {"line": self.line}
        if self.condition is not None:
            out["condition"] = self.condition
        return out


def _source_path(args: Args) -> str:
    source = require(args, "source", dict)
    if "path" not in source:
        raise RequestError(
            "missing field 'source.path'", code="missing_field", details={"field": "source.path"}
        )
    path = source["path"]
    if not isinstance(path, str) or not path:
        raise RequestError(
            "field 'source.path' must be a non-empty string",
            code="invalid_field",
            details={"field": "source.path"},
        )
    return path


def _breakpoints(args: Args) -> list[SourceBreakpoint]:
    if args.get("breakpoints") is not None:
        raw = require(args, "breakpoints", list)
        return [SourceBreakpoint.parse(b, f"breakpoints[{i}]") for i, b in enumerate(raw)]
    if args.get("lines") is not None:  # DAP's older form
        lines = require(args, "lines", list)
        return [SourceBreakpoint.parse({"line": n}, f"lines[{i}]") for i, n in enumerate(lines)]
    return []


# -- paths ---------------------------------------------------------------------------


def to_project_path(project: str, raw: str, *, must_exist: bool = True) -> str:
    """`res://`, project-relative or absolute → an absolute path inside the project.

    Godot's adapter only accepts absolute paths inside the editor's project.
    """
    root = os.path.realpath(project)
    if raw.startswith("res://"):
        candidate = os.path.join(root, raw[len("res://") :])
    elif os.path.isabs(raw):
        candidate = raw
    else:
        candidate = os.path.join(root, raw)
    resolved = os.path.realpath(candidate)
    if os.path.commonpath([root, resolved]) != root:
        raise RequestError(
            f"path '{raw}' is outside the project {root}; use res://, a project-relative "
            "path or an absolute path inside the project",
            status=403,
            code="outside_project",
            details={"path": raw},
        )
    if must_exist and not os.path.isfile(resolved):
        raise RequestError(
            f"no file '{raw}' in the project (looked for {resolved})",
            code="no_such_file",
            details={"path": raw},
        )
    return resolved


def to_res_path(project: str, absolute: str) -> str:
    rel = os.path.relpath(absolute, os.path.realpath(project))
    return "res://" + rel.replace(os.sep, "/")


# -- the event log -------------------------------------------------------------------


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

    async def next_of(self, since: int, kinds: frozenset[str], timeout: float) -> DebugEvent | None:
        """The first event after `since` whose kind is in `kinds`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            events, _ = self.after(since)
            for e in events:
                if e.event in kinds:
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


# -- fair scheduling -----------------------------------------------------------------


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


# -- the session ---------------------------------------------------------------------


@dataclass
class StopInfo:
    reason: str
    epoch: int
    body: Args


@dataclass
class _FileBreakpoints:
    by_agent: dict[str, list[SourceBreakpoint]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def union(self, line_count: int | None = None) -> list[int]:
        """Every agent's lines, less those past the end of the file.

        Godot answers a whole setBreakpoints with an empty list (and skips removing
        old lines) when one line is past the end of the script.
        """
        lines = {b.line for bps in self.by_agent.values() for b in bps}
        return sorted(n for n in lines if line_count is None or n <= line_count)


class DapSession:
    """The sidecar's one DAP connection to Godot and everything agents share on it."""

    def __init__(
        self,
        config: Config,
        *,
        status: ServiceStatus | None = None,
        event_capacity: int = 2000,
        window: int = 4,
        play_args: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.project = os.path.realpath(config.project)
        self.status = status or ServiceStatus("debug_adapter", config.dap_port)
        self.timeout = config.request_timeout
        self.play_args = list(play_args)
        self.events = EventLog(event_capacity)
        self.scheduler = FairScheduler(window)
        self.peer = Peer(
            self.status,
            DapCorrelation(),
            what="Godot's debug adapter",
            host=config.godot_host,
            request_timeout=config.request_timeout,
            on_message=self._on_event,
            on_connected=self._handshake,
            on_lost=self._on_lost,
        )
        self._files: dict[str, _FileBreakpoints] = {}
        self._stop: StopInfo | None = None
        self._running = False
        self._stepping = False  # a next/stepIn was sent and its stop has not come yet
        self._epoch = 0
        self._exec_lock = asyncio.Lock()
        self._resync: asyncio.Task[None] | None = None
        self._launch_lock = asyncio.Lock()
        self._trace_cache: dict[int, Args] = {}
        self._inflight: dict[str, asyncio.Future[Args]] = {}
        self._frame_lock = asyncio.Lock()
        self._frame_scopes: dict[int, Args] = {}  # frameId → scopes, this stop

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        self.peer.start()

    async def stop(self) -> None:
        """Take the agents' breakpoints out of the editor, then close the connection."""
        if self._resync is not None:
            self._resync.cancel()
        if self.peer.connected and self._files:
            with contextlib.suppress(BridgeError, asyncio.TimeoutError):
                await asyncio.wait_for(self._clear_breakpoints(), STOP_BUDGET)
        await self.peer.disconnect("sidecar stopping")

    async def _clear_breakpoints(self) -> None:
        # The editor keeps breakpoints after we leave; they would stop the user's runs.
        for path, bps in list(self._files.items()):
            if bps.by_agent:
                await self.peer.request("setBreakpoints", _set_args(path, []))

    async def connect(self, wait: float | None = None) -> bool:
        return await self.peer.connect(wait)

    async def disconnect(self) -> None:
        await self.peer.disconnect()

    @property
    def stopped(self) -> StopInfo | None:
        return self._stop

    @property
    def running(self) -> bool:
        return self._running

    async def _handshake(self, peer: Peer) -> None:
        answer = await peer.request(
            "initialize",
            {
                "clientID": "godot_debug_connection",
                "clientName": "godot_debug_connection sidecar",
                "adapterID": "godot",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "supportsVariableType": True,
            },
            handshake=True,
        )
        if not answer.get("success"):
            raise ProtocolError(f"Godot refused initialize: {_godot_message(answer)}")
        # initialize cleared the editor's breakpoints: put the agents' back.
        for path, bps in list(self._files.items()):
            lines = bps.union(_line_count(path))
            if lines:
                await peer.request("setBreakpoints", _set_args(path, lines), handshake=True)
        await self._recover_stop(peer)

    async def _recover_stop(self, peer: Peer) -> None:
        """After a reconnect the game may still sit at a breakpoint: find out."""
        answer = await peer.request("stackTrace", {"threadId": THREAD_ID}, handshake=True)
        frames = (answer.get("body") or {}).get("stackFrames") if answer.get("success") else None
        if frames:
            self._forget_stop()
            self._stop = StopInfo("unknown", self._epoch, {"reason": "unknown"})
            self._running = True

    def _on_lost(self, reason: str) -> None:
        self._forget_stop()
        self._running = self._stepping = False

    def _on_event(self, msg: Args) -> None:
        if msg.get("type") != "event":
            return
        name = str(msg.get("event", ""))
        body = msg.get("body") if isinstance(msg.get("body"), dict) else {}
        if name == "stopped":
            self._forget_stop()
            self._stop = StopInfo(str(body.get("reason", "")), self._epoch, body)
            self._running = True
            self._stepping = False
        elif name == "continued":
            self._forget_stop()
        elif name in ("terminated", "exited"):
            self._forget_stop()
            self._running = self._stepping = False
            # Godot's adapter clears its breakpoint list when a game ends; the editor
            # keeps them, but stops at them would no longer be announced.
            self._resync_soon()
        elif name in ("process", "output"):
            self._running = True  # output comes from the game, even one the editor started
        # stopped, continued, output, breakpoint, process, terminated, exited, and
        # whatever else Godot may add; `initialized` only concerns the handshake.
        if name and name != "initialized":
            self.events.append(name, body)

    def _forget_stop(self) -> None:
        """Frame and variable ids die with the stop that made them."""
        self._stop = None
        self._epoch += 1
        self._trace_cache.clear()
        self._frame_scopes.clear()

    # -- talking to Godot ------------------------------------------------------------

    async def _godot(self, agent: str, command: str, arguments: Args | None) -> Args:
        """One request in the agent's turn; the response body, or the error it maps to."""
        async with self.scheduler.slot(agent):
            answer = await self.peer.request(command, arguments, timeout=self.timeout)
        return _body_or_raise(answer, command)

    async def _shared(self, key: str, make: Callable[[], Awaitable[Args]]) -> Args:
        """Identical concurrent reads share one request to Godot."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            self._inflight[key] = future
            future.add_done_callback(lambda f: self._settled(key, f))
        return await asyncio.shield(future)

    def _settled(self, key: str, future: asyncio.Future[Args]) -> None:
        self._inflight.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved here in case every waiter has gone

    async def _stopped(self, command: str) -> StopInfo:
        """The current stop; right after a step, wait briefly for it instead of a 409."""
        deadline = time.monotonic() + STEP_GRACE
        while self._stop is None and self._stepping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await self.events.wait(self.events.latest, remaining)
        return self._require_stopped(command)

    def _require_stopped(self, command: str) -> StopInfo:
        if self._stop is None:
            state = "running" if self._running else "not running"
            raise RequestError(
                f"'{command}' needs the game stopped (at a breakpoint, a step or a pause); "
                f"the game is {state}. Wait for a 'stopped' event in /debug/events, or "
                "POST /debug/pause",
                status=409,
                code="not_stopped",
                details={"command": command, "running": self._running},
            )
        return self._stop

    def _require_running(self, command: str) -> None:
        if not self._running:
            raise RequestError(
                f"'{command}' needs a running game; POST /debug/launch first",
                status=409,
                code="not_running",
                details={"command": command},
            )

    # -- commands --------------------------------------------------------------------

    async def call(self, command: str, agent: str, args: Args) -> Any:
        """Run the endpoint named `command` for `agent` with the DAP arguments `args`."""
        handler = self._commands().get(command)
        if handler is None:
            raise RequestError(f"unknown debug command '{command}'", status=404, code="not_found")
        if not self.peer.connected:
            # Our idea of the game's state is stale while the adapter is away: say so first.
            raise self.peer.unavailable()
        return await handler(agent, args)

    def _commands(self) -> dict[str, Callable[[str, Args], Awaitable[Any]]]:
        return {
            "launch": self.launch,
            "setBreakpoints": self.set_breakpoints,
            "continue": self.continue_,
            "pause": self.pause,
            "next": self.next,
            "stepIn": self.step_in,
            "stepOut": self.step_out,
            "stackTrace": self.stack_trace,
            "scopes": self.scopes,
            "variables": self.variables,
            "evaluate": self.evaluate,
            "threads": self.threads,
            "terminate": self.terminate,
        }

    async def launch(self, agent: str, args: Args) -> Args:
        scene = self._scene(_optional(args, "scene", str, "main"))
        no_debug = _optional(args, "noDebug", bool, False)
        play_args = list(_optional(args, "playArgs", list, []))
        if not all(isinstance(a, str) for a in play_args):
            raise RequestError(
                "field 'playArgs' must be an array of strings",
                code="invalid_field",
                details={"field": "playArgs"},
            )
        play_args += [a for a in self.play_args if a not in play_args]
        arguments: Args = {"project": self.project, "scene": scene, "noDebug": no_debug}
        if play_args:
            arguments["playArgs"] = play_args
        # Godot keeps one pending launch per connection: two interleaved would lose one.
        async with self._launch_lock:
            if self._running:
                await self._end_game(agent)
            await self._sync_breakpoints(agent)
            async with self.scheduler.slot(agent):
                launch = self.peer.issue("launch", arguments)
                done = self._issue_quietly("configurationDone")
                answers = await asyncio.gather(
                    self.peer.answer(launch, self.timeout),
                    self._answer(done),
                    return_exceptions=True,
                )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        body = _body_or_raise(answers[0], "launch")
        _body_or_raise(answers[1], "configurationDone")
        # `running` follows Godot's `process` event, which comes before this answer; a
        # game that died at once has already sent `exited` too.
        return {**body, "scene": scene}

    async def _end_game(self, agent: str) -> None:
        """Stop the running game first: Godot forgets its breakpoints when a game ends
        and would not announce the new game's stops if that happened mid-launch."""
        since = self.events.latest
        await self._godot(agent, "terminate", None)
        ended = frozenset({"terminated", "exited"})
        if await self.events.next_of(since, ended, GAME_END_WAIT) is None:
            log.info("no terminated event after terminate; launching anyway")

    async def _sync_breakpoints(self, agent: str) -> None:
        """Send Godot every file's union again (it drops its list when a game ends)."""
        for path, bps in list(self._files.items()):
            async with bps.lock:
                lines = bps.union(_line_count(path))
                await self._godot(agent, "setBreakpoints", _set_args(path, lines))

    def _resync_soon(self) -> None:
        if self._resync is not None and not self._resync.done():
            return
        if not self._files or not self.peer.connected:
            return
        self._resync = asyncio.create_task(self._resync_quietly())

    async def _resync_quietly(self) -> None:
        try:
            await self._sync_breakpoints(SIDECAR)
        except BridgeError as err:
            log.warning("could not restore breakpoints after the game ended: %s", err.message)

    def _issue_quietly(self, command: str) -> Call | None:
        try:
            return self.peer.issue(command)
        except BridgeError:
            return None  # the connection just dropped: launch's answer reports it

    async def _answer(self, call: Call | None) -> Args:
        if call is None:
            return {"success": True}
        return await self.peer.answer(call, self.timeout)

    def _scene(self, raw: str) -> str:
        if raw in ("main", "current"):
            return raw
        path = to_project_path(self.project, raw)
        if not path.endswith((".tscn", ".scn")):
            raise RequestError(
                f"scene '{raw}' is not a scene file (.tscn or .scn)",
                code="invalid_field",
                details={"field": "scene"},
            )
        return to_res_path(self.project, path)

    async def set_breakpoints(self, agent: str, args: Args) -> Args:
        raw_path = _source_path(args)
        path = to_project_path(self.project, raw_path)
        wanted = _breakpoints(args)
        bps = self._files.setdefault(path, _FileBreakpoints())
        async with bps.lock:
            if wanted:
                bps.by_agent[agent] = wanted
            else:
                bps.by_agent.pop(agent, None)
            count = _line_count(path)
            body = await self._godot(agent, "setBreakpoints", _set_args(path, bps.union(count)))
        by_line = {b.get("line"): b for b in body.get("breakpoints", []) if isinstance(b, dict)}
        return {"breakpoints": [self._own(b, by_line.get(b.line), path, count) for b in wanted]}

    def _own(self, bp: SourceBreakpoint, godot: Args | None, path: str, count: int) -> Args:
        if godot is not None:
            return {**godot, "line": bp.line, "verified": bool(godot.get("verified", False))}
        if bp.line > count:
            why = f"line {bp.line} is past the end of the file ({count} lines)"
        else:
            why = (
                "Godot did not accept this breakpoint (the editor may have an older "
                "version of the file loaded)"
            )
        return {"verified": False, "line": bp.line, "source": {"path": path}, "message": why}

    def breakpoints(self, agent: str | None = None) -> dict[str, Any]:
        """Breakpoints held for Godot: per file, per agent (or one agent's only)."""
        out: dict[str, Any] = {}
        for path, bps in self._files.items():
            per_agent = {
                a: [b.as_json() for b in lst]
                for a, lst in bps.by_agent.items()
                if agent is None or a == agent
            }
            if per_agent:
                out[to_res_path(self.project, path)] = per_agent
        return out

    async def continue_(self, agent: str, args: Args) -> Args:
        thread = _thread(args)
        async with self._exec_lock:
            await self._stopped("continue")
            body = await self._resume(agent, "continue", thread)
        return {"allThreadsContinued": True, **body}

    async def pause(self, agent: str, args: Args) -> Args:
        thread = _thread(args)
        async with self._exec_lock:
            # Without a game Godot still announces a bogus "stopped" event.
            self._require_running("pause")
            if self._stop is not None:
                return {"alreadyStopped": True}
            return await self._godot(agent, "pause", {"threadId": thread})

    async def next(self, agent: str, args: Args) -> Args:
        return await self._step(agent, "next", _thread(args))

    async def step_in(self, agent: str, args: Args) -> Args:
        return await self._step(agent, "stepIn", _thread(args))

    async def _step(self, agent: str, command: str, thread: int) -> Args:
        async with self._exec_lock:
            await self._stopped(command)
            return await self._resume(agent, command, thread)

    async def _resume(self, agent: str, command: str, thread: int) -> Args:
        """continue / next / stepIn: afterwards the game runs until the next stop."""
        epoch = self._epoch
        body = await self._godot(agent, command, {"threadId": thread})
        # The next `stopped` may have been read before we got here: keep that one.
        if self._epoch == epoch:
            self._forget_stop()
            self._stepping = command != "continue"
        return body

    async def step_out(self, agent: str, args: Args) -> Args:
        """`next` until the stack is shorter than where we started (Godot has no stepOut)."""
        thread = _thread(args)
        deadline = time.monotonic() + self.timeout
        async with self._exec_lock:
            await self._stopped("stepOut")
            depth = len(await self._frames(agent, thread))
            if depth <= 1:
                # Leaving the outermost frame means running on: that is a continue.
                await self._resume(agent, "continue", thread)
                return {"steps": 0, "continued": True}
            for steps in range(1, STEP_OUT_LIMIT + 1):
                stop = await self._step_and_wait(agent, thread, deadline)
                if stop is None or stop.event != "stopped":
                    return {"steps": steps, "stopped": False}
                if stop.body.get("reason") != "step":
                    return {"steps": steps, "stopped": True, "reason": stop.body.get("reason")}
                if len(await self._frames(agent, thread)) < depth:
                    return {"steps": steps, "stopped": True}
        return {"steps": STEP_OUT_LIMIT, "stopped": True, "limitReached": True}

    async def _step_and_wait(self, agent: str, thread: int, deadline: float) -> DebugEvent | None:
        since = self.events.latest
        await self._resume(agent, "next", thread)
        remaining = deadline - time.monotonic()
        stop = await self.events.next_of(
            since, frozenset({"stopped", "terminated", "exited"}), max(remaining, 0.0)
        )
        if stop is None:
            raise PeerTimeout(
                f"stepOut: the game did not stop again within {self.timeout:g} s",
                details={"command": "stepOut"},
            )
        return stop

    async def _frames(self, agent: str, thread: int) -> list[Args]:
        return list((await self._trace(agent, thread)).get("stackFrames", []))

    async def _trace(self, agent: str, thread: int) -> Args:
        stop = await self._stopped("stackTrace")
        cached = self._trace_cache.get(stop.epoch)
        if cached is not None:
            return cached

        async def fetch() -> Args:
            body = await self._godot(agent, "stackTrace", {"threadId": thread})
            if self._stop is stop:
                self._trace_cache[stop.epoch] = body
            return body

        return await self._shared(f"stackTrace:{stop.epoch}", fetch)

    async def stack_trace(self, agent: str, args: Args) -> Args:
        thread = _thread(args)
        start = _optional(args, "startFrame", int, 0)
        levels = _optional(args, "levels", int, 0)
        frames = await self._frames(agent, thread)
        end = start + levels if levels > 0 else None
        return {"stackFrames": frames[start:end], "totalFrames": len(frames)}

    async def scopes(self, agent: str, args: Args) -> Args:
        frame = require(args, "frameId", int)
        await self._stopped("scopes")
        frames = await self._frames(agent, THREAD_ID)
        if not 0 <= frame < len(frames):
            raise RequestError(
                f"no frame {frame}: the stack has {len(frames)} frame(s), ids 0 to "
                f"{len(frames) - 1}; see /debug/stackTrace",
                code="invalid_field",
                details={"field": "frameId"},
            )
        async with self._frame_lock:
            return await self._load_frame(agent, frame)

    async def _load_frame(self, agent: str, frame: int) -> Args:
        """A frame's scopes, once the editor holds that frame's variables.

        The editor files incoming variables under whichever frame was asked for last,
        so frames are loaded one at a time (under `_frame_lock`), each until its
        variables are in. It fetches frame 0's by itself at every stop: that load
        must be over before another frame is asked for, or it lands in that frame.
        """
        cached = self._frame_scopes.get(frame)
        if cached is not None:
            return cached
        epoch = self._require_stopped("scopes").epoch
        if frame != 0:
            await self._load_frame(agent, 0)
        body = await self._godot(agent, "scopes", {"frameId": frame})
        refs = [
            s["variablesReference"]
            for s in body.get("scopes", [])
            if isinstance(s, dict) and isinstance(s.get("variablesReference"), int)
        ]
        if refs:
            await self._variables(agent, refs[0], {})
        if self._epoch == epoch:
            self._frame_scopes[frame] = body
        return body

    async def variables(self, agent: str, args: Args) -> Args:
        ref = require(args, "variablesReference", int)
        stop = await self._stopped("variables")
        extra = {k: args[k] for k in ("filter", "start", "count") if k in args}
        key = f"variables:{stop.epoch}:{ref}:{json.dumps(extra, sort_keys=True)}"
        return await self._shared(key, lambda: self._variables(agent, ref, extra))

    async def _variables(self, agent: str, ref: int, extra: Args) -> Args:
        """Retry while the editor is still fetching the frame's variables from the game."""
        arguments = {"variablesReference": ref, **extra}
        deadline = time.monotonic() + VARIABLES_PATIENCE
        while True:
            try:
                return await self._godot(agent, "variables", arguments)
            except GodotError as err:
                # "unknown" is all Godot says for "not fetched yet" and "no such id".
                if err.godot_error != "unknown" or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(VARIABLES_RETRY_DELAY)
            self._require_stopped("variables")

    async def evaluate(self, agent: str, args: Args) -> Args:
        expression = require(args, "expression", str)
        # Without a frameId Godot uses whichever frame was inspected last: be explicit.
        arguments: Args = {"expression": expression, "frameId": _optional(args, "frameId", int, 0)}
        if args.get("context") is not None:
            arguments["context"] = require(args, "context", str)
        # Godot defers evaluate until the game answers: with the game running that
        # stalls every request on the connection for seconds.
        await self._stopped("evaluate")
        return await self._godot(agent, "evaluate", arguments)

    async def threads(self, agent: str, args: Args) -> Args:
        return await self._shared("threads", lambda: self._godot(agent, "threads", None))

    async def terminate(self, agent: str, args: Args) -> Args:
        # Not behind the execution lock: terminating must cut a long stepOut short.
        return await self._godot(agent, "terminate", None)

    async def wait_events(self, since: int = 0, wait: float = 0.0, limit: int = 500) -> Args:
        return await self.events.read(since, wait, limit)


# -- helpers -------------------------------------------------------------------------


class GodotError(BridgeError):
    """Godot answered a request with success=false."""

    status = 502
    code = "godot_error"

    def __init__(self, message: str, godot_error: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.godot_error = godot_error


_GODOT_STATUS = {"wrong_path": 400, "not_running": 409, "timeout": 504}


def _body_or_raise(answer: Args, command: str) -> Args:
    if answer.get("success"):
        body = answer.get("body")
        return body if isinstance(body, dict) else {}
    kind = str(answer.get("message") or "unknown")
    raise GodotError(
        f"Godot's debug adapter failed '{command}': {_godot_message(answer)}",
        kind,
        status=_GODOT_STATUS.get(kind, 502),
        details={"command": command, "godot_error": kind},
    )


def _godot_message(answer: Args) -> str:
    """Godot's error text with its {placeholders} filled in."""
    body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    text = str(error.get("format") or answer.get("message") or "no details")
    variables = error.get("variables") if isinstance(error.get("variables"), dict) else {}
    for name, value in variables.items():
        text = text.replace("{" + str(name) + "}", str(value))
    return text


def _set_args(path: str, lines: list[int]) -> Args:
    return {
        "source": {"path": path, "name": os.path.basename(path)},
        "breakpoints": [{"line": n} for n in lines],
    }


def _line_count(path: str) -> int:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0

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
- Events go into a numbered, bounded log every agent reads at its own pace. The game's
  own debugger messages (`godot/custom_data`, asked for at launch) stay out of it: they
  give the game's pid and the real message of a failed `evaluate`.
- Frame ids and variable references are checked against what this stop handed out:
  Godot resumes the game when asked to evaluate in a frame that does not exist.

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
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.agents import Agent
from sidecar.config import Config
from sidecar.errors import BridgeError, PeerTimeout, ProtocolError, RequestError
from sidecar.godot.identity import ProcessWatch, cmdline, games_of, is_game_of
from sidecar.godot.peer import Call, DapCorrelation, Peer
from sidecar.godot.service import ServiceStatus
from sidecar.project.paths import ProjectPaths

log = logging.getLogger(__name__)

THREAD_ID = 1  # Godot debugs one thread and always calls it 1
MAX_WAIT = 30.0
STEP_OUT_LIMIT = 200
VARIABLES_PATIENCE = 3.0
VARIABLES_RETRY_DELAY = 0.1
# After next/stepIn the game stops again within milliseconds; a read arriving in between
# waits this long for that stop instead of failing with 409.
STEP_GRACE = 2.0
# After our terminate, Godot announces the end only if the game's debugger session was up
# (a terminate right after launch gets nothing): past this, the end is inferred.
TERMINATE_WAIT = 2.0
ENDED = frozenset({"terminated", "exited"})
TERMINATED = frozenset({"terminated"})
STOP_BUDGET = 1.0  # seconds the sidecar may spend tidying up on its way out
# A failed evaluation is answered like a null; the game's error message follows its
# `evaluation_return` at once (same debug-loop turn): waited for this long at most.
EVAL_ERROR_WAIT = 0.5
HIT_WAIT = 1.0  # for the stack naming a breakpoint stop's agents, before announcing it
RECOVER_WAIT = 0.6  # for the stack a stopped game sends again after a reconnect
GAME_KILL_WAIT = 1.0  # between SIGTERM and SIGKILL for a game the editor left behind
# Lines Godot never stops at, though it marks a breakpoint there verified: blank lines,
# comments, and declarations that compile to no code. (Its `breakpointLocations` only
# echoes the line asked about, so the text is all there is to go by.)
NEVER_RUNS = re.compile(r"\s*(#.*)?|\s*(signal|extends|class_name)\b.*", re.DOTALL)
SIDECAR = "sidecar"  # the scheduler's name for requests the sidecar makes on its own
EVALUATION_RETURN = frozenset({"evaluation_return"})
ANY_MESSAGE = None
# What a game sends on its own while stopped (the editor asks it to redraw ~35 times a
# second) or running: not an answer to anything, so an evaluation's error may follow.
BACKGROUND_MESSAGES = ("servers:", "performance:")

Args = dict[str, Any]


@dataclass(frozen=True)
class SourceBreakpoint:
    line: int

    def as_json(self) -> Args:
        return {"line": self.line}


# -- paths ---------------------------------------------------------------------------


def to_project_path(
    project: str, raw: str, *, must_exist: bool = True, script: bool = False
) -> str:
    """Any spelling of a project file (project.paths) → its real absolute path.

    Godot's adapter only accepts absolute paths inside the editor's project.
    """
    paths = ProjectPaths(project)
    f = paths.script(raw, "source.path") if script else paths.resolve(raw, "source.path")
    if must_exist:
        f = paths.existing(f.res, "source.path")
    return paths.real_path(f)


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
        # variablesReference values handed out this stop (scopes, variables, evaluate).
        self._refs: set[int] = set()
        self._frame_self: dict[int, bool] = {}  # frameId → has an instance, this stop
        self._eval_lock = asyncio.Lock()  # Godot keeps one pending evaluation per text
        # The game's debugger messages (`godot/custom_data`), kept apart from the log.
        self.custom_data = EventLog(256)
        # While a breakpoint stop waits for the agents it names, later events wait too;
        # a later breakpoint stop among them (its StopInfo) is announced in its turn.
        self._held: list[tuple[str, Args, StopInfo | None]] | None = None
        self._game_pid: int | None = None  # from the `set_pid` of the game we launched
        self._pid_wanted = False  # a launch of ours waits for its game's `set_pid`
        self._game_exe: str | None = None  # from the `process` event
        editor = config.editor_pid
        self._editor = ProcessWatch(editor) if editor is not None else None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._recovering: asyncio.Future[Any] | None = None  # _recover_stop of this link
        # Connection-scoped identities whose connection closed: nothing of theirs is kept.
        self._departed: set[str] = set()
        self._launches = 0  # a stop found after connecting is stale once a launch began
        # Breakpoint ids of our own, one per (file, line): Godot numbers a line anew each
        # time the editor toggles it (at launch too) and after every game, and names the
        # oldest entry of a line in `hitBreakpointIds`, so its ids disagree with each other.
        self._bp_ids: dict[tuple[str, int], int] = {}

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        self.peer.start()

    async def stop(self) -> None:
        """Take the agents' breakpoints out of the editor, close the connection, and end
        the game we launched if the editor is gone: nobody else would then.

        While the editor lives (the addon starts a new sidecar when the link drops) the
        game stays: the next sidecar finds it. Without the editor's pid (a sidecar served
        directly) there is no telling, so the game stays too.
        """
        if self._resync is not None:
            self._resync.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self.peer.connected and self._files:
            with contextlib.suppress(BridgeError, asyncio.TimeoutError):
                await asyncio.wait_for(self._clear_breakpoints(), STOP_BUDGET)
        await self.peer.disconnect("sidecar stopping")
        pid, self._game_pid = self._game_pid, None
        if pid is not None and self._editor is not None and self._editor.gone():
            await end_game_process(pid, self.project, self._game_exe, self._editor.pid)

    async def _clear_breakpoints(self) -> None:
        # The editor keeps breakpoints after we leave; they would stop the user's runs.
        for path, bps in list(self._files.items()):
            if bps.by_agent:
                await self.peer.request("setBreakpoints", _set_args(path, []))

    async def connect(self, wait: float | None = None) -> bool:
        return await self.peer.connect(wait)

    async def disconnect(
        self, reason: str = "disconnected on request", *, resume_after: float | None = None
    ) -> None:
        await self.peer.disconnect(reason, resume_after=resume_after)

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
        self._ask_for_custom_data(peer)
        self._recovering = self._spawn(self._recover_stop())

    def _ask_for_custom_data(self, peer: Peer) -> None:
        """Have Godot forward the game's debugger messages on this connection.

        Only `launch` sets that flag. A `launch` without `configurationDone` launches
        nothing (Godot keeps it pending, and the next real launch replaces it) and gets
        no answer, so it is sent as a plain message.
        """
        # No `project`: Godot checks it before it sets the flag.
        args = {"godot/custom_data": True}
        with contextlib.suppress(BridgeError):
            peer.send(peer.correlation.request(0, "launch", args))

    async def _recover_stop(self) -> None:
        """After a (re)connect the game may still sit at a breakpoint: find out, say so.

        Godot forgets the stack when its last DAP client leaves; the stopped game sends
        it again when asked (`get_stack_dump`, what the editor asks at every stop). A game
        stopped between frames has no stack, but the editor keeps asking it to redraw
        (`servers:drawn`), which only a stopped game does.
        """
        launches = self._launches
        since = self.custom_data.latest
        try:
            frames = await self._godot_frames()
            if not frames:
                await self.peer.request(
                    "godot/put_msg",
                    {"message": "get_stack_dump", "data": []},
                    timeout=2.0,
                    handshake=True,
                )
                deadline = time.monotonic() + RECOVER_WAIT
                while not frames and time.monotonic() < deadline and self._stop is None:
                    await asyncio.sleep(0.05)
                    frames = await self._godot_frames()
            if frames:
                # Godot answers ahead of the events it has queued: give a stop that
                # is just happening the time to announce itself.
                await asyncio.sleep(0.2)
        except BridgeError as err:
            log.info("could not look for a stopped game after connecting: %s", err.message)
            return
        drawn = any(e.event == "servers:drawn" for e in self.custom_data.after(since)[0])
        if not (frames or drawn) or self._stop is not None or self._launches != launches:
            return  # running, no game, or a stop or launch of its own meanwhile
        self._forget_stop()
        body: Args = {"reason": "recovered", "threadId": THREAD_ID, "description": "Recovered"}
        self._stop = StopInfo("recovered", self._epoch, body)
        self._running = True
        if frames:
            self._trace_cache[self._epoch] = {"stackFrames": frames}
        body.update(self._where(frames))
        body["text"] = "the game was already stopped when the debug adapter (re)connected"
        self._append("stopped", body)

    async def _godot_frames(self) -> list[Args]:
        answer = await self.peer.request(
            "stackTrace", {"threadId": THREAD_ID}, timeout=2.0, handshake=True
        )
        body = answer.get("body") if answer.get("success") else None
        frames = body.get("stackFrames") if isinstance(body, dict) else None
        return [f for f in frames if isinstance(f, dict)] if isinstance(frames, list) else []

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_lost(self, reason: str) -> None:
        if self._recovering is not None:
            # It looked at the lost link's game: a stop it found there is no longer true.
            self._recovering.cancel()
            self._recovering = None
        self._forget_stop()
        self._running = self._stepping = False

    def _on_event(self, msg: Args) -> None:
        if msg.get("type") != "event":
            return
        name = str(msg.get("event", ""))
        body = msg.get("body") if isinstance(msg.get("body"), dict) else {}
        if name == "godot/custom_data":
            self._on_custom_data(body)
            return  # the game's own chatter (a profile frame a second): not agent news
        if name == "stopped":
            if self._is_pause_echo(body):
                # Godot announces a pause twice: `paused`, then, once the game is in its
                # debug loop, an `exception` with no text. One stop, not two.
                self._trace_cache.clear()  # the stack may only now be there
                return
            self._forget_stop()
            self._stop = StopInfo(str(body.get("reason", "")), self._epoch, body)
            self._running = True
            self._stepping = False
            if body.get("reason") == "breakpoint":
                if self._held is None:
                    self._held = []
                    self._spawn(self._announce_hits(self._stop))
                else:
                    self._held.append(("stopped", body, self._stop))
                return
        elif name == "continued":
            self._forget_stop()
        elif name in ENDED:
            self._game_ended()
            # Godot's adapter clears its breakpoint list when a game ends; the editor
            # keeps them, but stops at them would no longer be announced.
            self._resync_soon()
        elif name == "breakpoint":
            body = self._own_breakpoint_event(body)
        elif name in ("process", "output"):
            self._running = True  # output comes from the game, even one the editor started
            if name == "process" and isinstance(body.get("name"), str):
                self._game_exe = body["name"]
        # stopped, continued, output, breakpoint, process, terminated, exited, and
        # whatever else Godot may add; `initialized` only concerns the handshake.
        if name and name != "initialized":
            self._append(name, body)

    def _game_ended(self) -> None:
        self._forget_stop()
        self._running = self._stepping = False
        if not self._launch_lock.locked():  # else it is the game a launch replaces
            self._game_pid, self._pid_wanted = None, False

    def _is_pause_echo(self, body: Args) -> bool:
        return (
            body.get("reason") == "exception"
            and not body.get("text")
            and self._stop is not None
            and self._stop.reason == "paused"
        )

    def _append(self, name: str, body: Args) -> None:
        if self._held is not None:
            self._held.append((name, body, None))
        else:
            self.events.append(name, body)

    async def _announce_hits(self, stop: StopInfo) -> None:
        """Announce a breakpoint stop, then what came after it, in order; a later
        breakpoint stop among those is announced the same way in its turn."""
        pending: StopInfo | None = stop
        try:
            while pending is not None:
                body = await self._hit_body(pending)
                self.events.append("stopped", body)
                pending = self._release_until_next_hit()
        finally:
            # Cancelled (the sidecar stops): whatever is held still goes out.
            for name, later, _ in self._held or []:
                self.events.append(name, later)
            self._held = None

    def _release_until_next_hit(self) -> StopInfo | None:
        """Log the held events up to the next breakpoint stop, which is returned."""
        held = self._held or []
        for i, (name, body, stop) in enumerate(held):
            if stop is not None:
                self._held = held[i + 1 :]
                return stop
            self.events.append(name, body)
        self._held = None
        return None

    async def _hit_body(self, stop: StopInfo) -> Args:
        """A breakpoint stop with where it is and whose breakpoint it was: read while it
        is the current stop, else (the game ran on already) without its place."""
        # Godot's ids are not the ones agents were given: ours, from the place.
        body = {**stop.body, "hitBreakpointIds": [], "hit_by": []}
        if self._stop is not stop:
            return body
        try:
            trace = await asyncio.wait_for(self._trace(SIDECAR, THREAD_ID), HIT_WAIT)
        except (BridgeError, asyncio.TimeoutError) as err:
            log.info("breakpoint stop announced without its place: %r", err)
            return body
        if self._stop is stop:  # else the trace may be the next stop's
            body.update(self._where(trace.get("stackFrames") or [], hit=True))
        return body

    def _where(self, frames: list[Args], *, hit: bool = False) -> Args:
        """The top frame's place, and the agents with a breakpoint right there (and, for
        a breakpoint stop, the bridge's id of that breakpoint)."""
        if not frames or not isinstance(frames[0], dict):
            return {}
        top = frames[0]
        source = top.get("source") if isinstance(top.get("source"), dict) else {}
        raw = source.get("path")
        line = top.get("line")
        if not isinstance(raw, str) or not isinstance(line, int):
            return {}
        path = os.path.realpath(raw)
        bps = self._files.get(path)
        hit_by = sorted(
            agent
            for agent, lst in (bps.by_agent.items() if bps is not None else ())
            if any(b.line == line for b in lst)
        )
        place: Args = {"source": {"path": self._shown(path)}, "line": line, "hit_by": hit_by}
        if hit or hit_by:
            place["hitBreakpointIds"] = [self.breakpoint_id(path, line)]
        return place

    def _on_custom_data(self, body: Args) -> None:
        message = str(body.get("message", ""))
        data = body.get("data") if isinstance(body.get("data"), list) else []
        if message == "set_pid" and self._pid_wanted and data and isinstance(data[0], int):
            # Ours only: a game started from the editor's Play button is the editor's.
            self._game_pid, self._pid_wanted = data[0], False
        self.custom_data.append(message, {"data": data})

    def _forget_stop(self) -> None:
        """Frame and variable ids die with the stop that made them."""
        self._stop = None
        self._epoch += 1
        self._trace_cache.clear()
        self._frame_scopes.clear()
        self._refs.clear()
        self._frame_self.clear()

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

    def _require_connected(self) -> None:
        """Checked once the arguments are known to be good: a bad request is a 400
        whatever the adapter's state. Our idea of the game is stale while it is away."""
        if not self.peer.connected:
            raise self.peer.unavailable()

    async def launch(
        self, agent: str, scene: str = "main", no_debug: bool = False, play_args: Sequence[str] = ()
    ) -> Args:
        """Run `scene` (main, current or a scene file) under the debugger."""
        scene = self._scene(scene)
        self._require_connected()
        play_args = [*play_args, *(a for a in self.play_args if a not in play_args)]
        arguments: Args = {
            "project": self.project,
            "scene": scene,
            "noDebug": no_debug,
            # The game's messages: its pid (to end it if the editor dies) and errors.
            "godot/custom_data": True,
        }
        if play_args:
            arguments["playArgs"] = play_args
        return await self._launch(agent, arguments, scene)

    async def _launch(self, agent: str, arguments: Args, scene: str) -> Args:
        # Godot keeps one pending launch per connection: two interleaved would lose one.
        self._launches += 1
        async with self._launch_lock:
            if self._running:
                await self._end_game(agent)
            await self._sync_breakpoints(agent)
            async with self.scheduler.slot(agent):
                # Only now: the old game's end (above) forgets any pid still wanted.
                self._game_pid, self._pid_wanted = None, True
                try:
                    launch = self.peer.issue("launch", arguments)
                except BridgeError:
                    self._pid_wanted = False
                    raise
                done = self._issue_quietly("configurationDone")
                answers = await asyncio.gather(
                    self.peer.answer(launch, self.timeout),
                    self._answer(done),
                    return_exceptions=True,
                )
        try:
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            body = _body_or_raise(answers[0], "launch")
            _body_or_raise(answers[1], "configurationDone")
        except BaseException:
            self._pid_wanted = False  # no game of ours is coming
            raise
        # `running` follows Godot's `process` event, which comes before this answer; a
        # game that died at once has already sent `exited` too.
        return {**body, "scene": scene}

    async def _end_game(self, agent: str) -> None:
        """Stop the running game first: Godot forgets its breakpoints when a game ends
        and would not announce the new game's stops if that happened mid-launch."""
        since, pid = self.events.latest, self._game_pid
        await self._godot(agent, "terminate", None)
        # Godot sends `exited`, then `terminated`: the launch waits for the last of them,
        # which would otherwise arrive after it and be taken for the new game's end.
        await self._confirm_end(since, pid, agent, self._launches, TERMINATED)

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

    async def set_breakpoints(self, agent: str, source: str, lines: Sequence[int]) -> Args:
        """Replace `agent`'s breakpoints (1-based lines) in the script `source`."""
        path = to_project_path(self.project, source, script=True)
        self._require_connected()
        return await self._set_breakpoints(agent, path, [SourceBreakpoint(n) for n in lines])

    async def _set_breakpoints(self, agent: str, path: str, wanted: list[SourceBreakpoint]) -> Args:
        bps = self._files.setdefault(path, _FileBreakpoints())
        async with bps.lock:
            # A request of a connection that has closed meanwhile keeps nothing.
            if wanted and agent not in self._departed:
                bps.by_agent[agent] = wanted
            else:
                bps.by_agent.pop(agent, None)
            text = _read_lines(path)
            union = bps.union(len(text))
            body = await self._godot(agent, "setBreakpoints", _set_args(path, union))
        by_line = {b.get("line"): b for b in body.get("breakpoints", []) if isinstance(b, dict)}
        return {"breakpoints": [self._own(b, by_line.get(b.line), path, text) for b in wanted]}

    def _own(self, bp: SourceBreakpoint, godot: Args | None, path: str, text: list[str]) -> Args:
        """Godot's answer for one of the agent's lines, with the bridge's id for it."""
        own = {"id": self.breakpoint_id(path, bp.line), "line": bp.line}
        why = _never_stops(text, bp.line)
        if godot is not None and why is None:
            return {**godot, **own, "verified": bool(godot.get("verified", False))}
        if why is None:
            why = (
                "Godot did not accept this breakpoint (the editor may have an older "
                "version of the file loaded)"
            )
        return {**(godot or {}), **own, "verified": False, "source": {"path": path}, "message": why}

    def breakpoint_id(self, path: str, line: int) -> int:
        """The bridge's id of a breakpoint line, the same in every answer and event."""
        key = (os.path.realpath(path), line)
        found = self._bp_ids.get(key)
        if found is None:
            found = self._bp_ids[key] = len(self._bp_ids) + 1
        return found

    def _own_breakpoint_event(self, body: Args) -> Args:
        """Godot's `breakpoint` event with the bridge's id for its line."""
        bp = body.get("breakpoint")
        source = bp.get("source") if isinstance(bp, dict) else None
        path = source.get("path") if isinstance(source, dict) else None
        if not isinstance(path, str) or not isinstance(bp.get("line"), int):
            return body
        return {**body, "breakpoint": {**bp, "id": self.breakpoint_id(path, bp["line"])}}

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

    async def clear_breakpoints(
        self, agent: str, source: str | None = None, everyone: bool = False
    ) -> Args:
        """The agent's breakpoints (one file or all), or everyone's in one file (`source`
        is needed then). Works offline: the next connection gets the union anyway."""
        if source is None:
            paths, where = list(self._files), None
        else:
            path = to_project_path(self.project, source, must_exist=False)
            paths, where = [path], to_res_path(self.project, path)
        cleared = await self._remove(paths, None if everyone else agent, strict=True)
        if cleared:
            self._append(
                "breakpoints_cleared",
                {"by": agent, "path": where, "everyone": everyone, "cleared": cleared},
            )
        return {"cleared": cleared}

    async def forget_agent(self, identity: str) -> None:
        """Drop every breakpoint of `identity` (its connection or MCP session ended)."""
        cleared = await self._remove(list(self._files), identity, strict=False)
        if cleared:
            self._append(
                "breakpoints_cleared",
                {
                    "by": SIDECAR,
                    "path": None,
                    "everyone": False,
                    "cleared": cleared,
                    "reason": f"'{identity}' left (its connection or session ended)",
                },
            )

    def announce(self, event: str, body: Args) -> None:
        """An event of the bridge's own in the log every agent reads (held like Godot's
        while a breakpoint stop is being announced, so the order stays true)."""
        self._append(event, body)

    def agent_left(self, agent: Agent) -> None:
        """AgentRegistry's hook: the breakpoints a connection set without X-Agent-Id (as
        `client-<id>`, even if it named itself later) go with it."""
        identity = agent.scoped_identity
        # Remembered first: a setBreakpoints of that connection still waiting for a
        # file's lock must not add lines after forget_agent went past that file.
        self._departed.add(identity)
        self._spawn(self.forget_agent(identity))

    async def _remove(self, paths: list[str], agent: str | None, *, strict: bool) -> list[Args]:
        """Take `agent`'s (None: everyone's) breakpoints out of `paths`; Godot gets the rest."""
        cleared: list[Args] = []
        for path in paths:
            bps = self._files.get(path)
            if bps is None:
                continue
            async with bps.lock:
                owners = list(bps.by_agent) if agent is None else [agent]
                gone = [(a, bps.by_agent.pop(a)) for a in owners if a in bps.by_agent]
                if not gone:
                    continue
                res = to_res_path(self.project, path)
                cleared += [
                    {"path": res, "agent": a, "lines": [b.line for b in lst]} for a, lst in gone
                ]
                if not self.peer.connected:
                    continue  # the next connection sends Godot the union anyway
                union = _set_args(path, bps.union(_line_count(path)))
                try:
                    await self._godot(agent or SIDECAR, "setBreakpoints", union)
                except BridgeError as err:
                    if strict:
                        raise
                    log.warning("could not take breakpoints out of %s: %s", res, err.message)
        return cleared

    async def continue_(self, agent: str, thread: int = THREAD_ID) -> Args:
        self._require_connected()
        async with self._exec_lock:
            await self._stopped("continue")
            body = await self._resume(agent, "continue", thread)
        return {"allThreadsContinued": True, **body}

    async def pause(self, agent: str, thread: int = THREAD_ID) -> Args:
        self._require_connected()
        async with self._exec_lock:
            # Without a game Godot still announces a bogus "stopped" event.
            self._require_running("pause")
            if self._stop is not None:
                return {"alreadyStopped": True}
            return await self._godot(agent, "pause", {"threadId": thread})

    async def next(self, agent: str, thread: int = THREAD_ID) -> Args:
        return await self._step(agent, "next", thread)

    async def step_in(self, agent: str, thread: int = THREAD_ID) -> Args:
        return await self._step(agent, "stepIn", thread)

    async def _step(self, agent: str, command: str, thread: int) -> Args:
        self._require_connected()
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

    async def step_out(self, agent: str, thread: int = THREAD_ID) -> Args:
        """`next` until the game is back in the caller (Godot has no stepOut).

        Back in the caller means the stack is the old one less its top frame (by function
        and script; the caller's line moves on). A caller with nothing left to run after
        the call returns too, and `next` then stops wherever the game runs a line next,
        maybe in code that was not on the stack at all: the answer says so.
        """
        self._require_connected()
        deadline = time.monotonic() + self.timeout
        async with self._exec_lock:
            await self._stopped("stepOut")
            start = await self._frames(agent, thread)
            if len(start) <= 1:
                # Leaving the outermost frame means running on: that is a continue.
                await self._resume(agent, "continue", thread)
                return {"steps": 0, "continued": True}
            callers = _frame_keys(start[1:])
            for steps in range(1, STEP_OUT_LIMIT + 1):
                stop = await self._step_and_wait(agent, thread, deadline)
                if stop is None or stop.event != "stopped":
                    return {"steps": steps, "stopped": False}
                if stop.body.get("reason") != "step":
                    return {"steps": steps, "stopped": True, "reason": stop.body.get("reason")}
                now = await self._frames(agent, thread)
                keys = _frame_keys(now)
                if keys == callers:
                    return {"steps": steps, "stopped": True, "in_caller": True}
                if len(keys) > len(callers) and keys[-len(callers) :] == callers:
                    continue  # still in the function being stepped out of (or deeper)
                return {"steps": steps, "stopped": True, **self._past_the_caller(start, now)}
        return {"steps": STEP_OUT_LIMIT, "stopped": True, "limitReached": True}

    def _past_the_caller(self, start: list[Args], now: list[Args]) -> Args:
        """What a stepOut that did not stop in the caller did instead, in words too."""
        callee, caller = start[0].get("name"), start[1].get("name")
        keys, old = _frame_keys(now), _frame_keys(start[2:])
        returned = (
            f"'{callee}' returned, and so did its caller '{caller}' (nothing of it ran "
            "after the call)"
        )
        if not now:
            text = f"{returned}; the game stopped outside any script"
        elif keys == old[len(old) - len(keys) :]:
            text = f"{returned}; stopped further down the old stack, in {self._place(now[0])}"
        else:
            text = (
                f"{returned}; the game stopped at the next line it ran, in "
                f"{self._place(now[0])}, which was not on the stack"
            )
        return {"in_caller": False, "returned": True, "caller_finished": True, "text": text}

    def _place(self, frame: Args) -> str:
        source = frame.get("source") if isinstance(frame.get("source"), dict) else {}
        path = str(source.get("path") or "?")
        return f"'{frame.get('name')}' ({self._shown(path)}:{frame.get('line')})"

    def _shown(self, path: str) -> str:
        """A path as agents see it: res:// inside the project, else as Godot gave it."""
        if not os.path.isabs(path):
            return path
        real = os.path.realpath(path)
        return to_res_path(self.project, real) if _inside(self.project, real) else path

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

    async def stack_trace(
        self, agent: str, thread: int = THREAD_ID, start: int = 0, levels: int = 0
    ) -> Args:
        """Frames from `start` (0: the top one), at most `levels` of them (0: all)."""
        self._require_connected()
        frames = await self._frames(agent, thread)
        end = start + levels if levels > 0 else None
        return {"stackFrames": frames[start:end], "totalFrames": len(frames)}

    async def scopes(self, agent: str, frame: int) -> Args:
        self._require_connected()
        await self._stopped("scopes")
        await self._require_frame(agent, frame, "scopes")
        async with self._frame_lock:
            return await self._load_frame(agent, frame)

    async def _require_frame(self, agent: str, frame: int, command: str) -> None:
        """`frame` must be one of this stop's frames, checked here: asked to evaluate in
        a frame that does not exist, Godot lets the game run on and times out."""
        frames = await self._frames(agent, THREAD_ID)
        if not frames:
            raise RequestError(
                f"'{command}' needs a frame, and the game stopped outside any script (a "
                "pause between frames has no stack). Set a breakpoint and continue, or "
                "step, to stop inside a script",
                status=409,
                code="not_stopped",
                details={"command": command, "frames": 0},
            )
        if not 0 <= frame < len(frames):
            raise RequestError(
                f"no frame {frame}: the stack has {len(frames)} frame(s), ids 0 to "
                f"{len(frames) - 1}; see /debug/stackTrace",
                code="invalid_field",
                details={"field": "frameId"},
            )

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
            self._refs.update(refs)
        return body

    async def variables(
        self,
        agent: str,
        ref: int,
        *,
        filter: str | None = None,
        start: int | None = None,
        count: int | None = None,
    ) -> Args:
        """The children of a reference handed out this stop (DAP's paging as given)."""
        self._require_connected()
        paging = {"filter": filter, "start": start, "count": count}
        extra = {k: v for k, v in paging.items() if v is not None}
        stop = await self._stopped("variables")
        if ref not in self._refs:
            # Godot would look for an unknown id in vain for seconds: answer at once.
            raise RequestError(
                f"variablesReference {ref} was not handed out during this stop; take one "
                "from /debug/scopes, a variable or an evaluate result of the current stop "
                "(ids die when the game runs on)",
                code="invalid_field",
                details={"field": "variablesReference"},
            )
        key = f"variables:{stop.epoch}:{ref}:{json.dumps(extra, sort_keys=True)}"
        body = await self._shared(key, lambda: self._variables(agent, ref, extra))
        self._hand_out(stop, body.get("variables"))
        return body

    def _hand_out(self, stop: StopInfo, items: Any) -> None:
        """Remember the child references of variables given to an agent this stop."""
        if self._stop is not stop or not isinstance(items, list):
            return
        for item in items:
            ref = item.get("variablesReference") if isinstance(item, dict) else None
            if isinstance(ref, int) and not isinstance(ref, bool) and ref > 0:
                self._refs.add(ref)

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

    async def evaluate(
        self, agent: str, expression: str, frame: int = 0, context: str | None = None
    ) -> Args:
        """`expression` in `frame` (explicit: without a frameId Godot uses whichever
        frame was inspected last)."""
        self._require_connected()
        arguments: Args = {"expression": expression, "frameId": frame}
        if context is not None:
            arguments["context"] = context
        # Godot defers evaluate until the game answers: with the game running that
        # stalls every request on the connection for seconds.
        stop = await self._stopped("evaluate")
        await self._require_frame(agent, frame, "evaluate")
        if not await self._has_instance(agent, frame):
            raise RequestError(
                f"frame {frame} is a static function (no self): Godot evaluates only in "
                "frames with an instance, and would let the game run on; use another "
                "frameId (see /debug/stackTrace) or read its locals with /debug/scopes",
                code="invalid_field",
                details={"field": "frameId"},
            )
        # Godot files results under the expression's text: one evaluation at a time.
        async with self._eval_lock:
            self._require_stopped("evaluate")
            since = self.custom_data.latest
            body = await self._godot(agent, "evaluate", arguments)
            error = await self._evaluation_error(expression, since)
        if error is not None:
            raise RequestError(
                f"evaluating '{expression}' failed in the game: {error}",
                status=422,
                code="evaluate_failed",
                details={"expression": expression, "godot_message": error},
            )
        self._hand_out(stop, [body])
        return body

    async def _has_instance(self, agent: str, frame: int) -> bool:
        """Whether the frame has a `self` (the game lists it first among its members)."""
        known = self._frame_self.get(frame)
        if known is not None:
            return known
        epoch = self._epoch
        async with self._frame_lock:
            scopes = (await self._load_frame(agent, frame)).get("scopes") or []
        refs = [s.get("variablesReference") for s in scopes if isinstance(s, dict)]
        if len(refs) < 2 or not isinstance(refs[1], int):
            return True  # no Members scope to look at: let Godot try
        members = (await self._variables(agent, refs[1], {})).get("variables") or []
        has = any(isinstance(v, dict) and v.get("name") == "self" for v in members)
        if self._epoch == epoch:
            self._frame_self[frame] = has
        return has

    async def _evaluation_error(self, expression: str, since: int) -> str | None:
        """The game's message when an evaluation failed, None when it gave a value.

        A failed evaluation comes back as a null `evaluation_return`; the game sends the
        error that explains it on its next debug-loop turn, before anything else.
        """
        if self.custom_data.latest == 0:
            return None  # this Godot forwards no game messages: nothing to wait for
        deadline = time.monotonic() + EVAL_ERROR_WAIT
        returned = None
        while returned is None:
            event = await self.custom_data.next_of(
                since, EVALUATION_RETURN, deadline - time.monotonic()
            )
            if event is None:
                return None  # no custom data on this connection: nothing to tell
            since = event.seq
            data = event.body.get("data") or []
            if data and data[0] == expression:
                returned = data
        if len(returned) < 4 or returned[3] is not None:
            return None  # a value: an evaluation that failed returns null
        while True:
            nxt = await self.custom_data.next_of(since, ANY_MESSAGE, deadline - time.monotonic())
            if nxt is None:
                return None  # a real null
            since = nxt.seq
            if nxt.event == "error":
                return _error_text(nxt.body.get("data") or [])
            if not nxt.event.startswith(BACKGROUND_MESSAGES):
                return None  # the game went on to something else: a real null

    async def threads(self, agent: str) -> Args:
        self._require_connected()
        return await self._shared("threads", lambda: self._godot(agent, "threads", None))

    async def terminate(self, agent: str) -> Args:
        self._require_connected()
        # Not behind the execution lock: terminating must cut a long stepOut short.
        running, pid, since = self._running, self._game_pid, self.events.latest
        launches = self._launches
        body = await self._godot(agent, "terminate", None)
        if running:
            await self._confirm_end(since, pid, agent, launches)
        return body

    async def _confirm_end(
        self,
        since: int,
        pid: int | None,
        agent: str,
        launches: int,
        kinds: frozenset[str] = ENDED,
    ) -> None:
        """Make sure the end of the game is announced and our state says so.

        Godot announces `terminated` only for a game whose debugger session was up: one
        terminated right after launch just dies. Once the game we know is gone, or Godot
        stayed silent for TERMINATE_WAIT, the bridge announces the end itself.
        """
        deadline = time.monotonic() + TERMINATE_WAIT
        while time.monotonic() < deadline:
            if await self.events.next_of(since, kinds, 0.1) is not None:
                return
            if await asyncio.to_thread(self._game_gone, pid):
                break
        if not await asyncio.to_thread(self._game_gone, pid):
            log.warning("the game (pid %s) may still run after terminate: not ended", pid)
            return
        if not self._running or self._launches != launches:
            return  # a new launch or another terminate settled it meanwhile
        self._game_ended()
        self._append(
            "terminated",
            {
                "reason": "inferred",
                "by": agent,
                "pid": pid,
                "text": "the game ended after a terminate, but Godot announced no end (its "
                "debugger session had not started yet): announced by the bridge",
            },
        )

    def _game_gone(self, pid: int | None) -> bool:
        """Whether the game really ended: the one we know by its `set_pid`, else any
        game the editor runs on this project; unknown (no editor pid) is not gone."""
        editor = self._editor.pid if self._editor is not None else None
        if pid is not None:
            return not is_game_of(cmdline(pid), self.project, self._game_exe, editor)
        if editor is None:
            return False  # no process to look at: only Godot's own event says so
        return not games_of(editor, self.project, self._game_exe)

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
        # Godot reads `checksums` unconditionally and prints a "Bug" error without it.
        "source": {"path": path, "name": os.path.basename(path), "checksums": []},
        "breakpoints": [{"line": n} for n in lines],
    }


def _frame_keys(frames: list[Args]) -> list[tuple[Any, Any]]:
    """Frames as (function, script): what stays the same while a frame runs on."""
    keys = []
    for frame in frames:
        source = frame.get("source") if isinstance(frame.get("source"), dict) else {}
        keys.append((frame.get("name"), source.get("path")))
    return keys


def _inside(project: str, path: str) -> bool:
    return os.path.commonpath([project, path]) == project


def _error_text(data: list[Any]) -> str:
    """The message of a game `error`: [h, m, s, ms, file, function, line, error,
    description, is_warning, ...]; the description says it best when there is one."""
    description = data[8] if len(data) > 8 else ""
    error = data[7] if len(data) > 7 else ""
    return str(description or error or "the game reported an error")


# -- a game the editor left behind ---------------------------------------------------


async def end_game_process(
    pid: int, project: str, exe: str | None = None, editor_pid: int | None = None
) -> bool:
    """SIGTERM, then SIGKILL, the game `pid` as long as it still is this editor's game
    on our project (checked before each signal: the pid may be reused meanwhile)."""
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        if not is_game_of(cmdline(pid), project, exe, editor_pid):
            return True  # ended, or the pid now belongs to someone else
        log.info("ending the game (pid %d) launched through the bridge: %s", pid, sig.name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + GAME_KILL_WAIT
        while time.monotonic() < deadline:
            if not cmdline(pid):
                return True
            await asyncio.sleep(0.05)
    return not is_game_of(cmdline(pid), project, exe, editor_pid)


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def _line_count(path: str) -> int:
    return len(_read_lines(path))


def _never_stops(text: list[str], line: int) -> str | None:
    """Why the game can never stop at `line` of a script, or None if it may."""
    if line > len(text):
        return f"line {line} is past the end of the file ({len(text)} lines)"
    content = text[line - 1]
    if not NEVER_RUNS.fullmatch(content):
        return None
    if not content.strip():
        what = "blank"
    elif content.strip().startswith("#"):
        what = "a comment"
    else:
        what = f"a declaration ('{content.strip()}') that runs no code"
    return (
        f"line {line} is {what}: the game never stops there; put the breakpoint on a "
        "line of code that runs"
    )

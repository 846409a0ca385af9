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
- Godot ignores a breakpoint's `condition`, `hitCondition` and `logMessage`: at each
  breakpoint stop the bridge decides, agent by agent, in the stopped frame (hits.py), and
  lets a stop nobody wants run on unseen (no `stopped`, Godot's `continued` kept out).

Agents' requests reach Godot through a small fair scheduler: a bounded number in flight,
taken round-robin per agent, so a chatty or slow agent does not starve the others.

`DapSession` is the façade the API calls, with typed arguments (the operations in
api/debug.py parse the requests). Its collaborators, each in its own module: the game's
state (game.py), the inspector of a stop (inspector.py), the breakpoint book
(breakpoints.py), the decision at a conditional breakpoint (hits.py), Godot's answers
mapped onto ours (answers.py), the event log (events.py), the fair scheduler
(godot/scheduler.py, shared with the LSP session) and project paths (paths.py). None of
them knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sidecar.agents import Agent
from sidecar.config import Config
from sidecar.errors import PeerTimeout, ProtocolError, RequestError, SidecarError
from sidecar.godot.dap.answers import as_dict, body_or_raise, godot_message
from sidecar.godot.dap.breakpoints import (
    SIDECAR,
    BreakpointBook,
    SourceBreakpoint,
    read_lines,
    set_args,
)
from sidecar.godot.dap.events import DebugEvent, EventLog
from sidecar.godot.dap.game import ENDED, TERMINATE_WAIT, TERMINATED, GameState, StopInfo
from sidecar.godot.dap.hits import AgentHit, ExpressionError, decide, needs_deciding
from sidecar.godot.dap.inspector import THREAD_ID, Inspector, frame_keys
from sidecar.godot.dap.paths import shown, to_project_path, to_res_path
from sidecar.godot.game.channel import GameChannel
from sidecar.godot.game.hands import GameHands
from sidecar.godot.game.records import GameRecords
from sidecar.godot.identity import ProcessWatch
from sidecar.godot.peer import Call, DapCorrelation, Peer
from sidecar.godot.scheduler import FairScheduler
from sidecar.godot.service import ServiceStatus

log = logging.getLogger(__name__)

STEP_OUT_LIMIT = 200
STOP_BUDGET = 1.0  # seconds the sidecar may spend tidying up on its way out
HIT_WAIT = 1.0  # for the stack naming a breakpoint stop's agents, before announcing it
RECOVER_WAIT = 0.6  # for the stack a stopped game sends again after a reconnect
QUIET_WAIT = 1.0  # after a silent hit, for the next one before ending the game
GHOST_PROBE = 0.3  # after a breakpoint line went, before looking for an unannounced stop
GHOST_LOOKS = 3
SWALLOW_WAIT = 1.0  # for Godot's `continued` after our own continue (a pause waits for it)

Args = dict[str, Any]


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
        self._exec_lock = asyncio.Lock()
        self._resync: asyncio.Task[None] | None = None
        # The game's debugger messages (`godot/custom_data`), kept apart from the log.
        self.custom_data = EventLog(256)
        self.game_channel = GameChannel(self)  # the scene tree and inspection (issue 13)
        self.game_records = GameRecords()  # its errors and monitors, read by agents
        self.game_hands = GameHands(self, self.game_channel)  # input, evaluate (issue 14)
        self.before_launch: Callable[[], Awaitable[None]] | None = None  # awaited first
        editor = config.editor_pid
        self.game = GameState(
            self.project,
            self.events,
            ProcessWatch(editor) if editor is not None else None,
            on_forget=lambda: self.inspector.forget(),
        )
        self.inspector = Inspector(
            self.game,
            lambda agent, command, arguments: self._godot(agent, command, arguments),
            self.custom_data,
        )
        self.book = BreakpointBook(
            self.project,
            lambda agent, arguments: self._godot(agent, "setBreakpoints", arguments),
            lambda: self.peer.connected,
        )
        # While a breakpoint stop waits for the agents it names, later events wait too;
        # a later breakpoint stop among them (its StopInfo) is announced in its turn.
        self._held: list[tuple[str, Args, StopInfo | None]] | None = None
        # A breakpoint stop not announced yet: to agents the game still runs (hits.py).
        self._deciding: StopInfo | None = None
        self._pause_by: str | None = None  # asked to pause while a stop was being decided
        self._silently: asyncio.Future[None] | None = None  # our own continue, in flight
        self._swallow_continued = False  # Godot's `continued` for our own continue
        self._swallowed = asyncio.Event()  # ... has come (or a stop came instead)
        self._deciding_now: asyncio.Future[None] | None = None  # _decide at work
        self._ending = 0  # terminates under way: ask the game nothing more
        self._last_silent = 0.0  # when the game was last let run on by the bridge
        # A continue or step was sent and Godot's `continued` has not come: until it does,
        # Godot still answers stackTrace with the old stop's frames.
        self._continue_pending = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._recovering: asyncio.Future[Any] | None = None  # _recover_stop of this link

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
        self._ending += 1  # a stop being decided asks nothing more: let it finish
        with contextlib.suppress(asyncio.TimeoutError):
            if self._deciding_now is not None:
                await asyncio.wait_for(asyncio.shield(self._deciding_now), STOP_BUDGET)
        for task in list(self._tasks):
            task.cancel()
        if self.peer.connected and self.book.files:
            # The editor keeps breakpoints after we leave; they would stop the user's runs.
            take_out = self.book.take_out(lambda args: self.peer.request("setBreakpoints", args))
            with contextlib.suppress(SidecarError, asyncio.TimeoutError):
                await asyncio.wait_for(take_out, STOP_BUDGET)
        await self.peer.disconnect("sidecar stopping")
        await self.game.end_if_orphaned()

    async def connect(self, wait: float | None = None) -> bool:
        return await self.peer.connect(wait)

    async def disconnect(
        self, reason: str = "disconnected on request", *, resume_after: float | None = None
    ) -> None:
        await self.peer.disconnect(reason, resume_after=resume_after)

    @property
    def stopped(self) -> StopInfo | None:
        return self.game.stop

    @property
    def running(self) -> bool:
        return self.game.running

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
            raise ProtocolError(f"Godot refused initialize: {godot_message(answer)}")
        # initialize cleared the editor's breakpoints: put the agents' back.
        for path, lines in self.book.unions():
            if lines:
                await peer.request("setBreakpoints", set_args(path, lines), handshake=True)
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
        with contextlib.suppress(SidecarError):
            peer.send(peer.correlation.request(0, "launch", args))

    async def _recover_stop(self) -> None:
        """After a (re)connect the game may still sit at a breakpoint: find out, say so.

        Godot forgets the stack when its last DAP client leaves; the stopped game sends
        it again when asked (`get_stack_dump`, what the editor asks at every stop). A game
        stopped between frames has no stack, but the editor keeps asking it to redraw
        (`servers:drawn`), which only a stopped game does.
        """
        launches = self.game.launches
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
                while not frames and time.monotonic() < deadline and self.game.stop is None:
                    await asyncio.sleep(0.05)
                    frames = await self._godot_frames()
            if frames:
                # Godot answers ahead of the events it has queued: give a stop that
                # is just happening the time to announce itself.
                await asyncio.sleep(0.2)
        except SidecarError as err:
            log.info("could not look for a stopped game after connecting: %s", err.message)
            return
        drawn = any(e.event == "servers:drawn" for e in self.custom_data.after(since)[0])
        if not (frames or drawn) or self.game.stop is not None or self.game.launches != launches:
            return  # running, no game, or a stop or launch of its own meanwhile
        self.game.forget_stop()
        body: Args = {"reason": "recovered", "threadId": THREAD_ID, "description": "Recovered"}
        self.game.stopped_now("recovered", body)
        if frames:
            self.inspector.cache_trace(self.game.epoch, frames)
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
        self._continue_pending = False
        if self._recovering is not None:
            # It looked at the lost link's game: a stop it found there is no longer true.
            self._recovering.cancel()
            self._recovering = None
        self.game.lost()

    def _on_event(self, msg: Args) -> None:
        if msg.get("type") != "event":
            return
        name = str(msg.get("event", ""))
        body = as_dict(msg.get("body"))
        if name == "godot/custom_data":
            self._on_custom_data(body)
            return  # the game's own chatter (a profile frame a second): not agent news
        if name in ("stopped", "continued", *ENDED):
            self._continue_pending = False
        if name == "stopped":
            if self.game.is_pause_echo(body):
                # Godot announces a pause twice: `paused`, then, once the game is in its
                # debug loop, an `exception` with no text. One stop, not two.
                self.inspector.forget_trace()  # the stack may only now be there
                return
            if self._swallow_continued:  # no `continued` came for ours: not the next
                self._swallow_continued = False
                self._swallowed.set()
            paused = self.game.stop is not None and self.game.stop.reason == "paused"
            stop = self.game.stopped_now(str(body.get("reason", "")), body)
            # Godot announces a pause at once; a game that hit a breakpoint before the
            # pause reached it stops there instead: that stop is the pause's.
            stop.after_pause = paused
            if body.get("reason") == "breakpoint":
                if self._held is None:
                    self._held = []
                    self._spawn(self._announce_hits(stop))
                else:
                    self._held.append(("stopped", body, stop))
                return
        elif name == "continued":
            self.game.forget_stop()
            if self._swallow_continued:
                # The bridge let the game run on by itself: nobody saw it stop.
                self._swallow_continued = False
                self._swallowed.set()
                return
        elif name in ENDED:
            self.game.ended()
            # Godot's adapter clears its breakpoint list when a game ends; the editor
            # keeps them, but stops at them would no longer be announced.
            self._resync_soon()
        elif name == "breakpoint":
            body = self.book.own_event(body)
        elif name in ("process", "output"):
            self.game.running = True  # output comes from the game, even one the editor started
            if name == "process" and isinstance(body.get("name"), str):
                self.game.game_exe = body["name"]
        # stopped, continued, output, breakpoint, process, terminated, exited, and
        # whatever else Godot may add; `initialized` only concerns the handshake.
        if name and name != "initialized":
            self._append(name, body)

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
                self._deciding = pending
                shown_body = await self._hit_shown(pending)
                self._deciding = self._pause_by = None
                if shown_body is not None:
                    self.events.append("stopped", shown_body)
                pending = self._release_until_next_hit()
        finally:
            self._deciding = self._pause_by = None
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

    async def _hit_shown(self, stop: StopInfo) -> Args | None:
        """The breakpoint stop as announced, or None: nobody wanted it (it ran on)."""
        if self._ending:
            return None  # the game is being ended: nobody is to look at this stop
        busy = self._deciding_now = asyncio.get_running_loop().create_future()
        try:
            body, place = await self._hit_body(stop)
            if place is None and self._paused_over(stop):
                return None  # the pause is announced: it holds the game here
            return body if place is None else await self._decide(stop, body, *place)
        finally:
            self._deciding_now = None
            busy.set_result(None)

    def _paused_over(self, stop: StopInfo) -> bool:
        """Whether a pause came after this stop (Godot announces one at once, whatever
        the game is doing): the game sits here, and the pause says so."""
        now = self.game.stop
        return now is not None and now is not stop and now.reason == "paused"

    async def _hit_body(self, stop: StopInfo) -> tuple[Args, tuple[str, int] | None]:
        """A breakpoint stop with where it is and whose breakpoint it was: read while it
        is the current stop, else (the game ran on already) without its place. The
        place as (real path, line) too, when known."""
        # Godot's ids are not the ones agents were given: ours, from the place.
        body = {**stop.body, "hitBreakpointIds": [], "hit_by": []}
        if self.game.stop is not stop or self._ending:
            return body, None
        try:
            trace = await asyncio.wait_for(self.inspector.trace(SIDECAR, THREAD_ID), HIT_WAIT)
        except (SidecarError, asyncio.TimeoutError) as err:
            log.info("breakpoint stop announced without its place: %r", err)
            return body, None
        if self.game.stop is not stop:  # the trace may be the next stop's
            return body, None
        frames = trace.get("stackFrames") or []
        body.update(self._where(frames, hit=True))
        return body, top_place(frames)

    async def _decide(self, stop: StopInfo, body: Args, path: str, line: int) -> Args | None:
        """The stop as announced, or None when no agent wants it and the game was let
        run on (conditions, hit counts and logpoints: hits.py)."""
        here = self.book.at(path, line)
        if not here and self.book.just_removed(path, line):
            # The last breakpoint here went as the game was reaching it: nobody's stop.
            # (A line that never was an agent's is the editor's own breakpoint: shown.)
            return await self._unwanted(stop, body)
        if not needs_deciding(here):
            return body  # plain breakpoints, or only the editor's own: a stop as ever
        try:
            verdict = await decide(
                here,
                lambda agent: self.book.count_hit(agent, path, line),
                lambda expression: self._evaluate_at(stop, path, expression),
            )
        except SidecarError as err:
            # The stop went away (a terminate, a lost link) or Godot did not answer.
            log.info("breakpoint conditions at %s:%d not decided: %s", path, line, err.message)
            if self.game.stop is not stop:
                return None  # it ran on or ended meanwhile: nothing to show
            # Still there: shown (the game must not sit at a stop nobody knows of).
            return {
                **body,
                "text": f"the breakpoints' conditions here could not be decided: {err.message}",
            }
        where = {"source": body.get("source"), "line": line}
        for hit in verdict.logs:
            self.events.append("output", logpoint_output(hit, where, body))
        if verdict.stop:
            wanted = [h.as_json() for h in verdict.hits if h.stops]
            return {**body, "hit_by": verdict.stopped_for, "hits": wanted}
        return await self._unwanted(stop, body)

    async def _unwanted(self, stop: StopInfo, body: Args) -> Args | None:
        """A stop no agent wants: let run on (None), or as it is to be announced."""
        if self._pause_by is not None and self.game.stop is stop:
            # A pause asked for while this stop was being decided: this is that pause.
            return {
                **body,
                "reason": "paused",  # as Godot's own pause says
                "description": "Paused",
                "paused_by": self._pause_by,
                "hit_by": [],
                "hitBreakpointIds": [],
            }
        if stop.after_pause:
            return None  # the agents were told of the pause: this is where it holds
        if self._ending or await self._continue_silently(stop) or self.game.stop is not stop:
            return None
        return {**body, "text": "no agent wanted this stop, but the game could not be let run on"}

    async def _evaluate_at(self, stop: StopInfo, path: str, expression: str) -> str:
        """`expression` in the top frame of `stop`, for a condition or a logpoint."""
        if self.game.stop is not stop or self._ending:
            raise self.game.refusal("evaluate")
        frames = await self.inspector.frames(SIDECAR, THREAD_ID)
        name = frames[0].get("name") if frames else None
        try:
            answer = await self.inspector.evaluate(
                SIDECAR,
                expression,
                0,
                # Only a static function has no self: its name in the script says so.
                instance_known=name not in static_functions(path),
            )
        except RequestError as err:
            if err.code == "evaluate_failed":
                raise ExpressionError(str(err.details.get("godot_message") or err.message)) from err
            if err.code == "invalid_field":  # a static function's frame: no self
                raise ExpressionError(err.message) from err
            raise
        return str(answer.get("result", ""))

    async def _continue_silently(self, stop: StopInfo) -> bool:
        """Let the game run on from a stop no agent wanted, unseen: no `stopped`, and
        Godot's `continued` stays out of the log."""
        done = asyncio.get_running_loop().create_future()
        self._silently = done
        self._swallow_continued, self._swallowed = True, asyncio.Event()
        self._continue_pending = True
        try:
            await self._godot(SIDECAR, "continue", {"threadId": THREAD_ID})
            self._last_silent = time.monotonic()
            if self.game.stop is stop:
                self.game.forget_stop()
            return True
        except SidecarError as err:
            self._swallow_continued = False
            self._swallowed.set()
            log.warning("could not let the game run on after a silent hit: %s", err.message)
            return False
        finally:
            self._silently = None
            done.set_result(None)

    def _where(self, frames: list[Args], *, hit: bool = False) -> Args:
        """The top frame's place, and the agents with a breakpoint right there (and, for
        a breakpoint stop, the bridge's id of that breakpoint)."""
        top = top_place(frames)
        if top is None:
            return {}
        path, line = top
        hit_by = self.book.hit_by(path, line)
        place: Args = {"source": {"path": shown(self.project, path)}, "line": line}
        place["hit_by"] = hit_by
        if hit or hit_by:
            place["hitBreakpointIds"] = [self.book.breakpoint_id(path, line)]
        return place

    def _on_custom_data(self, body: Args) -> None:
        message = str(body.get("message", ""))
        data = body.get("data")
        data = data if isinstance(data, list) else []
        if message == "set_pid":
            self.game.took_pid(data)
        self.custom_data.append(message, {"data": data})
        self.game_channel.feed(message, data)
        self.game_records.feed(message, data)
        self.game_hands.feed(message, data)

    # -- talking to Godot ------------------------------------------------------------

    async def _godot(self, agent: str, command: str, arguments: Args | None) -> Args:
        """One request in the agent's turn; the response body, or the error it maps to."""
        async with self.scheduler.slot(agent):
            answer = await self.peer.request(command, arguments, timeout=self.timeout)
        return body_or_raise(answer, command)

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
        if self.before_launch is not None:  # the games' display, say
            await self.before_launch()
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
        self.game.launches += 1
        async with self.game.launch_lock:
            if self.game.running:
                await self._end_game(agent)
            await self.book.sync(agent)
            async with self.scheduler.slot(agent):
                # Only now: the old game's end (above) forgets any pid still wanted.
                self.game.game_pid, self.game.pid_wanted = None, True
                try:
                    launch = self.peer.issue("launch", arguments)
                except SidecarError:
                    self.game.pid_wanted = False
                    raise
                done = self._issue_quietly("configurationDone")
                answers = await asyncio.gather(
                    self.peer.answer(launch, self.timeout),
                    self._answer(done),
                    return_exceptions=True,
                )
        try:
            launched, configured = answers
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            assert not isinstance(launched, BaseException)  # raised above
            assert not isinstance(configured, BaseException)
            body = body_or_raise(launched, "launch")
            body_or_raise(configured, "configurationDone")
        except BaseException:
            self.game.pid_wanted = False  # no game of ours is coming
            raise
        # `running` follows Godot's `process` event, which comes before this answer; a
        # game that died at once has already sent `exited` too.
        return {**body, "scene": scene}

    async def _end_game(self, agent: str) -> None:
        """Stop the running game first: Godot forgets its breakpoints when a game ends
        and would not announce the new game's stops if that happened mid-launch."""
        since, pid = self.events.latest, self.game.game_pid
        async with self._no_decisions():
            await self._godot(agent, "terminate", None)
            # Godot sends `exited`, then `terminated`: the launch waits for the last of
            # them, which would otherwise arrive after it and be taken for the new game's.
            await self._confirm_end(since, pid, agent, self.game.launches, TERMINATED)

    @contextlib.asynccontextmanager
    async def _no_decisions(self) -> AsyncIterator[None]:
        """Around a terminate: a breakpoint stop being looked at asks the game nothing
        more, and what it asked is answered first. A stackTrace or evaluate Godot still
        holds when the game ends is never answered and stalls its adapter for ~5 s."""
        self._ending += 1
        try:
            busy = self._deciding_now
            if busy is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(busy), self.timeout)
            # A game ended between a break and the stack it sends leaves Godot's adapter
            # waiting for that stack: every stackTrace after it stalls the adapter ~5 s.
            # Hit by hit at a breakpoint nobody wants, the game breaks again at once:
            # it is ended once it sits at that stop.
            deadline = self._last_silent + QUIET_WAIT
            while time.monotonic() < deadline:
                if self.game.stop is not None or not self.game.running:
                    break
                await asyncio.sleep(0.01)  # a stop sets no event of its own meanwhile
            yield
        finally:
            self._ending -= 1

    def _resync_soon(self) -> None:
        if self._resync is not None and not self._resync.done():
            return
        if not self.book.files or not self.peer.connected:
            return
        self._resync = asyncio.create_task(self._resync_quietly())

    async def _resync_quietly(self) -> None:
        try:
            await self.book.sync(SIDECAR)
        except SidecarError as err:
            log.warning("could not restore breakpoints after the game ended: %s", err.message)

    def _issue_quietly(self, command: str) -> Call | None:
        try:
            return self.peer.issue(command)
        except SidecarError:
            return None  # the connection just dropped: launch's answer reports it

    async def _answer(self, call: Call | None) -> Args:
        if call is None:
            return {"success": True}
        return await self.peer.answer(call, self.timeout)

    def _scene(self, raw: str) -> str:
        if raw in ("main", "current"):
            return raw
        path = to_project_path(self.project, raw, field_name="scene")
        if not path.endswith((".tscn", ".scn")):
            raise RequestError(
                f"scene '{raw}' is not a scene file (.tscn or .scn)",
                code="invalid_field",
                details={"field": "scene"},
            )
        return to_res_path(self.project, path)

    async def set_breakpoints(
        self, agent: str, source: str, lines: Sequence[int | SourceBreakpoint]
    ) -> Args:
        """Replace `agent`'s breakpoints (1-based lines, or breakpoints with a condition,
        a hit condition or a log message) in the script `source`; their hit counts start
        again."""
        path = to_project_path(self.project, source, script=True)
        self._require_connected()
        wanted = [b if isinstance(b, SourceBreakpoint) else SourceBreakpoint(b) for b in lines]
        removals = self.book.removals
        try:
            return await self.book.set(agent, path, wanted)
        finally:
            self._look_for_ghosts(removals)

    def breakpoints(self, agent: str | None = None) -> dict[str, Any]:
        """Breakpoints held for Godot: per file, per agent (or one agent's only)."""
        return self.book.breakpoints(agent)

    async def clear_breakpoints(
        self, agent: str, source: str | None = None, everyone: bool = False
    ) -> Args:
        """The agent's breakpoints (one file or all), or everyone's in one file (`source`
        is needed then). Works offline: the next connection gets the union anyway."""
        if source is None:
            paths, where = list(self.book.files), None
        else:
            path = to_project_path(self.project, source, must_exist=False, script=True)
            paths, where = [path], to_res_path(self.project, path)
        removals = self.book.removals
        try:
            cleared = await self.book.remove(paths, None if everyone else agent, strict=True)
        finally:
            self._look_for_ghosts(removals)
        if cleared:
            self._append(
                "breakpoints_cleared",
                {"by": agent, "path": where, "everyone": everyone, "cleared": cleared},
            )
        return {"cleared": cleared}

    async def forget_agent(self, identity: str) -> None:
        """Drop every breakpoint of `identity` (its connection or MCP session ended)."""
        removals = self.book.removals
        cleared = await self.book.remove(list(self.book.files), identity, strict=False)
        self._look_for_ghosts(removals)
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

    def _look_for_ghosts(self, removals: int) -> None:
        """After a breakpoint line went while the game could run into it (it runs, or sits
        at a stop not announced yet), look for a stop Godot did not announce."""
        unseen = self.game.stop is None or self.game.stop is self._deciding
        if self.book.removals != removals and self.game.running and unseen:
            self._spawn(self._find_ghost())

    async def _find_ghost(self) -> None:
        """A breakpoint line taken out just as the game reached it: the game stops there,
        and Godot, no longer knowing a breakpoint there, announces nothing. The game would
        sit at that stop unseen; once it is found (the stack Godot holds) it is handled as
        any breakpoint stop (a line nobody has now: let run on)."""
        for _ in range(GHOST_LOOKS):
            await asyncio.sleep(GHOST_PROBE)
            if self.game.stop is self._deciding and self.game.stop is not None:
                continue  # the bridge is at it: look again once it let the game run on
            if self.game.stop is not None or not self.game.running or self._ending:
                return
            if self._continue_pending:
                continue  # Godot would answer with the last stop's frames
            try:
                frames = await self._godot_frames()
            except SidecarError:
                return
            ready = self.game.stop is None and not self._continue_pending and not self._ending
            if frames and ready and self.game.running:
                self.inspector.forget_trace()
                self._on_event(
                    {
                        "type": "event",
                        "event": "stopped",
                        "body": {"reason": "breakpoint", "threadId": THREAD_ID},
                    }
                )
                return

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
        self.book.departed.add(identity)
        self._spawn(self.forget_agent(identity))

    async def continue_(self, agent: str, thread: int = THREAD_ID) -> Args:
        self._require_connected()
        async with self._exec_lock:
            self._announced(await self.game.stopped("continue"), "continue")
            body = await self._resume(agent, "continue", thread)
        return {"allThreadsContinued": True, **body}

    async def pause(self, agent: str, thread: int = THREAD_ID) -> Args:
        self._require_connected()
        async with self._exec_lock:
            # Without a game Godot still announces a bogus "stopped" event.
            self.game.require_running("pause")
            if self._silently is not None:
                # The game is being let run on from a stop nobody wanted: pause it after.
                await asyncio.shield(self._silently)
            if self._swallow_continued:
                # ... and after Godot says it runs: a pause Godot announces before that
                # `continued` comes is undone by it (the game runs on).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._swallowed.wait(), SWALLOW_WAIT)
            if self.game.stop is not None and self.game.stop is self._deciding:
                # A breakpoint stop not announced yet: it is announced as this pause
                # unless an agent's breakpoint wants it anyway.
                self._pause_by = self._pause_by or agent
                return {}
            if self.game.stop is not None:
                return {"alreadyStopped": True}
            return await self._godot(agent, "pause", {"threadId": thread})

    async def next(self, agent: str, thread: int = THREAD_ID) -> Args:
        return await self._step(agent, "next", thread)

    async def step_in(self, agent: str, thread: int = THREAD_ID) -> Args:
        return await self._step(agent, "stepIn", thread)

    async def _step(self, agent: str, command: str, thread: int) -> Args:
        self._require_connected()
        async with self._exec_lock:
            self._announced(await self.game.stopped(command), command)
            return await self._resume(agent, command, thread)

    def _announced(self, stop: StopInfo, command: str) -> None:
        """A stop not announced yet (its breakpoints' conditions are being decided, and
        it may never be) is no stop to agents: to them the game runs."""
        if stop is self._deciding:
            raise self.game.refusal(command)

    async def _resume(self, agent: str, command: str, thread: int) -> Args:
        """continue / next / stepIn: afterwards the game runs until the next stop."""
        epoch = self.game.epoch
        self._continue_pending = True
        body = await self._godot(agent, command, {"threadId": thread})
        # The next `stopped` may have been read before we got here: keep that one.
        if self.game.epoch == epoch:
            self.game.forget_stop()
            self.game.stepping = command != "continue"
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
            self._announced(await self.game.stopped("stepOut"), "stepOut")
            start = await self.inspector.frames(agent, thread)
            if len(start) <= 1:
                # Leaving the outermost frame means running on: that is a continue.
                await self._resume(agent, "continue", thread)
                return {"steps": 0, "continued": True}
            callers = frame_keys(start[1:])
            for steps in range(1, STEP_OUT_LIMIT + 1):
                stop = await self._step_and_wait(agent, thread, deadline)
                if stop is None or stop.event != "stopped":
                    return {"steps": steps, "stopped": False}
                if stop.body.get("reason") != "step":
                    return {"steps": steps, "stopped": True, "reason": stop.body.get("reason")}
                now = await self.inspector.frames(agent, thread)
                keys = frame_keys(now)
                if keys == callers:
                    return {"steps": steps, "stopped": True, "in_caller": True}
                if len(keys) > len(callers) and keys[-len(callers) :] == callers:
                    continue  # still in the function being stepped out of (or deeper)
                return {"steps": steps, "stopped": True, **self._past_the_caller(start, now)}
        return {"steps": STEP_OUT_LIMIT, "stopped": True, "limitReached": True}

    def _past_the_caller(self, start: list[Args], now: list[Args]) -> Args:
        """What a stepOut that did not stop in the caller did instead, in words too."""
        callee, caller = start[0].get("name"), start[1].get("name")
        keys, old = frame_keys(now), frame_keys(start[2:])
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
        path = str(as_dict(frame.get("source")).get("path") or "?")
        return f"'{frame.get('name')}' ({shown(self.project, path)}:{frame.get('line')})"

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

    async def stack_trace(
        self, agent: str, thread: int = THREAD_ID, start: int = 0, levels: int = 0
    ) -> Args:
        """Frames from `start` (0: the top one), at most `levels` of them (0: all)."""
        self._require_connected()
        return await self.inspector.stack_trace(agent, thread, start, levels)

    async def scopes(self, agent: str, frame: int) -> Args:
        """The scopes of `frame` (0: the top one) of the current stop."""
        self._require_connected()
        return await self.inspector.scopes(agent, frame)

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
        return await self.inspector.variables(agent, ref, filter=filter, start=start, count=count)

    async def evaluate(
        self, agent: str, expression: str, frame: int = 0, context: str | None = None
    ) -> Args:
        """`expression` in `frame` of the current stop (the game must be stopped)."""
        self._require_connected()
        return await self.inspector.evaluate(agent, expression, frame, context)

    async def threads(self, agent: str) -> Args:
        self._require_connected()
        return await self.inspector.threads(agent)

    async def terminate(self, agent: str) -> Args:
        self._require_connected()
        # Not behind the execution lock: terminating must cut a long stepOut short.
        running, pid, since = self.game.running, self.game.game_pid, self.events.latest
        launches = self.game.launches
        async with self._no_decisions():
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
            if await asyncio.to_thread(self.game.gone, pid):
                break
        if not await asyncio.to_thread(self.game.gone, pid):
            log.warning("the game (pid %s) may still run after terminate: not ended", pid)
            return
        if not self.game.running or self.game.launches != launches:
            return  # a new launch or another terminate settled it meanwhile
        self.game.ended()
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

    async def put_msg(
        self,
        agent: str,
        message: str,
        data: list[Any],
        answer: str,
        *,
        matches: Callable[[list[Any]], bool] | None = None,
        timeout: float | None = None,
    ) -> DebugEvent | None:
        """Send `message` to the running game (`godot/put_msg`) and wait for its `answer`
        among the game's messages (`godot/custom_data`): the first one whose data
        `matches` (any, without it), or None when none came within `timeout`."""
        self._require_connected()
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        # Looked for from before the send: the game may answer ahead of Godot's response.
        since = self.custom_data.latest
        await self._godot(agent, "godot/put_msg", {"message": message, "data": data})
        kinds = frozenset({answer})
        while True:
            event = await self.custom_data.next_of(since, kinds, deadline - time.monotonic())
            if event is None:
                return None
            since = event.seq
            got = event.body.get("data")
            if matches is None or (isinstance(got, list) and matches(got)):
                return event

    async def wait_events(self, since: int = 0, wait: float = 0.0, limit: int = 500) -> Args:
        return await self.events.read(since, wait, limit)


def top_place(frames: list[Args]) -> tuple[str, int] | None:
    """The top frame's script (real, absolute) and line."""
    if not frames or not isinstance(frames[0], dict):
        return None
    raw = as_dict(frames[0].get("source")).get("path")
    line = frames[0].get("line")
    if not isinstance(raw, str) or not isinstance(line, int):
        return None
    return os.path.realpath(raw), line


STATIC_FUNC = re.compile(r"^\s*static\s+func\s+(\w+)", re.MULTILINE)


def static_functions(path: str) -> set[str]:
    """The names of the script's static functions (their frames have no self)."""
    return set(STATIC_FUNC.findall("\n".join(read_lines(path))))


def logpoint_output(hit: AgentHit, where: Args, stop: Args) -> Args:
    """A logpoint's `output` event: DAP's fields, and whose it is."""
    return {
        "category": "console",
        "output": f"[{hit.agent}] {hit.log}\n",
        "agent": hit.agent,
        "logpoint": True,
        "message": hit.log,
        "hitCount": hit.hit_count,
        **where,
        "hitBreakpointIds": stop.get("hitBreakpointIds", []),
    }

"""One long-lived connection to a Godot server (DAP or LSP), shared by every agent.

``Peer`` owns the connection's life: connect with a timeout, run the caller's handshake,
correlate answers with requests, hand everything else (events, notifications) to a
callback, notice when the server goes away and reconnect with backoff. What differs
between DAP and JSON-RPC (where the id lives in a request and in its answer) is a small
``Correlation`` strategy, so both protocols share this one implementation.

The state shown in `/status` lives in the ``ServiceStatus`` given to the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import (
    PeerTimeout,
    ProtocolError,
    SidecarError,
    TransportError,
    Unverified,
    WrongEditor,
)
from sidecar.godot.service import UNVERIFIED, ServiceStatus, State
from sidecar.godot.wire import FramingError, MessageStream

log = logging.getLogger(__name__)

MessageHandler = Callable[[dict[str, Any]], None]
ConnectHook = Callable[["Peer"], Awaitable[None]]
LostHook = Callable[[str], None]

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)
# Until the first connection, the editor is starting (importing a fresh project can take
# minutes): a refused connect costs nothing on loopback, so look often and connect within a
# moment of Godot's server listening, for this long at most before the backoff above applies.
STARTING_PROBE = 0.25
STARTING_WINDOW = 600.0
# A port served by another editor is looked at again this often (the right one may appear).
WRONG_EDITOR_PROBE = 5.0


def tolerant_id(value: Any) -> int | None:
    """An id as an int: Godot's JSON turns numbers into floats, so `7.0` must match `7`."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class Correlation:
    """Where a protocol puts the request id, and how an answer names it."""

    def request(self, ident: int, command: str, arguments: Any) -> dict[str, Any]:
        raise NotImplementedError

    def answer_id(self, msg: dict[str, Any]) -> int | None:
        """The id of our request `msg` answers, or None if it is not an answer."""
        raise NotImplementedError

    def ping(self) -> tuple[str, Any] | None:
        """A cheap, harmless request to probe a silent connection, if the protocol has one."""
        return None


class DapCorrelation(Correlation):
    """DAP: requests carry `seq`; responses name it in `request_seq`."""

    def request(self, ident: int, command: str, arguments: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"seq": ident, "type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        return msg

    def answer_id(self, msg: dict[str, Any]) -> int | None:
        if msg.get("type") != "response":
            return None
        return tolerant_id(msg.get("request_seq"))

    def ping(self) -> tuple[str, Any] | None:
        # Godot answers `threads` at once from a hard-coded list: no side effects.
        return ("threads", None)


class JsonRpcCorrelation(Correlation):
    """JSON-RPC 2.0 (LSP): the answer repeats the request's `id` and has no `method`."""

    def request(self, ident: int, command: str, arguments: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": command}
        if arguments is not None:
            msg["params"] = arguments
        return msg

    def answer_id(self, msg: dict[str, Any]) -> int | None:
        if "method" in msg or "id" not in msg:
            return None  # a notification, or a request from the server
        return tolerant_id(msg["id"])


@dataclass
class _Pending:
    command: str
    future: asyncio.Future[dict[str, Any]]


@dataclass
class Call:
    """A request on the wire, waiting for its answer (see Peer.issue)."""

    ident: int
    command: str
    future: asyncio.Future[dict[str, Any]]
    link: _Link


@dataclass
class _Link:
    """One live connection; a new one is made on every (re)connect."""

    stream: MessageStream
    lost: asyncio.Future[str]
    last_rx: float = field(default_factory=time.monotonic)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def drop(self, reason: str) -> None:
        if not self.lost.done():
            self.lost.set_result(reason)


class Peer:
    """A shared connection to one Godot server, reconnecting on its own.

    `request()` is safe to call from any number of tasks at once: each request gets a
    fresh id and its own future, answered by the reader task.
    """

    def __init__(
        self,
        status: ServiceStatus,
        correlation: Correlation,
        *,
        what: str,
        host: str = "127.0.0.1",
        request_timeout: float = 10.0,
        connect_timeout: float = 3.0,
        backoff: Sequence[float] = BACKOFF,
        on_message: MessageHandler | None = None,
        on_connected: ConnectHook | None = None,
        on_lost: LostHook | None = None,
        ping_interval: float | None = 2.0,
        ping_timeout: float = 3.0,
        starting_probe: float = STARTING_PROBE,
        starting_window: float = STARTING_WINDOW,
        wrong_editor_probe: float = WRONG_EDITOR_PROBE,
    ) -> None:
        self.status = status
        self.correlation = correlation
        self.what = what
        self.host = host
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.backoff = tuple(backoff)
        self.on_message = on_message
        self.on_connected = on_connected
        self.on_lost = on_lost
        # Silence longer than interval + timeout counts as a lost connection.
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.starting_probe = starting_probe
        self.starting_window = starting_window
        self.wrong_editor_probe = wrong_editor_probe
        # Proves the port is served by our editor before it is even opened (identity.py);
        # raises WrongEditor (someone else's) or Unverified (no proof yet) otherwise. Set by
        # whoever knows the editor (app.Sidecar).
        self.identify: ConnectHook | None = None
        self._born = time.monotonic()
        self._ever_connected = False
        self._resume: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._link: _Link | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._attempted = asyncio.Event()

    # -- life cycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.status.port

    @property
    def connected(self) -> bool:
        return self.status.state is State.CONNECTED and self._link is not None

    def start(self) -> None:
        """Begin connecting in the background; keep reconnecting until disconnect()."""
        self._cancel_resume()
        if self._supervisor is None or self._supervisor.done():
            # Reconnecting (by itself or on POST /connect): "disconnected by X" is over,
            # whether or not the attempts succeed.
            self.status.resuming()
            self._supervisor = asyncio.create_task(self._supervise(), name=f"peer:{self.what}")

    async def connect(self, wait: float | None = None) -> bool:
        """Connect now (skipping any backoff wait); True once connected.

        Waits for the outcome of one attempt, at most `wait` seconds (default: long
        enough for a connect and a handshake).
        """
        if self.connected:
            return True
        self._cancel_resume()
        self._attempted.clear()
        if self._supervisor is None or self._supervisor.done():
            self.start()
        else:
            self._wake.set()
        budget = wait if wait is not None else self.connect_timeout + self.request_timeout + 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), budget)
        return self.connected

    async def disconnect(
        self, reason: str = "disconnected on request", *, resume_after: float | None = None
    ) -> None:
        """Close the connection and stop reconnecting until connect() or start().

        `resume_after`: start reconnecting by itself after that many seconds (a shared
        editor must not stay switched off because one agent asked).
        """
        self._cancel_resume()
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            # Python 3.11's wait_for can swallow a cancel that races a finishing
            # connect; the loop then notices it is no longer the supervisor.
            self._wake.set()
            await asyncio.wait({task})  # unlike `await task`, keeps our own cancel
            if not task.cancelled() and task.exception() is not None:
                log.error("%s supervisor failed", self.what, exc_info=task.exception())
        await self._close_link(reason)
        self._fail_pending(reason)  # in case the supervisor was cancelled mid-close
        self.status.retry_count = 0
        self.status.next_retry_at = None
        self.status.set_state(State.DISCONNECTED)
        if resume_after is not None:
            self.status.next_retry_at = time.time() + resume_after
            self._resume = asyncio.create_task(self._resume_later(resume_after))

    async def _resume_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._resume = None  # start() would otherwise cancel this very task
        if self._supervisor is None:
            log.info("%s: reconnecting by itself after a requested disconnect", self.what)
            self.start()

    def _cancel_resume(self) -> None:
        task, self._resume = self._resume, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _starting(self) -> bool:
        """True until the first connection (within the window): the editor is still starting."""
        if self._ever_connected:
            return False
        return time.monotonic() - self._born < self.starting_window

    async def _supervise(self) -> None:
        failures = 0  # consecutive failed attempts, shown as retry_count
        step = 0  # position in the backoff sequence
        while self._supervising():
            self.status.next_retry_at = None
            starting = self._starting()
            if self.status.state not in (State.ERROR, State.WRONG_EDITOR):
                # Keep the last error visible while retrying: it says why we are retrying.
                if starting:
                    state = State.STARTING
                else:
                    state = State.RECONNECTING if step else State.CONNECTING
                keep = step or starting
                self.status.set_state(state, self.status.last_error if keep else None)
            delay = self.backoff[min(step, len(self.backoff) - 1)]
            try:
                link = await self._open()
            except WrongEditor as exc:
                failures += 1
                self._wrong_editor(exc, failures)
                delay = self.wrong_editor_probe
            except Unverified as exc:
                failures += 1
                self._attempt_failed(exc, failures, starting)
                delay = self.starting_probe if starting else self.backoff[0]
            except SidecarError as exc:
                failures += 1
                self._attempt_failed(exc, failures, starting)
                if starting and not isinstance(exc, ProtocolError):
                    delay = self.starting_probe
                    step = -1  # the backoff starts from its first step once started
            else:
                if not self._supervising():
                    await self._close_link("disconnected on request")
                    return
                failures = step = 0
                delay = self.backoff[0]
                self.status.retry_count = 0
                self._attempted.set()
                reason = await link.lost
                log.warning("%s connection lost: %s", self.what, reason)
                await self._close_link(reason)
                self.status.set_state(State.RECONNECTING, reason)
            if not self._supervising():
                return
            await self._back_off(delay)
            step += 1

    def _supervising(self) -> bool:
        return asyncio.current_task() is self._supervisor

    def _attempt_failed(self, exc: SidecarError, failures: int, starting: bool = False) -> None:
        self.status.retry_count = failures
        # The server answered but the handshake failed: worth telling apart from "absent".
        if isinstance(exc, ProtocolError):
            state = State.ERROR
        else:
            state = State.STARTING if starting else State.RECONNECTING
        self.status.set_state(state, exc.message)
        log.log(
            logging.DEBUG if starting else logging.INFO,
            "%s: connection attempt %d failed: %s",
            self.what,
            failures,
            exc.message,
        )
        self._attempted.set()

    def _wrong_editor(self, exc: WrongEditor, failures: int) -> None:
        self.status.retry_count = failures
        if self.status.state is not State.WRONG_EDITOR:
            log.warning("%s: %s", self.what, exc.message)
        self.status.set_state(State.WRONG_EDITOR, exc.message)
        self._attempted.set()

    async def _back_off(self, delay: float) -> None:
        self.status.next_retry_at = time.time() + delay
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        self.status.next_retry_at = None

    async def _open(self) -> _Link:
        if self.identify is not None:
            # Before the port is opened: connecting alone disturbs another editor (Godot resets
            # its debugger when its last DAP client leaves). Only a fallback proof that needs
            # the connection (the LSP's project root) is left to the handshake.
            await self._identify()
        began = time.monotonic()
        stream = await MessageStream.open(
            self.host, self.port, timeout=self.connect_timeout, name=self.what
        )
        link = _Link(stream, asyncio.get_running_loop().create_future())
        self._link = link
        link.tasks.append(asyncio.create_task(self._read_loop(link)))
        try:
            if self.on_connected is not None:
                await self.on_connected(self)
            if link.lost.done():
                raise TransportError(f"{self.what} closed the connection during the handshake")
        except BaseException as exc:
            reason = exc.message if isinstance(exc, SidecarError) else repr(exc)
            await self._close_link(f"handshake failed: {reason}")
            if isinstance(exc, SidecarError) or not isinstance(exc, Exception):
                raise
            raise ProtocolError(f"{self.what} handshake failed: {reason}") from exc
        if self.ping_interval:
            link.tasks.append(asyncio.create_task(self._watch(link)))
        self.status.set_state(State.CONNECTED)
        self._ever_connected = True
        self.status.touch()
        log.info(
            "%s connected on port %d (connect and handshake took %.2f s)",
            self.what,
            self.port,
            time.monotonic() - began,
        )
        return link

    async def _identify(self) -> None:
        assert self.identify is not None
        try:
            await self.identify(self)
        except SidecarError:
            raise
        except Exception as exc:  # a bug in the check must not pass for a proof
            raise ProtocolError(f"{self.what}: identity check failed: {exc!r}") from exc

    async def _close_link(self, reason: str) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        link.drop(reason)
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        link.stream.close()
        for task in link.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await link.stream.wait_closed()
        self._fail_pending(reason)
        if self.on_lost is not None:
            try:
                self.on_lost(reason)
            except Exception:
                log.exception("%s: on_lost hook failed", self.what)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(
                    TransportError(
                        f"{self.what} connection was lost while waiting for '{p.command}' "
                        f"({reason}); retry",
                        code="connection_lost",
                        details={"command": p.command},
                    )
                )

    # -- reading ---------------------------------------------------------------------

    async def _read_loop(self, link: _Link) -> None:
        try:
            while True:
                try:
                    msg = await link.stream.read()
                except FramingError:
                    raise
                except ProtocolError as exc:
                    # The frame was complete, so the stream is still in step: skip it.
                    log.warning("%s sent an unusable message: %s", self.what, exc.message)
                    continue
                link.last_rx = time.monotonic()
                self.status.touch()
                self._route(msg)
        except SidecarError as exc:
            link.drop(exc.message)
        except Exception as exc:  # a bug here must not leave agents hanging
            log.exception("%s: reader failed", self.what)
            link.drop(f"reader failed: {exc!r}")

    def _route(self, msg: dict[str, Any]) -> None:
        ident = self.correlation.answer_id(msg)
        if ident is not None:
            pending = self._pending.get(ident)
            if pending is not None and not pending.future.done():
                pending.future.set_result(msg)
            else:
                log.debug("%s: answer to unknown or expired request %s", self.what, ident)
            return
        if self.on_message is not None:
            try:
                self.on_message(msg)
            except Exception:
                log.exception("%s: message handler failed", self.what)

    async def _watch(self, link: _Link) -> None:
        """Probe a silent connection; any inbound message proves it alive."""
        assert self.ping_interval is not None
        probe = self.correlation.ping()
        while not link.lost.done():
            idle = time.monotonic() - link.last_rx
            if idle < self.ping_interval:
                await asyncio.sleep(self.ping_interval - idle)
                continue
            if probe is None:
                await asyncio.sleep(self.ping_interval)
                continue
            with contextlib.suppress(PeerTimeout):
                await self.request(*probe, timeout=self.ping_timeout, handshake=True)
            silent = time.monotonic() - link.last_rx
            if silent >= self.ping_interval + self.ping_timeout:
                link.drop(f"{self.what} did not answer a liveness probe for {silent:.1f} s")

    # -- requests --------------------------------------------------------------------

    async def request(
        self,
        command: str,
        arguments: Any = None,
        *,
        timeout: float | None = None,
        handshake: bool = False,
    ) -> dict[str, Any]:
        """Send one request and return the peer's raw answer message.

        TransportError (503) when not connected or the connection drops meanwhile;
        PeerTimeout (504, naming the command) when no answer comes in time.
        `handshake=True` lets the on_connected hook talk before the state is connected.
        """
        return await self.answer(self.issue(command, arguments, handshake=handshake), timeout)

    def issue(self, command: str, arguments: Any = None, *, handshake: bool = False) -> Call:
        """Write a request now and return a handle for its answer.

        For requests whose order on the wire matters (DAP `launch` before
        `configurationDone`): the write happens in this call, not when awaited.
        Every issued call must be passed to `answer()`, which forgets it again.
        """
        link = self._link
        if link is None or link.lost.done() or (not handshake and not self.connected):
            raise self.unavailable()
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = _Pending(command, future)
        try:
            link.stream.write(self.correlation.request(ident, command, arguments))
        except TransportError as exc:
            self._pending.pop(ident, None)
            link.drop(exc.message)
            raise
        self.status.touch()
        return Call(ident, command, future, link)

    async def answer(self, call: Call, timeout: float | None = None) -> dict[str, Any]:
        """The answer to an issued call; PeerTimeout naming the command after `timeout`."""
        limit = self.request_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(self._drain_then(call), limit)
        except asyncio.TimeoutError:
            raise PeerTimeout(
                f"{self.what} did not answer '{call.command}' within {limit:g} s",
                details={"command": call.command},
            ) from None
        except TransportError as exc:
            if exc.code == "peer_closed":
                call.link.drop(exc.message)
            raise
        finally:
            self._pending.pop(call.ident, None)

    @staticmethod
    async def _drain_then(call: Call) -> dict[str, Any]:
        await call.link.stream.drain()
        return await call.future

    def send(self, msg: dict[str, Any]) -> None:
        """Send a message that expects no answer (a notification, a reply to the server)."""
        link = self._link
        if link is None or link.lost.done():
            raise self.unavailable()
        link.stream.write(msg)
        self.status.touch()

    def unavailable(self) -> TransportError:
        """The 503 an agent gets while this peer is not connected."""
        state = self.status.state.value
        wait = self.status.retry_in()
        retry_after = max(1, math.ceil(wait)) if wait is not None else 1
        hint = "POST /connect to connect" if self.status.state is State.DISCONNECTED else "retry"
        if self.status.state is State.DISCONNECTED and self._resume is not None:
            hint = "it reconnects by itself shortly (or POST /connect now)"
        if self.status.state is State.STARTING:
            hint = "the editor is starting; retry"
        why = f" ({self.status.message})" if self.status.state is State.WRONG_EDITOR else ""
        if self.status.down_reason and self.status.state is State.DISCONNECTED:
            why = f" ({self.status.message})"
        if (self.status.last_error or "").startswith(UNVERIFIED):
            why = f" ({self.status.last_error})"
        return TransportError(
            f"{self.what} is {state}{why}: Godot's server on port {self.port} is not connected; "
            f"{hint}",
            code="not_connected",
            retry_after=retry_after,
            details={"service": self.status.name, "state": state},
        )

"""The shared connection manager against small fake servers on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sidecar.errors import PeerTimeout, ProtocolError, TransportError, Unverified, WrongEditor
from sidecar.godot.peer import DapCorrelation, JsonRpcCorrelation, Peer, tolerant_id
from sidecar.godot.service import ServiceStatus, State
from sidecar.godot.wire import MessageStream, PeerClosed

Serve = Callable[[MessageStream], Awaitable[None]]
FAST = (0.05, 0.1, 0.2)


class FakeServer:
    """A loopback server running `serve` for each connection it accepts."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.accepted = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._streams: list[MessageStream] = []

    async def __aenter__(self) -> FakeServer:
        await self.listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shut()

    async def listen(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        """Stop listening and drop every connection (like the editor quitting)."""
        if self._server is not None:
            self._server.close()
        for stream in self._streams:
            stream.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        stream = MessageStream(reader, writer, "client")
        self._streams.append(stream)
        try:
            await self.serve(stream)
        except (PeerClosed, ConnectionError):
            pass
        finally:
            stream.close()


async def dap_echo(stream: MessageStream) -> None:
    """Answers every request (seq echoed as a float, as Godot does) after an event."""
    while True:
        msg = await stream.read()
        stream.write({"type": "event", "event": "output", "body": {"output": msg["command"]}})
        stream.write(
            {
                "type": "response",
                "request_seq": float(msg["seq"]),
                "command": msg["command"],
                "success": True,
                "body": {"echo": msg.get("arguments")},
            }
        )
        await stream.drain()


async def silent(stream: MessageStream) -> None:
    while True:
        await stream.read()


def _peer(port: int, **kwargs: Any) -> Peer:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("request_timeout", 2.0)
    kwargs.setdefault("ping_interval", None)
    # These tests are about an editor that has started; the brisk start is tested on its own.
    kwargs.setdefault("starting_window", 0.0)
    return Peer(ServiceStatus("debug_adapter", port), DapCorrelation(), what="fake DAP", **kwargs)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds it took for `predicate` to hold; fails the test after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tolerant_id() -> None:
    assert tolerant_id(7) == 7
    assert tolerant_id(7.0) == 7
    assert tolerant_id("7") == 7
    assert tolerant_id(7.5) is None
    assert tolerant_id(True) is None
    assert tolerant_id(None) is None


async def test_requests_are_correlated_and_events_dispatched() -> None:
    events: list[dict[str, Any]] = []
    async with FakeServer(dap_echo) as server:
        peer = _peer(server.port, on_message=events.append)
        assert await peer.connect()
        assert peer.status.state is State.CONNECTED
        answers = await asyncio.gather(
            *(peer.request("evaluate", {"expression": str(i)}) for i in range(20))
        )
        for i, answer in enumerate(answers):
            assert answer["body"] == {"echo": {"expression": str(i)}}
            assert answer["success"] is True
        assert len({a["request_seq"] for a in answers}) == 20  # a fresh seq each
        assert [e["body"]["output"] for e in events] == ["evaluate"] * 20
        assert peer.status.as_json()["last_activity"] is not None
        await peer.disconnect()
        assert peer.status.state is State.DISCONNECTED


async def test_answers_out_of_order_reach_their_own_request() -> None:
    async def reverse(stream: MessageStream) -> None:
        batch = [await stream.read() for _ in range(5)]
        for msg in reversed(batch):
            stream.write({"type": "response", "request_seq": msg["seq"], "body": msg["arguments"]})
        await stream.drain()
        await silent(stream)

    async with FakeServer(reverse) as server:
        peer = _peer(server.port)
        await peer.connect()
        answers = await asyncio.gather(*(peer.request("x", {"n": n}) for n in range(5)))
        assert [a["body"]["n"] for a in answers] == list(range(5))
        await peer.disconnect()


async def test_silent_server_gives_504_naming_the_command_within_the_timeout() -> None:
    async with FakeServer(silent) as server:
        peer = _peer(server.port, request_timeout=0.3)
        await peer.connect()
        start = time.monotonic()
        with pytest.raises(PeerTimeout) as err:
            await peer.request("stepOut", {"threadId": 1})
        took = time.monotonic() - start
        assert 0.25 < took < 1.0
        assert err.value.status == 504
        assert "stepOut" in err.value.message
        assert err.value.details == {"command": "stepOut"}
        # A timeout is not a lost connection.
        assert peer.status.state is State.CONNECTED
        await peer.disconnect()


@pytest.mark.slow  # waits out a 1 s backoff step
async def test_not_connected_is_503_with_retry_after_and_default_backoff_in_status() -> None:
    peer = _peer(_free_port(), backoff=(1, 2, 4, 8, 16))
    assert not await peer.connect(wait=2)
    status = peer.status.as_json()
    assert status["state"] == "reconnecting"
    assert status["retry_count"] == 1
    assert 0.5 <= status["next_retry_in_s"] <= 1.0
    assert "cannot connect" in status["last_error"]
    with pytest.raises(TransportError) as err:
        await peer.request("threads")
    assert err.value.status == 503
    assert err.value.code == "not_connected"
    assert err.value.headers["Retry-After"] == "1"
    # The second attempt comes after 1 s; the one after that is 2 s away.
    await _until(lambda: peer.status.retry_count == 2, timeout=3)
    assert 1.5 <= peer.status.retry_in() <= 2.0
    with pytest.raises(TransportError) as err:
        await peer.request("threads")
    assert err.value.headers["Retry-After"] == "2"
    await peer.disconnect()
    assert peer.status.as_json()["next_retry_in_s"] is None


async def test_server_closing_fails_pending_requests_then_reconnects() -> None:
    handshakes: list[int] = []
    lost: list[str] = []

    async def close_on_request(stream: MessageStream) -> None:
        await stream.read()
        stream.close()

    async with FakeServer(close_on_request) as server:

        async def hello(peer: Peer) -> None:
            handshakes.append(server.accepted)

        peer = _peer(server.port, on_connected=hello, on_lost=lost.append)
        await peer.connect()
        start = time.monotonic()
        with pytest.raises(TransportError) as err:
            await peer.request("continue")
        assert time.monotonic() - start < 1.0
        assert err.value.status == 503
        assert "continue" in err.value.message
        await _until(lambda: peer.status.state is not State.CONNECTED, timeout=1)
        assert peer.status.state is State.RECONNECTING
        await _until(lambda: peer.connected, timeout=2)
        assert handshakes == [1, 2]
        assert lost and "closed" in lost[0]
        await peer.disconnect()


@pytest.mark.slow  # waits out backoff steps (~1.5 s)
async def test_backoff_grows_while_the_server_is_down_and_recovers_when_it_returns() -> None:
    server = FakeServer(dap_echo)
    await server.listen()
    port = server.port
    peer = _peer(port, backoff=(0.1, 0.2, 0.4, 0.8))
    await peer.connect()
    await server.shut()
    await _until(lambda: peer.status.retry_count >= 3, timeout=3)
    assert peer.status.state is State.RECONNECTING
    assert peer.status.retry_in() is not None
    await server.listen(port)
    try:
        await _until(lambda: peer.connected, timeout=3)
        assert peer.status.retry_count == 0
        assert (await peer.request("threads"))["success"]
    finally:
        await peer.disconnect()
        await server.shut()


async def test_garbage_body_is_skipped_and_the_connection_survives() -> None:
    async def garbage_then_echo(stream: MessageStream) -> None:
        msg = await stream.read()
        stream._writer.write(b"Content-Length: 5\r\n\r\n{nope")
        stream.write({"type": "response", "request_seq": msg["seq"], "body": {"fine": 1}})
        await dap_echo(stream)

    async with FakeServer(garbage_then_echo) as server:
        peer = _peer(server.port)
        await peer.connect()
        assert (await peer.request("threads"))["body"] == {"fine": 1}
        assert peer.connected
        assert server.accepted == 1
        await peer.disconnect()


async def test_garbage_header_drops_the_connection_and_reconnects() -> None:
    async def garbage(stream: MessageStream) -> None:
        await stream.read()
        stream._writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await silent(stream)

    async with FakeServer(garbage) as server:
        peer = _peer(server.port)
        await peer.connect()
        with pytest.raises(TransportError) as err:
            await peer.request("threads")
        assert err.value.status == 503
        assert "header" in err.value.message
        await _until(lambda: server.accepted >= 2, timeout=2)
        await _until(lambda: peer.connected, timeout=2)
        await peer.disconnect()


@pytest.mark.slow  # waits out a ping timeout (~0.5 s)
async def test_a_connection_that_goes_silent_is_noticed_by_the_liveness_probe() -> None:
    async with FakeServer(silent) as server:
        peer = _peer(server.port, ping_interval=0.2, ping_timeout=0.3)
        await peer.connect()
        took = await _until(lambda: peer.status.state is not State.CONNECTED, timeout=3)
        assert took < 1.5
        assert "liveness" in (peer.status.last_error or "")
        await peer.disconnect()


@pytest.mark.slow  # watches 0.8 s of pings
async def test_liveness_probe_keeps_an_answering_connection() -> None:
    async with FakeServer(dap_echo) as server:
        peer = _peer(server.port, ping_interval=0.1, ping_timeout=0.2)
        await peer.connect()
        await asyncio.sleep(0.8)
        assert peer.connected
        assert server.accepted == 1
        await peer.disconnect()


async def test_disconnect_stops_reconnecting_until_connect() -> None:
    async with FakeServer(dap_echo) as server:
        peer = _peer(server.port)
        peer.start()
        await _until(lambda: peer.connected)
        await peer.disconnect()
        await asyncio.sleep(0.3)  # longer than every backoff step
        assert peer.status.state is State.DISCONNECTED
        assert server.accepted == 1
        with pytest.raises(TransportError, match="POST /connect"):
            await peer.request("threads")
        assert await peer.connect()
        assert server.accepted == 2
        await peer.disconnect()


async def test_failed_handshake_is_an_error_state_and_retried() -> None:
    attempts: list[int] = []

    async with FakeServer(dap_echo) as server:

        async def picky(peer: Peer) -> None:
            attempts.append(1)
            answer = await peer.request("initialize", handshake=True)
            if len(attempts) < 3:
                raise ProtocolError(f"initialize refused: {answer['command']}")

        peer = _peer(server.port, on_connected=picky)
        assert not await peer.connect()
        assert peer.status.state is State.ERROR
        assert "initialize refused" in (peer.status.last_error or "")
        await _until(lambda: peer.connected, timeout=3)
        assert len(attempts) == 3
        await peer.disconnect()


async def test_json_rpc_correlation_and_server_messages() -> None:
    async def lsp(stream: MessageStream) -> None:
        while True:
            msg = await stream.read()
            if "id" not in msg:
                continue  # a notification from us
            stream.write({"jsonrpc": "2.0", "method": "window/logMessage", "params": {}})
            stream.write({"jsonrpc": "2.0", "id": 99, "method": "workspace/configuration"})
            stream.write({"jsonrpc": "2.0", "id": float(msg["id"]), "result": msg["method"]})
            await stream.drain()

    seen: list[dict[str, Any]] = []
    async with FakeServer(lsp) as server:
        peer = Peer(
            ServiceStatus("language_server", server.port),
            JsonRpcCorrelation(),
            what="fake LSP",
            on_message=seen.append,
            ping_interval=None,
        )
        await peer.connect()
        peer.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        answer = await peer.request("textDocument/hover", {"x": 1})
        assert answer["result"] == "textDocument/hover"
        assert [m["method"] for m in seen] == ["window/logMessage", "workspace/configuration"]
        await peer.disconnect()


async def test_issue_writes_at_call_time_so_wire_order_is_call_order() -> None:
    """Like Godot's launch: answered only after the request that follows it."""

    async def deferred_launch(stream: MessageStream) -> None:
        launch = await stream.read()
        done = await stream.read()
        assert (launch["command"], done["command"]) == ("launch", "configurationDone")
        for msg in (done, launch):
            stream.write({"type": "response", "request_seq": msg["seq"], "success": True})
        await stream.drain()
        await silent(stream)

    async with FakeServer(deferred_launch) as server:
        peer = _peer(server.port)
        await peer.connect()
        launch = peer.issue("launch", {"scene": "main"})
        done = peer.issue("configurationDone")
        first, second = await asyncio.gather(peer.answer(launch), peer.answer(done))
        assert first["request_seq"] == launch.ident
        assert second["request_seq"] == done.ident
        await peer.disconnect()


async def test_disconnect_ends_the_reconnect_loop_even_if_a_cancel_is_swallowed() -> None:
    """Python 3.11's wait_for returns a finished connect's error instead of raising a
    cancel that lands at that moment; the sidecar must still be able to stop."""

    peer = _peer(_free_port(), backoff=(0.05,))
    entered = asyncio.Event()
    calls: list[int] = []

    async def swallowing_open() -> Any:
        calls.append(1)
        entered.set()
        if len(calls) > 1:
            await asyncio.sleep(10)  # later attempts take a cancel normally
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # what the race looks like from the outside
        raise TransportError("cannot connect")

    peer._open = swallowing_open  # type: ignore[method-assign]
    peer.start()
    await asyncio.wait_for(entered.wait(), 2)
    await asyncio.wait_for(peer.disconnect(), 2)
    assert peer.status.state is State.DISCONNECTED
    await asyncio.sleep(0.2)  # several backoff steps: no attempt may follow
    assert peer.status.state is State.DISCONNECTED
    assert len(calls) == 1
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_issue_11_identity_is_checked_before_the_port_is_opened() -> None:
    """A foreign editor's port is never even connected to: a DAP client coming and going
    resets that editor's debugger. The proof (the listener's pid) needs no connection."""
    seen_at_check: list[int] = []

    async with FakeServer(dap_echo) as server:

        async def foreign(peer: Peer) -> None:
            seen_at_check.append(server.accepted)
            raise WrongEditor("wrong editor: port served by another editor")

        peer = _peer(server.port, wrong_editor_probe=0.05)
        peer.identify = foreign
        peer.start()
        await _until(lambda: len(seen_at_check) >= 5)
        assert peer.status.state is State.WRONG_EDITOR
        assert server.accepted == 0  # checked five times, never connected

        async def ours(peer: Peer) -> None:
            seen_at_check.append(server.accepted)

        peer.identify = ours
        await _until(lambda: peer.connected)
        assert server.accepted == 1 and seen_at_check[-1] == 0  # checked, then connected
        await peer.disconnect()


@pytest.mark.slow  # waits for ten retries (~0.5 s)
async def test_issue_11_unverified_port_is_retried_never_trusted() -> None:
    """No proof yet is not a proof: the peer stays unconnected, says why, and asks again."""
    checks: list[float] = []
    proven = False

    async with FakeServer(dap_echo) as server:

        async def unproven(peer: Peer) -> None:
            checks.append(time.monotonic())
            if not proven:
                raise Unverified("unverified: nothing proves the port is ours")

        peer = _peer(server.port, backoff=(0.05,))
        peer.identify = unproven
        peer.start()
        await _until(lambda: len(checks) >= 10)
        assert not peer.connected and server.accepted == 0
        assert peer.status.state is not State.CONNECTED
        assert peer.status.message.startswith("reconnecting: unverified"), peer.status.message
        with pytest.raises(TransportError, match="unverified"):
            await peer.request("threads")
        proven = True
        await _until(lambda: peer.connected)
        assert server.accepted == 1
        await peer.disconnect()


@pytest.mark.slow  # waits out reconnect attempts (~0.5 s)
async def test_issue_11_resume_clears_disconnected_by_even_if_the_reconnect_fails() -> None:
    server = FakeServer(dap_echo)
    await server.listen()
    peer = _peer(server.port)
    try:
        assert await peer.connect()
        peer.status.taken_down("testing", "alice")
        await peer.disconnect("disconnected by alice", resume_after=0.2)
        assert peer.status.message == "disconnected by alice: testing"
        await server.shut()  # the automatic reconnect will fail
        await _until(lambda: peer.status.state is not State.DISCONNECTED)
        await asyncio.sleep(0.3)  # a failed attempt or two
        assert not peer.connected
        shown = peer.status.as_json()
        assert shown["down_by"] is None and shown["down_reason"] is None, shown
        assert "disconnected by" not in shown["message"], shown
    finally:
        await peer.disconnect()
        await server.shut()


async def test_issue_11_connect_clears_disconnected_by_even_if_it_fails() -> None:
    peer = _peer(_free_port(), connect_timeout=0.2)
    peer.status.taken_down("testing", "alice")
    await peer.disconnect("disconnected by alice")
    assert not await peer.connect(wait=1)
    assert peer.status.down_by is None
    assert "disconnected by" not in peer.status.message, peer.status.message
    await peer.disconnect()

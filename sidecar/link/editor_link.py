"""The sidecar's end of the link to the addon: frames in, virtual connections out.

The addon relays each agent connection as `open` / `data` / `close` frames (docs/LINK.md).
This module turns them into virtual connections served by the HTTP application and sends
what aiohttp writes back as `data` frames. It also carries editor actions (`action` /
`action_result`) with a future per request id.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
from typing import Any, Protocol, cast

from sidecar.agents import AgentRegistry
from sidecar.link.frames import FrameDecoder, FrameError, encode_data_frame, encode_frame
from sidecar.link.vconn import Connections

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 5.0
# Largest `data` frame written: bigger writes are split (a frame may not exceed MAX_FRAME).
DATA_CHUNK = 1024 * 1024


class LinkClosed(Exception):
    """The addon went away."""


class EditorActions(Protocol):
    """Runs editor actions on the editor's main thread: a Link while the addon is connected."""

    async def action(self, name: str, args: dict[str, Any], timeout: float = 10.0) -> Any: ...


class LinkHost(Protocol):
    """What a Link needs of the sidecar it serves (app.Sidecar)."""

    agents: AgentRegistry
    # Set while the link is up, so editor actions reach the addon through it.
    editor_link: EditorActions | None

    def app_server(self) -> asyncio.Protocol: ...


class Link:
    """One connection to the addon; `run()` returns when it closes.

    Frames are read and dispatched straight from the transport's `data_received`, so a request
    reaches aiohttp in the loop iteration its bytes arrive in. Frames written during one loop
    iteration go out in one `write` at its end, and consecutive `data` for one agent (aiohttp
    may write a head and a body separately) travel in one frame.
    """

    def __init__(self, port: int, token: str, host: LinkHost) -> None:
        self._port = port
        self._token = token
        self._host = host
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._rids = itertools.count(1)
        self._out: list[bytes] = []
        # `data` for one agent not yet made into a frame: its id and its bytes.
        self._data_id: int | None = None
        self._data = bytearray()
        self._flush_scheduled = False
        self._greeted: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self.connections = Connections(
            host.app_server, self, on_open=self._agent_opened, on_close=self._agent_closed
        )

    # --- Sink: what virtual connections call ---

    def send(self, client_id: int, data: bytes | bytearray | memoryview) -> None:
        if not self._writable():
            return
        if self._data_id != client_id or len(self._data) + len(data) > DATA_CHUNK:
            self._frame_data()
            self._data_id = client_id
        if len(data) <= DATA_CHUNK:
            self._data += data
        else:
            view = memoryview(data)
            for at in range(0, len(view), DATA_CHUNK):
                self._data += view[at : at + DATA_CHUNK]
                if len(self._data) >= DATA_CHUNK:
                    self._frame_data()
                    self._data_id = client_id
        self._schedule_flush()

    def close(self, client_id: int, reason: str) -> None:
        self._write({"op": "close", "id": client_id, "reason": reason})

    # --- the rest of the sidecar ---

    async def action(self, name: str, args: dict[str, Any], timeout: float = 10.0) -> Any:
        """Ask the editor to do `name` on its main thread; its result or an exception."""
        rid = next(self._rids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            self._write({"op": "action", "rid": rid, "name": name, "args": args})
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(rid, None)

    def log(self, level: str, msg: str) -> None:
        self._write({"op": "log", "level": level, "msg": msg})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._greeted = loop.create_future()
        self._closed = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: _LinkProtocol(self), "127.0.0.1", self._port
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host.editor_link = self
        try:
            self._write({"op": "hello", "token": self._token, "pid": os.getpid(), "version": 1})
            await asyncio.wait_for(asyncio.shield(self._greeted), HELLO_TIMEOUT)
            await self._closed
        finally:
            self._host.editor_link = None
            self._shutdown()
            transport.close()

    # --- what the transport calls (through _LinkProtocol) ---

    def _connected(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def _received(self, data: bytes) -> None:
        assert self._greeted is not None and self._closed is not None
        if self._closed.done():
            return
        try:
            frames = self._decoder.feed(data)
            if frames and not self._greeted.done():
                self._hello(frames.pop(0))
            for frame in frames:
                self._dispatch(frame)
        except Exception as err:  # FrameError, or a bug: either way run() raises it
            self._end(err)

    def _lost(self, exc: Exception | None) -> None:
        assert self._greeted is not None
        if self._greeted.done():
            self._end(LinkClosed("the addon closed the link"))
        else:
            self._end(LinkClosed("the addon closed the link during the handshake (wrong token?)"))

    def _end(self, exc: Exception) -> None:
        """The link is over: `run()` raises `exc`."""
        assert self._closed is not None and self._greeted is not None
        for future in (self._greeted, self._closed):
            if not future.done():
                future.set_exception(exc)
        # Whoever awaits only one of them must not leave the other's exception unretrieved.
        for future in (self._greeted, self._closed):
            if not future.cancelled():
                future.exception()
        if self._transport is not None:
            self._transport.close()

    # --- frames in ---

    def _hello(self, hello: dict[str, Any]) -> None:
        assert self._greeted is not None
        if hello.get("op") != "hello":
            raise FrameError(f"expected hello from the addon, got {hello.get('op')!r}")
        self._host.agents.max_clients = int(hello.get("max_clients", 100))
        for client_id, peer in hello.get("clients", []):
            self.connections.open(int(client_id), str(peer))
        log.info("link up on port %d (max %d clients)", self._port, self._host.agents.max_clients)
        self._greeted.set_result(None)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        try:
            self._handle(frame)
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameError(
                f"malformed {frame.get('op')!r} frame from the addon: {exc!r}"
            ) from None

    def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "data":
            if not self.connections.data(frame["id"], frame["data"]):
                log.debug("data for unknown client %s dropped", frame.get("id"))
        elif op == "open":
            self.connections.open(frame["id"], frame.get("peer", "?"))
        elif op == "close":
            self.connections.close(frame["id"])
        elif op == "action_result":
            self._settle(frame)
        else:
            raise FrameError(f"unexpected frame op {op!r} from the addon")

    def _settle(self, frame: dict[str, Any]) -> None:
        future = self._pending.get(frame.get("rid", -1))
        if future is None or future.done():
            return
        if frame.get("ok"):
            future.set_result(frame.get("result"))
        else:
            future.set_exception(RuntimeError(frame.get("error") or "editor action failed"))

    def _agent_opened(self, client_id: int, peer: str) -> None:
        self._host.agents.add(client_id, peer)

    def _agent_closed(self, client_id: int) -> None:
        self._host.agents.remove(client_id)

    # --- frames out ---

    def _writable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def _write(self, msg: dict[str, Any]) -> None:
        if not self._writable():
            return
        self._frame_data()
        self._out.append(encode_frame(msg))
        self._schedule_flush()

    def _frame_data(self) -> None:
        """Turn the `data` gathered for one agent into a frame, in order with the others."""
        if self._data_id is not None:
            self._out.append(encode_data_frame(self._data_id, self._data))
            self._data_id = None
            self._data = bytearray()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._frame_data()
        if self._out and self._writable():
            assert self._transport is not None
            out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._transport.write(out)
        self._out = []

    def _shutdown(self) -> None:
        self._flush()
        self.connections.close_all()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkClosed("the addon closed the link"))
        self._pending.clear()


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self._link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence no isinstance.
        self._link._connected(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self._link._received(data)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._lost(exc)

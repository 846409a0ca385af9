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
from typing import Any

from .frames import FrameDecoder, FrameError, encode_frame
from .vconn import Connections

log = logging.getLogger(__name__)

LINK_VERSION = 1
HELLO_TIMEOUT = 5.0
_READ_CHUNK = 256 * 1024


class LinkClosed(Exception):
    """The addon went away."""


class Link:
    """One connection to the addon; `run()` returns when it closes."""

    def __init__(self, port: int, token: str, bridge: Any) -> None:
        self._port = port
        self._token = token
        self._bridge = bridge
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._rids = itertools.count(1)
        self.connections = Connections(
            bridge.app_server, self, on_open=self._agent_opened, on_close=self._agent_closed
        )

    # --- Sink: what virtual connections call ---

    def send(self, client_id: int, data: bytes) -> None:
        self._write({"op": "data", "id": client_id, "data": data})

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
        reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = writer
        decoder = FrameDecoder()
        self._bridge.editor_link = self
        try:
            self._write({"op": "hello", "token": self._token, "pid": os.getpid(), "version": 1})
            await asyncio.wait_for(self._handshake(reader, decoder), HELLO_TIMEOUT)
            await self._pump(reader, decoder)
        finally:
            self._bridge.editor_link = None
            self._shutdown()
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, decoder: FrameDecoder) -> None:
        while True:
            data = await reader.read(_READ_CHUNK)
            if not data:
                raise LinkClosed("the addon closed the link during the handshake (wrong token?)")
            frames = decoder.feed(data)
            if frames:
                break
        hello, rest = frames[0], frames[1:]
        if hello.get("op") != "hello":
            raise FrameError(f"expected hello from the addon, got {hello.get('op')!r}")
        self._bridge.agents.max_clients = int(hello.get("max_clients", 100))
        for client_id, peer in hello.get("clients", []):
            self.connections.open(int(client_id), str(peer))
        log.info("link up on port %d (max %d clients)", self._port, self._bridge.agents.max_clients)
        for frame in rest:
            self._dispatch(frame)

    async def _pump(self, reader: asyncio.StreamReader, decoder: FrameDecoder) -> None:
        while True:
            data = await reader.read(_READ_CHUNK)
            if not data:
                raise LinkClosed("the addon closed the link")
            for frame in decoder.feed(data):
                self._dispatch(frame)

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
        self._bridge.agents.add(client_id, peer)

    def _agent_closed(self, client_id: int) -> None:
        self._bridge.agents.remove(client_id)

    def _write(self, msg: dict[str, Any]) -> None:
        if self._writer is None or self._writer.is_closing():
            return
        self._writer.write(encode_frame(msg))

    def _shutdown(self) -> None:
        self.connections.close_all()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkClosed("the addon closed the link"))
        self._pending.clear()

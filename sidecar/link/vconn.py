"""Virtual connections: one aiohttp protocol per agent, fed with bytes from somewhere else.

The addon relays each agent's bytes over the link as frames; here every client id gets an
``asyncio.Transport`` of its own, so aiohttp serves it exactly as it would a socket (keep-alive,
pipelining, limits) without a socket pair or a file descriptor per agent.

``serve_direct`` is the direct mode (``--serve``: agents on plain loopback sockets, no addon),
which the benchmarks compare with: its agents get client ids and registry entries too, so the
application behaves the same (``/status`` lists them) with or without the addon in front.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a virtual connection's outgoing bytes go."""

    def send(self, client_id: int, data: bytes | bytearray | memoryview) -> None:
        """Take `data` for the agent; it must be copied or sent before returning (the writer
        may reuse its buffer)."""

    def close(self, client_id: int, reason: str) -> None: ...


class VirtualTransport(asyncio.Transport):
    """The transport aiohttp writes to for one agent."""

    def __init__(
        self,
        client_id: int,
        peer: str,
        sink: Sink,
        protocol: asyncio.Protocol,
        on_closed: Callable[[int], None],
    ) -> None:
        super().__init__({"peername": _split_peer(peer), "client_id": client_id})
        self.client_id = client_id
        self._sink = sink
        self._protocol = protocol
        self._on_closed = on_closed
        self._closing = False
        self._lost = False

    # --- what aiohttp calls ---

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing and data:
            self._sink.send(self.client_id, data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """The server is done with this agent: the addon flushes, then closes the socket."""
        if self._closing:
            return
        self._closing = True
        self._sink.close(self.client_id, "server closed")
        self._lose(None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        # Bytes arrive as frames we must take anyway; aiohttp copes with being fed.
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    # --- what the feeder calls ---

    def feed(self, data: bytes) -> None:
        if not self._closing:
            self._protocol.data_received(data)

    def peer_closed(self) -> None:
        """The agent went away."""
        self._closing = True
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        loop = asyncio.get_running_loop()
        loop.call_soon(self._protocol.connection_lost, exc)
        self._on_closed(self.client_id)


def _split_peer(peer: str) -> tuple[str, int]:
    host, _, port = peer.rpartition(":")
    try:
        return (host or peer, int(port))
    except ValueError:
        return (peer, 0)


class Connections:
    """Every open virtual connection, by client id."""

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        sink: Sink,
        on_open: Callable[[int, str], object] | None = None,
        on_close: Callable[[int], object] | None = None,
    ) -> None:
        self._factory = protocol_factory
        self._sink = sink
        self._on_open = on_open
        self._on_close = on_close
        self._by_id: dict[int, VirtualTransport] = {}

    def open(self, client_id: int, peer: str) -> None:
        if client_id in self._by_id:
            log.warning("client %d opened twice; replacing", client_id)
            self._by_id[client_id].peer_closed()
        protocol = self._factory()
        transport = VirtualTransport(client_id, peer, self._sink, protocol, self._forget)
        self._by_id[client_id] = transport
        if self._on_open:
            self._on_open(client_id, peer)
        protocol.connection_made(transport)

    def data(self, client_id: int, data: bytes) -> bool:
        transport = self._by_id.get(client_id)
        if transport is None:
            return False
        transport.feed(data)
        return True

    def close(self, client_id: int) -> None:
        transport = self._by_id.get(client_id)
        if transport is not None:
            transport.peer_closed()

    def close_all(self) -> None:
        for transport in list(self._by_id.values()):
            transport.peer_closed()

    def __contains__(self, client_id: int) -> bool:
        return client_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def _forget(self, client_id: int) -> None:
        if self._by_id.pop(client_id, None) is not None and self._on_close:
            self._on_close(client_id)


class _TaggedTransport:
    """A socket's transport as aiohttp sees it in the direct mode: the transport itself, with
    the agent's client id in ``get_extra_info`` as a virtual connection has it."""

    def __init__(self, transport: asyncio.Transport, client_id: int) -> None:
        self._transport = transport
        self._client_id = client_id

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "client_id":
            return self._client_id
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _DirectAgent(asyncio.Protocol):
    """One agent socket in the direct mode: registers it, then hands everything to aiohttp."""

    def __init__(
        self,
        inner: asyncio.Protocol,
        client_id: int,
        on_open: Callable[[int, str], object],
        on_close: Callable[[int], object],
    ) -> None:
        self._inner = inner
        self._client_id = client_id
        self._on_open = on_open
        self._on_close = on_close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._on_open(self._client_id, f"{peer[0]}:{peer[1]}" if peer else "?")
        tagged = _TaggedTransport(cast(asyncio.Transport, transport), self._client_id)
        self._inner.connection_made(cast(asyncio.Transport, tagged))

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            self._on_close(self._client_id)


async def serve_direct(
    protocol_factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    on_open: Callable[[int, str], object],
    on_close: Callable[[int], object],
) -> asyncio.Server:
    """Serve agents on host:port, each with a client id as the addon would give it."""
    ids = itertools.count(1)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _DirectAgent(protocol_factory(), next(ids), on_open, on_close),
        host,
        port,
        backlog=128,
    )

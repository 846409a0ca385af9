"""Serving an ASGI application (the MCP SDK's Streamable HTTP transport) from aiohttp.

Only what one request needs: the scope is built from the aiohttp request, `receive`
hands over the body once and then reports the disconnect (when the agent goes away or
the answer is complete), and `send` streams the answer into an aiohttp
`StreamResponse`, so server-sent event streams flow as they are written. The request
has already passed the bridge's middleware (Host/Origin/token checks, agent identity,
errors) like any other route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

from sidecar.errors import SidecarError
from sidecar.web.http import read_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

# Hop-by-hop headers are aiohttp's business, not the application's.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})
DISCONNECT_POLL = 0.5


def scope_of(request: web.Request, state: dict[str, Any]) -> Scope:
    """The ASGI HTTP scope of an aiohttp request."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport else None
    host, _, port = request.host.rpartition(":")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": (str(peer[0]), int(peer[1])) if peer else None,
        "server": (host or request.host, int(port) if port.isdigit() else 80),
        "state": state,
    }


class Exchange:
    """One request/answer between aiohttp and the ASGI application."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.request = request
        self.body = body
        self.response: web.StreamResponse | None = None
        self._body_sent = False
        self._done = asyncio.Event()

    async def receive(self) -> Message:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._until_disconnected()
        return {"type": "http.disconnect"}

    async def _until_disconnected(self) -> None:
        # aiohttp does not cancel a handler whose agent left: look at the transport.
        while not self._done.is_set() and not self._agent_gone():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._done.wait(), DISCONNECT_POLL)

    def _agent_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.response = _start(message)
        elif kind == "http.response.body":
            await self._write(message.get("body", b""), bool(message.get("more_body", False)))

    async def _write(self, chunk: bytes, more: bool) -> None:
        response = self.response
        if response is None:
            raise RuntimeError("ASGI application sent a body before http.response.start")
        if not response.prepared:
            await response.prepare(self.request)
        if chunk and not self._agent_gone():
            await response.write(chunk)
        if not more:
            await response.write_eof()
            self._done.set()

    def finish(self) -> None:
        self._done.set()


def _start(message: Message) -> web.StreamResponse:
    response = web.StreamResponse(status=int(message["status"]))
    for name, value in message.get("headers", []):
        if name.lower() not in _HOP_BY_HOP:
            response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
    return response


async def serve(app: AsgiApp, request: web.Request, state: dict[str, Any]) -> web.StreamResponse:
    """Answer `request` with the ASGI application `app`; `state` becomes `scope["state"]`."""
    body = await _read_body(request)
    exchange = Exchange(request, body)
    try:
        await app(scope_of(request, state), exchange.receive, exchange.send)
    except Exception:
        if exchange.response is None or not exchange.response.prepared:
            raise  # nothing sent yet: the error middleware answers
        log.exception("the ASGI application failed in the middle of its answer")
        exchange.response.force_close()
    finally:
        exchange.finish()
    if exchange.response is None:
        raise SidecarError("the ASGI application sent no answer")
    if not exchange.response.prepared:
        await exchange.response.prepare(request)
        await exchange.response.write_eof()
    return exchange.response


async def _read_body(request: web.Request) -> bytes:
    if not request.body_exists:
        return b""
    return await read_body(request)

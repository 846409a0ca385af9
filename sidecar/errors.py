"""Errors the agent is told about.

Two families describe trouble with a peer (Godot's DAP/LSP, the addon's link):
``TransportError`` (the peer is gone or silent) and ``ProtocolError`` (the peer said
something we cannot use). ``RequestError`` is the agent's own mistake. Each carries the
HTTP status, a machine word and a sentence saying what to do, so the HTTP layer only
has to render it.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """An error with everything the HTTP layer needs to answer the agent."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"status": "error", "error": error}


class RequestError(BridgeError):
    """The agent's request is wrong: bad JSON, a missing field, an unknown path."""

    status = 400
    code = "bad_request"


class TransportError(BridgeError):
    """A peer is not there: not connected, gone mid-request. Worth retrying later."""

    status = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))


class PeerTimeout(TransportError):
    """A peer stayed silent past the deadline."""

    status = 504
    code = "timeout"


class ProtocolError(BridgeError):
    """A peer sent something we cannot use (bad frame, bad JSON-RPC, error answer)."""

    status = 502
    code = "bad_peer_message"


class WrongEditor(TransportError):
    """The port is served by another editor (another project): nothing is sent to it."""

    code = "not_connected"


class Unverified(TransportError):
    """Nothing proves yet that the port is our editor's: not connected, proof retried."""

    code = "not_connected"

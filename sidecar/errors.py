"""Errors the agent is told about.

Two families describe trouble with a peer (Godot's DAP/LSP, the addon's link):
``TransportError`` (the peer is gone or silent) and ``ProtocolError`` (the peer said
something we cannot use). ``RequestError`` is the agent's own mistake. Each carries the
HTTP status, a machine word and a sentence saying what to do, so the HTTP layer only
has to render it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """One condition an agent can be told about: its machine word and HTTP status."""

    name: str
    status: int
    meaning: str


# The bridge's whole vocabulary of errors: one code per condition, on every endpoint.
# Each operation lists the codes it can answer (web/operation.py); COMMON ones can come
# from any endpoint. A code not listed here cannot be raised (SidecarError checks).
_VOCABULARY = (
    ErrorCode("bad_request", 400, "the request is malformed"),
    ErrorCode("invalid_json", 400, "the body is not a JSON object"),
    ErrorCode("missing_field", 400, "a required field is missing (`field` names it)"),
    ErrorCode("invalid_field", 400, "a field has the wrong type or value (`field` names it)"),
    ErrorCode("not_a_script", 400, "the file is not a GDScript (.gd) file"),
    ErrorCode("not_text", 400, "the file is not UTF-8 text"),
    ErrorCode("missing_host", 400, "the request has no Host header"),
    ErrorCode("client_gone", 400, "the client went away before its request was read"),
    ErrorCode("unauthorized", 401, "a token is required: Authorization: Bearer <token>"),
    ErrorCode("outside_project", 403, "the path is outside the project"),
    ErrorCode("forbidden_origin", 403, "a browser page of another origin may not call"),
    ErrorCode("not_found", 404, "no such endpoint, file or document"),
    ErrorCode("method_not_allowed", 405, "the endpoint does not take this method"),
    ErrorCode("request_timeout", 408, "the request's body did not arrive in time"),
    ErrorCode("conflict", 409, "the request conflicts with what others are doing"),
    ErrorCode("stale_hash", 409, "the file changed since the sha256 you sent"),
    ErrorCode("not_open", 409, "the document is not open"),
    ErrorCode("not_open_by_agent", 409, "you have not opened this document"),
    ErrorCode("not_stopped", 409, "the game is not stopped at a breakpoint"),
    ErrorCode("not_running", 409, "no game is running"),
    ErrorCode(
        "lease_held",
        409,
        "another agent holds the control lease (`holder`, `expires_at` say who and until "
        "when; Retry-After)",
    ),
    ErrorCode("no_display", 409, "the game runs without a display (headless): nothing to see"),
    ErrorCode("body_too_large", 413, "the request body is too large"),
    ErrorCode("unsupported_media_type", 415, "the body must be application/json"),
    ErrorCode("misdirected_request", 421, "the Host header names another server"),
    ErrorCode("evaluate_failed", 422, "Godot could not evaluate the expression"),
    ErrorCode("internal_error", 500, "a bug in the sidecar; its log says more"),
    ErrorCode("unsupported_by_godot", 501, "the editor's Godot version lacks what this needs"),
    ErrorCode("bad_peer_message", 502, "Godot sent something the bridge cannot use"),
    ErrorCode("bad_framing", 502, "Godot's message framing is broken"),
    ErrorCode("godot_error", 502, "Godot's debug adapter answered an error"),
    ErrorCode("lsp_error", 502, "Godot's language server answered an error"),
    ErrorCode("editor_action_failed", 502, "the editor could not do the action"),
    ErrorCode("service_unavailable", 503, "a service is away; retry after Retry-After"),
    ErrorCode("not_connected", 503, "Godot's DAP or LSP is not connected (yet)"),
    ErrorCode("not_available", 503, "this sidecar cannot reach that service"),
    ErrorCode("no_editor", 503, "no editor is linked to this sidecar"),
    ErrorCode("connection_lost", 503, "the connection to Godot went away mid-request"),
    ErrorCode("peer_closed", 503, "Godot closed the connection"),
    ErrorCode("timeout", 504, "Godot stayed silent past the deadline"),
)
CODES: dict[str, ErrorCode] = {c.name: c for c in _VOCABULARY}
# What any endpoint can answer, whatever it does: the guard's checks, a malformed body,
# a service away, Godot silent, a bug.
COMMON: tuple[str, ...] = (
    "invalid_json",
    "unauthorized",
    "forbidden_origin",
    "missing_host",
    "misdirected_request",
    "request_timeout",
    "body_too_large",
    "unsupported_media_type",
    "internal_error",
)


class SidecarError(Exception):
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
            if status is None and code in CODES:
                self.status = CODES[code].status
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"status": "error", "error": error}


class RequestError(SidecarError):
    """The agent's request is wrong: bad JSON, a missing field, an unknown path."""

    status = 400
    code = "bad_request"


class TransportError(SidecarError):
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


class ProtocolError(SidecarError):
    """A peer sent something we cannot use (bad frame, bad JSON-RPC, error answer)."""

    status = 502
    code = "bad_peer_message"


class WrongEditor(TransportError):
    """The port is served by another editor (another project): nothing is sent to it."""

    code = "not_connected"


class Unverified(TransportError):
    """Nothing proves yet that the port is our editor's: not connected, proof retried."""

    code = "not_connected"

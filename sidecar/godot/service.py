"""State of one connection to a Godot server (DAP or LSP), as `/status` shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class State(str, Enum):
    DISCONNECTED = "disconnected"
    # The editor has not served this port yet since the sidecar started: probed briskly.
    STARTING = "starting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ERROR = "error"
    RECONNECTING = "reconnecting"
    # Something answers on the port, but it is not this sidecar's editor: left alone.
    WRONG_EDITOR = "wrong_editor"


# How a connection refused for want of proof that the port is our editor's begins its message
# (no editor pid to check, and the language server has not named its project yet).
UNVERIFIED = "unverified"

# What `/status` says in `message` for a state that needs no more explanation.
_MESSAGES = {
    State.STARTING: "editor starting",
    State.CONNECTING: "connecting",
    State.CONNECTED: "connected",
    State.RECONNECTING: "reconnecting",
    State.DISCONNECTED: "disconnected",
}


@dataclass
class ServiceStatus:
    """What an agent sees of a service in `/status`."""

    name: str
    port: int
    state: State = State.DISCONNECTED
    retry_count: int = 0
    last_activity: float | None = None
    last_error: str | None = None
    # When the next automatic connection attempt is due (epoch seconds), if one is scheduled.
    next_retry_at: float | None = None
    # Why the service was taken down on purpose (POST /disconnect) and by which agent; cleared
    # when it connects again.
    down_reason: str | None = None
    down_by: str | None = None
    _since: float = field(default_factory=time.time)

    def touch(self) -> None:
        self.last_activity = time.time()

    def set_state(self, state: State, error: str | None = None) -> None:
        self.state = state
        self._since = time.time()
        self.last_error = error
        if state is State.CONNECTED:
            self.down_reason = self.down_by = None

    def taken_down(self, reason: str, by: str) -> None:
        """Remember who disconnected the service on purpose, and why (shown until it is back)."""
        self.down_reason = reason
        self.down_by = by

    def resuming(self) -> None:
        """Reconnecting by itself after a requested disconnect: no longer 'disconnected by'."""
        self.down_reason = self.down_by = None

    @property
    def message(self) -> str:
        """One sentence for humans: the state, and why when it is not connected."""
        if self.state is State.WRONG_EDITOR and self.last_error:
            return self.last_error
        if self.down_reason and self.state is not State.CONNECTED:
            return f"disconnected by {self.down_by}: {self.down_reason}"
        base = _MESSAGES.get(self.state, self.state.value)
        unverified = bool(self.last_error and self.last_error.startswith(UNVERIFIED))
        if self.state is State.STARTING and not unverified:
            return base  # refusals are expected while the editor imports and starts its servers
        return f"{base}: {self.last_error}" if self.last_error and not self.ready else base

    @property
    def ready(self) -> bool:
        return self.state is State.CONNECTED

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "port": self.port,
            "state": self.state.value,
            "ready": self.ready,
            "retry_count": self.retry_count,
            "last_activity": _iso(self.last_activity),
            "last_error": self.last_error,
            "state_since": _iso(self._since),
            "next_retry_in_s": self.retry_in(),
            "message": self.message,
            "down_reason": self.down_reason,
            "down_by": self.down_by,
        }

    def retry_in(self) -> float | None:
        """Seconds until the next scheduled connection attempt, if any."""
        if self.next_retry_at is None:
            return None
        return max(0.0, round(self.next_retry_at - time.time(), 1))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

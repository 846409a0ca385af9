"""State of one connection to a Godot server (DAP or LSP), as `/status` shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class State(str, Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ERROR = "error"
    RECONNECTING = "reconnecting"


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
    _since: float = field(default_factory=time.time)

    def touch(self) -> None:
        self.last_activity = time.time()

    def set_state(self, state: State, error: str | None = None) -> None:
        self.state = state
        self.last_error = error
        self._since = time.time()

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

"""Who is connected: one record per agent connection, keyed by the addon's client id."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Agent names show up in logs and JSON; keep them short and printable.
_MAX_NAME = 64


@dataclass
class Agent:
    client_id: int
    peer: str
    connected_at: float = field(default_factory=time.time)
    name: str | None = None
    requests: int = 0

    @property
    def identity(self) -> str:
        """The key per-agent state (breakpoints, documents) is stored under."""
        return self.name or self.scoped_identity

    @property
    def scoped_identity(self) -> str:
        """The identity of this connection without X-Agent-Id: what it keeps under that
        name (even if it named itself later) goes when the connection closes."""
        return f"client-{self.client_id}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.client_id,
            "agent": self.name,
            "identity": self.identity,
            "peer": self.peer,
            "connected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.connected_at)),
            "requests": self.requests,
        }


def clean_agent_name(raw: str | None) -> str | None:
    """The `X-Agent-Id` header as a safe short name, or None when absent or empty."""
    if not raw:
        return None
    name = "".join(ch for ch in raw.strip() if ch.isprintable())[:_MAX_NAME]
    return name or None


class AgentRegistry:
    """Agents currently connected, with the limit the addon enforces."""

    def __init__(self, max_clients: int = 100) -> None:
        self.max_clients = max_clients
        self._agents: dict[int, Agent] = {}
        # Told of every agent whose connection closed (its per-connection state goes).
        self.on_removed: Callable[[Agent], None] | None = None

    def add(self, client_id: int, peer: str) -> Agent:
        agent = Agent(client_id, peer)
        self._agents[client_id] = agent
        return agent

    def remove(self, client_id: int) -> Agent | None:
        agent = self._agents.pop(client_id, None)
        if agent is not None and self.on_removed is not None:
            try:
                self.on_removed(agent)
            except Exception:  # a hook's bug must not break the connection bookkeeping
                log.exception("on_removed hook failed for %s", agent.identity)
        return agent

    def get(self, client_id: int) -> Agent | None:
        return self._agents.get(client_id)

    def clear(self) -> None:
        self._agents.clear()

    def __len__(self) -> int:
        return len(self._agents)

    def all(self) -> list[Agent]:
        return list(self._agents.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "active": len(self._agents),
            "max": self.max_clients,
            "agents": [a.as_json() for a in sorted(self._agents.values(), key=_by_id)],
        }


def _by_id(agent: Agent) -> int:
    return agent.client_id

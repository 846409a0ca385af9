"""The stdlib-only client and the gdbridge CLI (imports nothing else of sidecar).

    from sidecar.client import BridgeClient

Importing this package loads `sidecar.client.client` only; the CLI (`sidecar.client.cli`)
is loaded when asked for.
"""

from __future__ import annotations

from sidecar.client.client import (
    AgentInfo,
    Breakpoint,
    BridgeClient,
    BridgeError,
    BridgeHTTPError,
    BridgeUnreachable,
    DebugEvent,
    EventsPage,
    FileText,
    ServiceStatus,
    Status,
    default_url,
    position,
)

__all__ = [
    "AgentInfo",
    "Breakpoint",
    "BridgeClient",
    "BridgeError",
    "BridgeHTTPError",
    "BridgeUnreachable",
    "DebugEvent",
    "EventsPage",
    "FileText",
    "ServiceStatus",
    "Status",
    "default_url",
    "position",
]

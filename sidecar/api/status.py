"""`GET /status`: the services' state and the connected agents."""

from __future__ import annotations

from pydantic import Field

from sidecar.api.shapes import AgentInfo, ServiceStatus
from sidecar.web.operation import Answer, NoArguments, Operation


class Clients(Answer):
    active: int
    max: int = Field(description="most agents at once (GODOT_BRIDGE_MAX_CLIENTS)")
    agents: list[AgentInfo]


class SidecarInfo(Answer):
    pid: int
    version: str
    project: str
    editor_pid: int | None = Field(
        None, description="the editor its ports must belong to; null: unchecked"
    )
    uptime_s: float


class Status(Answer):
    overall_ready: bool = Field(description="both services connected")
    debug_adapter: ServiceStatus
    language_server: ServiceStatus
    clients: Clients
    sidecar: SidecarInfo


STATUS = Operation(
    name="status",
    path="/status",
    methods=("GET",),
    summary="the services' state and the connected agents",
    description='The seed\'s shape: the fields sit at the top level beside `"status": "ok"`.',
    arguments=NoArguments,
    answer=Status,
    envelope=False,
    tags=("bridge",),
)

OPERATIONS = (STATUS,)

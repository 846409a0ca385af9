"""`GET /status`: the services' state and the connected agents."""

from __future__ import annotations

from pydantic import Field

from sidecar.api.control import LeaseState
from sidecar.api.game_clock import ClockAnswer
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


class GameSummary(Answer):
    game: int = Field(description="games started since the bridge began; 0: none yet")
    errors: int = Field(description="errors of this game")
    warnings: int = Field(description="warnings of this game")
    errors_by_file: dict[str, int] = Field(
        description="this game's errors per file (res:// when a script's)"
    )
    warnings_by_file: dict[str, int]
    latest_error: int = Field(description="newest /game/errors record number")
    clock: ClockAnswer | None = Field(
        None, description="suspended or not, time scale, frames advanced (GET /game/clock)"
    )


class GameDisplayStatus(Answer):
    mode: str = Field(
        description="where launched games render: `virtual` (an X display of the bridge's "
        "own Xvfb, or one GODOT_BRIDGE_GAME_DISPLAY names), `window` (a GUI editor's games "
        "open their window), `headless` (no display: no screenshots), `unknown` (the "
        "editor has not said yet)"
    )
    display: str | None = Field(description="the X display games use (`:90`), if virtual")
    reason: str = Field(description="why this mode (and how to get a display when headless)")


class LspRequests(Answer):
    """The language server's requests: fair turns per agent, identical reads sent once."""

    sent: int = Field(description="requests that went to Godot's language server")
    shared: int = Field(
        description="answers taken from an identical read already on its way (not sent again)"
    )
    in_flight: int = Field(description="requests Godot is working on now")
    waiting: int = Field(description="agents' requests queued for their turn")
    window: int = Field(description="most requests in flight at Godot")
    per_agent: int = Field(
        description="most requests in flight for one agent while another is active (alone: "
        "the window)"
    )


class Status(Answer):
    overall_ready: bool = Field(description="both services connected")
    debug_adapter: ServiceStatus
    language_server: ServiceStatus
    clients: Clients
    sidecar: SidecarInfo
    game: GameSummary | None = Field(
        None, description="the running game's runtime errors (see /game/errors)"
    )
    game_display: GameDisplayStatus | None = Field(
        None, description="where launched games render (screenshots need a display)"
    )
    control: LeaseState | None = Field(
        None, description="who holds the control lease and until when; null: control is open"
    )
    lsp_requests: LspRequests | None = Field(
        None, description="the language server's requests since the bridge began"
    )


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

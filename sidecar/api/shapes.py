"""Shapes several operations share: the services' state, agents, positions, documents.

Positions say their base: LSP bodies keep LSP's 0-based `line`/`character` (UTF-16 code
units); the debugger and the seed count lines from 1.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.config import JsonDict

from sidecar.web.operation import Answer, Arguments

# A script's name ends in .gd. Said in the schema only: the server answers any other file
# with its own code, 400 not_a_script, rather than a generic invalid_field.
SCRIPT_PATTERN: JsonDict = {"pattern": r"\.[gG][dD]\s*$"}

ServiceState = Literal[
    "disconnected", "starting", "connecting", "connected", "error", "reconnecting", "wrong_editor"
]


class ServiceStatus(Answer):
    service: str = Field(description="debug_adapter or language_server")
    port: int = Field(description="Godot's port for it")
    state: ServiceState = Field(
        description="starting: the editor has not served the port yet (probed every 0.25 s); "
        "wrong_editor: another editor serves the port, nothing is sent to it"
    )
    ready: bool = Field(description="connected and usable")
    retry_count: int = Field(description="failed attempts since the last success")
    last_activity: str | None = Field(None, description="ISO 8601 UTC time of the last message")
    last_error: str | None = None
    state_since: str | None = None
    next_retry_in_s: float | None = Field(
        None, description="seconds until the next automatic attempt"
    )
    message: str = Field("", description="the state in words, and why when not connected")
    down_reason: str | None = Field(
        None, description="why an agent disconnected it (POST /disconnect)"
    )
    down_by: str | None = Field(None, description="the agent that disconnected it")


class AgentInfo(Answer):
    id: int = Field(description="the addon's client id of the connection")
    agent: str | None = Field(None, description="the X-Agent-Id it sent, if any")
    identity: str = Field(description="the key its breakpoints and documents are kept under")
    peer: str = Field("", description="address:port")
    connected_at: str = Field(description="ISO 8601 UTC")
    requests: int = Field(description="requests served on this connection")


class Position(Arguments):
    """A place in a text document, LSP's way: both 0-based."""

    line: int = Field(ge=0, description="0-based line")
    character: int = Field(ge=0, description="0-based, in UTF-16 code units")


class TextDocument(Arguments):
    uri: str = Field(
        min_length=1,
        description="res://, project-relative, absolute or file:// path of a project file",
        examples=["res://player.gd"],
    )

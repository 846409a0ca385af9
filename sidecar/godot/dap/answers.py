"""Godot's DAP answers mapped onto the bridge's: a body, or an error with a status."""

from __future__ import annotations

from typing import Any

from sidecar.errors import SidecarError

Args = dict[str, Any]


class GodotError(SidecarError):
    """Godot answered a request with success=false."""

    status = 502
    code = "godot_error"

    def __init__(self, message: str, godot_error: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.godot_error = godot_error


_GODOT_STATUS = {"wrong_path": 400, "not_running": 409, "timeout": 504}


def body_or_raise(answer: Args, command: str) -> Args:
    if answer.get("success"):
        body = answer.get("body")
        return body if isinstance(body, dict) else {}
    kind = str(answer.get("message") or "unknown")
    raise GodotError(
        f"Godot's debug adapter failed '{command}': {godot_message(answer)}",
        kind,
        status=_GODOT_STATUS.get(kind, 502),
        details={"command": command, "godot_error": kind},
    )


def godot_message(answer: Args) -> str:
    """Godot's error text with its {placeholders} filled in."""
    error = as_dict(as_dict(answer.get("body")).get("error"))
    text = str(error.get("format") or answer.get("message") or "no details")
    variables = as_dict(error.get("variables"))
    for name, value in variables.items():
        text = text.replace("{" + str(name) + "}", str(value))
    return text


def error_text(data: list[Any]) -> str:
    """The message of a game `error`: [h, m, s, ms, file, function, line, error,
    description, is_warning, ...]; the description says it best when there is one."""
    description = data[8] if len(data) > 8 else ""
    error = data[7] if len(data) > 7 else ""
    return str(description or error or "the game reported an error")


def as_dict(value: Any) -> Args:
    """A JSON object from Godot, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}

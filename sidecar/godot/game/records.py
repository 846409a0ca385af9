"""The running game's runtime errors and performance monitors, as its messages report them.

Fed every `godot/custom_data` message by the DAP session. Errors (`error`: `push_error`,
`push_warning`, failed engine checks, script errors) go to a bounded, numbered log read
with long-polls like /debug/events; monitors (`performance:profile_frame`, about once a
second) keep their latest values and a short history.

The game's errors only: the editor's own errors reach the bridge elsewhere. The error log
and its numbers live as long as the sidecar (an agent's cursor stays valid across games);
each record carries the number of the game that sent it. Per-file counts and monitors are
of the current game and start afresh when a game starts (its `set_pid`, the first message
every game sends).
"""

from __future__ import annotations

import collections
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sidecar.godot.dap.events import MAX_WAIT, DebugEvent, EventLog
from sidecar.godot.game.messages import (
    ERROR,
    MONITORS_4_6,
    PROFILE_FRAME,
    PROFILE_NAMES,
    GameError,
    MalformedMessage,
    parse_error,
    parse_profile_frame,
    parse_profile_names,
)

log = logging.getLogger(__name__)

Args = dict[str, Any]
GAME_STARTED = "set_pid"
ERROR_CAPACITY = 1000
HISTORY_FRAMES = 60  # profile frames kept: about a minute at one a second
ERROR_KINDS = frozenset({"error"})  # the log's kinds: "error" and "warning"


def error_record(error: GameError, game: int) -> Args:
    """An error as agents read it: `file`/`line`/`function` are where in the project's
    scripts (res://) when the game knows, else where it was raised (`source`)."""
    where = error.script_location
    return {
        "game": game,
        "uptime_ms": error.uptime_ms,
        "message": error.message,
        "description": error.description,
        "is_warning": error.is_warning,
        "file": where.file if where else error.source_file,
        "line": where.line if where else error.line,
        "function": where.function if where else error.function,
        "source": {
            "file": error.source_file,
            "line": error.line,
            "function": error.function,
        },
        "stack": [{"file": f.file, "line": f.line, "function": f.function} for f in error.stack],
    }


class GameRecords:
    """The game's errors (a numbered log) and monitors (latest values and history)."""

    def __init__(self, capacity: int = ERROR_CAPACITY, history: int = HISTORY_FRAMES) -> None:
        self.errors = EventLog(capacity)  # kind "error" or "warning", body = error_record
        self.game = 0  # games started while this sidecar listened
        self.error_counts: Counter[str] = Counter()  # of this game, by `file`
        self.warning_counts: Counter[str] = Counter()
        self.malformed = 0  # messages that did not parse (logged, dropped)
        self._custom_names: tuple[str, ...] = ()
        self._frames: collections.deque[tuple[float, dict[str, float | None]]] = collections.deque(
            maxlen=history
        )

    def feed(self, message: str, data: list[Any]) -> None:
        try:
            if message == GAME_STARTED:
                self._new_game()
            elif message == ERROR:
                self._error(parse_error(data))
            elif message == PROFILE_FRAME:
                frame = parse_profile_frame(data)
                self._frames.append((time.time(), frame.named(MONITORS_4_6, self._custom_names)))
            elif message == PROFILE_NAMES:
                self._custom_names = parse_profile_names(data)
        except MalformedMessage as exc:
            self.malformed += 1
            log.warning("dropped a game message: %s", exc)

    def _new_game(self) -> None:
        self.game += 1
        self.error_counts.clear()
        self.warning_counts.clear()
        self._frames.clear()
        self._custom_names = ()

    def _error(self, error: GameError) -> None:
        record = error_record(error, self.game)
        counts = self.warning_counts if error.is_warning else self.error_counts
        counts[record["file"]] += 1
        self.errors.append("warning" if error.is_warning else "error", record)

    # -- reading ---------------------------------------------------------------------

    async def read_errors(
        self, since: int = 0, wait: float = 0.0, limit: int = 500, warnings: bool = True
    ) -> Args:
        """Records numbered above `since` (without warnings unless asked), waiting up to
        `wait` s for the first one that qualifies: the page shape of /debug/events."""
        since = min(max(since, 0), self.errors.latest)  # a number from before a restart
        kinds = None if warnings else ERROR_KINDS
        await self.errors.next_of(since, kinds, min(max(wait, 0.0), MAX_WAIT))
        events, dropped = self.errors.after(since)
        chosen = [e for e in events if kinds is None or e.event in kinds][:limit]
        if len(chosen) == limit:
            next_ = chosen[-1].seq  # more may follow: read on right after the last given
        else:
            next_ = events[-1].seq if events else since  # skipped warnings are read too
        return {
            "errors": [_as_json(e) for e in chosen],
            "next": next_,
            "latest": self.errors.latest,
            "dropped": dropped,
        }

    def monitors(self, names: Sequence[str] | None = None, history: int = 0) -> Args:
        """The latest monitor values by name (all, or the `names` asked), and the last
        `history` frames of them, oldest first."""
        wanted = set(names) if names else None

        def pick(values: dict[str, float | None]) -> dict[str, float | None]:
            return {k: v for k, v in values.items() if wanted is None or k in wanted}

        latest = self._frames[-1] if self._frames else None
        frames = list(self._frames)[-history:] if history > 0 else []
        return {
            "game": self.game,
            "time": round(latest[0], 3) if latest else None,
            "frames": len(self._frames),
            "values": pick(latest[1]) if latest else {},
            "history": [{"time": round(t, 3), "values": pick(v)} for t, v in frames],
        }

    def summary(self) -> Args:
        """For /status: this game's error and warning counts per file."""
        return {
            "game": self.game,
            "errors": sum(self.error_counts.values()),
            "warnings": sum(self.warning_counts.values()),
            "errors_by_file": dict(self.error_counts),
            "warnings_by_file": dict(self.warning_counts),
            "latest_error": self.errors.latest,
        }


def _as_json(event: DebugEvent) -> Args:
    return {"seq": event.seq, "time": round(event.time, 3), **event.body}

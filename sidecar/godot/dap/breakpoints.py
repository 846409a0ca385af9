"""The breakpoint book: each agent's breakpoints per file, and our ids for them.

Godot's `setBreakpoints` replaces a file's breakpoints for everyone, so each agent's set
is kept here and Godot always gets the union per file. Godot's own breakpoint ids change
whenever the editor toggles a line and after every game; ours are one per (file, line).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import SidecarError
from sidecar.godot.dap.paths import to_res_path

log = logging.getLogger(__name__)

Args = dict[str, Any]
# Lines Godot never stops at, though it marks a breakpoint there verified: blank lines,
# comments, and declarations that compile to no code. (Its `breakpointLocations` only
# echoes the line asked about, so the text is all there is to go by.)
NEVER_RUNS = re.compile(r"\s*(#.*)?|\s*(signal|extends|class_name)\b.*", re.DOTALL)
GHOST_WAIT = 2.0  # seconds a removed line may still stop the game (Godot tells it late)
SIDECAR = "sidecar"  # the scheduler's name for requests the sidecar makes on its own
# One setBreakpoints to Godot in `agent`'s turn: its answer's body.
Send = Callable[[str, Args], Awaitable[Args]]


# `hitCondition`: an optional operator, then a count; `% N` may say which remainder.
HIT_CONDITION = re.compile(r"\s*(?:(>=|<=|==|>|<)\s*)?(\d+)\s*|\s*%\s*(\d+)\s*(?:==\s*(\d+)\s*)?")
HIT_GRAMMAR = (
    "a count N (stop from the Nth hit on, as VS Code does), '>= N', '> N', '== N', '< N', "
    "'<= N', or '% N' (every Nth hit) / '% N == R' (the hits whose count leaves R when "
    "divided by N)"
)


@dataclass(frozen=True)
class HitCondition:
    """When a breakpoint's hit count lets it stop (or log): the count, from 1, against
    `value` with `op`; `%` compares the count modulo `value` with `remainder`."""

    op: str
    value: int
    remainder: int = 0

    @classmethod
    def parse(cls, text: str) -> HitCondition:
        found = HIT_CONDITION.fullmatch(text)
        if found is None:
            raise ValueError(f"'{text}' is not a hit condition: {HIT_GRAMMAR}")
        op, count, modulo, remainder = found.groups()
        if modulo is None:
            return cls(op or ">=", int(count))
        if int(modulo) < 1 or int(remainder or 0) >= int(modulo):
            raise ValueError(
                f"'{text}': '% N == R' needs N of 1 or more and R below N ({HIT_GRAMMAR})"
            )
        return cls("%", int(modulo), int(remainder or 0))

    def met(self, count: int) -> bool:
        if self.op == "%":
            return count % self.value == self.remainder
        compare: dict[str, Callable[[int, int], bool]] = {
            ">=": lambda a, b: a >= b,
            ">": lambda a, b: a > b,
            "==": lambda a, b: a == b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }
        return compare[self.op](count, self.value)


def log_parts(message: str) -> list[tuple[str, bool]]:
    """A logMessage cut into (text, is_expression) parts: `{expression}` is evaluated,
    `{{` and `}}` are literal braces. A ValueError says what is wrong with it."""
    parts: list[tuple[str, bool]] = []
    text, i = "", 0
    while i < len(message):
        char = message[i]
        if message.startswith(("{{", "}}"), i):
            text, i = text + char, i + 2
        elif char == "}":
            raise ValueError(f"a '}}' with no '{{' at {i} (write '}}}}' for a brace)")
        elif char == "{":
            end = message.find("}", i + 1)
            expression = message[i + 1 : end].strip() if end > 0 else ""
            if end < 0 or "{" in message[i + 1 : end]:
                raise ValueError(f"the '{{' at {i} is not closed (write '{{{{' for a brace)")
            if not expression:
                raise ValueError(f"'{{}}' at {i} has no expression in it")
            parts += [(text, False), (expression, True)]
            text, i = "", end + 1
        else:
            text, i = text + char, i + 1
    return [p for p in [*parts, (text, False)] if p[0] or p[1]]


@dataclass(frozen=True)
class SourceBreakpoint:
    """One agent's breakpoint on a line. With a `condition`, a `hit_condition` or a
    `log_message` the bridge decides at each stop there whether this agent wants it
    (see hits.py); Godot only knows the line."""

    line: int
    condition: str | None = None
    hit_condition: str | None = None
    log_message: str | None = None

    def __post_init__(self) -> None:
        # Checked here too: a bad one must never reach a stop.
        if self.hit_condition is not None:
            HitCondition.parse(self.hit_condition)
        if self.log_message is not None:
            log_parts(self.log_message)

    @property
    def plain(self) -> bool:
        """Stops at every hit, as Godot's own breakpoints do."""
        return self.condition is None and self.hit_condition is None and self.log_message is None

    def as_json(self) -> Args:
        extra = {
            "condition": self.condition,
            "hitCondition": self.hit_condition,
            "logMessage": self.log_message,
        }
        return {"line": self.line, **{k: v for k, v in extra.items() if v is not None}}


@dataclass
class FileBreakpoints:
    by_agent: dict[str, list[SourceBreakpoint]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def union(self, line_count: int | None = None) -> list[int]:
        """Every agent's lines, less those past the end of the file.

        Godot answers a whole setBreakpoints with an empty list (and skips removing
        old lines) when one line is past the end of the script.
        """
        lines = {b.line for bps in self.by_agent.values() for b in bps}
        return sorted(n for n in lines if line_count is None or n <= line_count)


class BreakpointBook:
    """Every agent's breakpoints, sent to Godot as one union per file."""

    def __init__(self, project: str, send: Send, connected: Callable[[], bool]) -> None:
        self.project = project
        self._send = send
        self._connected = connected
        self.files: dict[str, FileBreakpoints] = {}
        # Connection-scoped identities whose connection closed: nothing of theirs is kept.
        self.departed: set[str] = set()
        # Breakpoint ids of our own, one per (file, line): Godot numbers a line anew each
        # time the editor toggles it (at launch too) and after every game, and names the
        # oldest entry of a line in `hitBreakpointIds`, so its ids disagree with each other.
        self._ids: dict[tuple[str, int], int] = {}
        # Hits counted for conditional breakpoints: (agent, path, line) → hits so far.
        # An agent's counts in a file start again when it sets that file's breakpoints.
        self._hits: dict[tuple[str, str, int], int] = {}
        # When each line left a file's union: the game may still stop there for a moment.
        self._gone: dict[tuple[str, int], float] = {}
        self.removals = 0  # lines that left a union, ever: a stop there may go unannounced

    def unions(self) -> Iterator[tuple[str, list[int]]]:
        """Each file's union of lines that Godot can take (none past the end)."""
        for path, bps in list(self.files.items()):
            yield path, bps.union(line_count(path))

    async def set(self, agent: str, path: str, wanted: list[SourceBreakpoint]) -> Args:
        """Replace `agent`'s breakpoints in the script at `path` (real, absolute); Godot
        gets the union of everyone's. The answer: the agent's lines, with our ids."""
        bps = self.files.setdefault(path, FileBreakpoints())
        async with bps.lock:
            before = bps.union()
            # A request of a connection that has closed meanwhile keeps nothing.
            if wanted and agent not in self.departed:
                bps.by_agent[agent] = wanted
            else:
                bps.by_agent.pop(agent, None)
            self._forget_hits(agent, path)
            self._went(path, before, bps.union())
            text = read_lines(path)
            union = bps.union(len(text))
            body = await self._send(agent, set_args(path, union))
        by_line = {b.get("line"): b for b in body.get("breakpoints", []) if isinstance(b, dict)}
        return {"breakpoints": [self.own(b, by_line.get(b.line), path, text) for b in wanted]}

    def own(self, bp: SourceBreakpoint, godot: Args | None, path: str, text: list[str]) -> Args:
        """Godot's answer for one of the agent's lines, with the bridge's id for it."""
        own = {"id": self.breakpoint_id(path, bp.line), "line": bp.line}
        why = never_stops(text, bp.line)
        if godot is not None and why is None:
            return {**godot, **own, "verified": bool(godot.get("verified", False))}
        if why is None:
            why = (
                "Godot did not accept this breakpoint (the editor may have an older "
                "version of the file loaded)"
            )
        return {**(godot or {}), **own, "verified": False, "source": {"path": path}, "message": why}

    def breakpoint_id(self, path: str, line: int) -> int:
        """The bridge's id of a breakpoint line, the same in every answer and event."""
        key = (os.path.realpath(path), line)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._ids) + 1
        return found

    def own_event(self, body: Args) -> Args:
        """Godot's `breakpoint` event with the bridge's id for its line."""
        bp = body.get("breakpoint")
        if not isinstance(bp, dict):
            return body
        source = bp.get("source")
        path = source.get("path") if isinstance(source, dict) else None
        if not isinstance(path, str) or not isinstance(bp.get("line"), int):
            return body
        return {**body, "breakpoint": {**bp, "id": self.breakpoint_id(path, bp["line"])}}

    def hit_by(self, path: str, line: int) -> list[str]:
        """The agents with a breakpoint at `line` of `path` (real, absolute)."""
        bps = self.files.get(path)
        return sorted(
            agent
            for agent, lst in (bps.by_agent.items() if bps is not None else ())
            if any(b.line == line for b in lst)
        )

    def at(self, path: str, line: int) -> dict[str, list[SourceBreakpoint]]:
        """Each agent's breakpoints at `line` of `path` (real, absolute)."""
        bps = self.files.get(path)
        out: dict[str, list[SourceBreakpoint]] = {}
        for agent, lst in bps.by_agent.items() if bps is not None else ():
            here = [b for b in lst if b.line == line]
            if here:
                out[agent] = here
        return out

    def count_hit(self, agent: str, path: str, line: int) -> int:
        """One more hit of `agent`'s breakpoint at `line`: its count, from 1."""
        key = (agent, path, line)
        self._hits[key] = self._hits.get(key, 0) + 1
        return self._hits[key]

    def hit_count(self, agent: str, path: str, line: int) -> int:
        return self._hits.get((agent, path, line), 0)

    def _went(self, path: str, before: list[int], after: list[int]) -> None:
        now = time.monotonic()
        for line in set(before) - set(after):
            self._gone[(path, line)] = now
            self.removals += 1
        for line in after:
            self._gone.pop((path, line), None)

    def just_removed(self, path: str, line: int) -> bool:
        """Whether the agents' last breakpoint on this line went moments ago: a stop there
        now is one the game was already on its way to (no agent wants it)."""
        when = self._gone.get((path, line))
        return when is not None and time.monotonic() - when < GHOST_WAIT

    def _forget_hits(self, agent: str | None, path: str) -> None:
        for key in [k for k in self._hits if k[1] == path and agent in (None, k[0])]:
            del self._hits[key]

    def breakpoints(self, agent: str | None = None) -> dict[str, Any]:
        """Breakpoints held for Godot: per file, per agent (or one agent's only)."""
        out: dict[str, Any] = {}
        for path, bps in self.files.items():
            per_agent = {
                a: [self._listed(a, path, b) for b in lst]
                for a, lst in bps.by_agent.items()
                if agent is None or a == agent
            }
            if per_agent:
                out[to_res_path(self.project, path)] = per_agent
        return out

    def _listed(self, agent: str, path: str, bp: SourceBreakpoint) -> Args:
        if bp.plain:
            return bp.as_json()
        return {**bp.as_json(), "hitCount": self.hit_count(agent, path, bp.line)}

    async def remove(self, paths: list[str], agent: str | None, *, strict: bool) -> list[Args]:
        """Take `agent`'s (None: everyone's) breakpoints out of `paths`; Godot gets the rest."""
        cleared: list[Args] = []
        for path in paths:
            bps = self.files.get(path)
            if bps is None:
                continue
            async with bps.lock:
                owners = list(bps.by_agent) if agent is None else [agent]
                before = bps.union()
                gone = [(a, bps.by_agent.pop(a)) for a in owners if a in bps.by_agent]
                for a, _ in gone:
                    self._forget_hits(a, path)
                self._went(path, before, bps.union())
                if not gone:
                    continue
                res = to_res_path(self.project, path)
                cleared += [
                    {"path": res, "agent": a, "lines": [b.line for b in lst]} for a, lst in gone
                ]
                if not self._connected():
                    continue  # the next connection sends Godot the union anyway
                union = set_args(path, bps.union(line_count(path)))
                try:
                    await self._send(agent or SIDECAR, union)
                except SidecarError as err:
                    if strict:
                        raise
                    log.warning("could not take breakpoints out of %s: %s", res, err.message)
        return cleared

    async def sync(self, agent: str) -> None:
        """Send Godot every file's union again (it drops its list when a game ends)."""
        for path, bps in list(self.files.items()):
            async with bps.lock:
                lines = bps.union(line_count(path))
                await self._send(agent, set_args(path, lines))

    async def take_out(self, request: Callable[[Args], Awaitable[Any]]) -> None:
        """Every file that had breakpoints of ours gets none, through `request`."""
        # The editor keeps breakpoints after we leave; they would stop the user's runs.
        for path, bps in list(self.files.items()):
            if bps.by_agent:
                await request(set_args(path, []))


def set_args(path: str, lines: list[int]) -> Args:
    return {
        # Godot reads `checksums` unconditionally and prints a "Bug" error without it.
        "source": {"path": path, "name": os.path.basename(path), "checksums": []},
        "breakpoints": [{"line": n} for n in lines],
    }


def read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def line_count(path: str) -> int:
    return len(read_lines(path))


def never_stops(text: list[str], line: int) -> str | None:
    """Why the game can never stop at `line` of a script, or None if it may."""
    if line > len(text):
        return f"line {line} is past the end of the file ({len(text)} lines)"
    content = text[line - 1]
    if not NEVER_RUNS.fullmatch(content):
        return None
    if not content.strip():
        what = "blank"
    elif content.strip().startswith("#"):
        what = "a comment"
    else:
        what = f"a declaration ('{content.strip()}') that runs no code"
    return (
        f"line {line} is {what}: the game never stops there; put the breakpoint on a "
        "line of code that runs"
    )

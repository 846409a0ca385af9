"""The bridge's breakpoints that Godot does not have: conditions, hit counts, logpoints.

Godot's adapter ignores `condition`, `hitCondition` and `logMessage` and stops at every
hit of a line. So the bridge gives Godot only the line, and at each breakpoint stop there
decides, agent by agent, whether that agent wants the stop (`decide`), evaluating in the
stopped frame:

- `condition`: a GDScript expression; false → this agent does not want the stop (and the
  hit is not counted). One that fails to evaluate stops the game, with the error in the
  `stopped` event (VS Code shows the error and stops too): a typo must not be silent.
- `hitCondition` (grammar in breakpoints.HIT_GRAMMAR): the hits counted so far (those
  whose condition held), checked after counting this one.
- `logMessage`: a logpoint: never stops; its text, `{expression}` parts evaluated, goes
  out as an `output` event naming the agent. An expression that fails shows as
  `<error: ...>` in the text.

The game stops when any agent wants it; otherwise the session lets it run on by itself
(session.py), and the agents see nothing but the logpoints' output.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sidecar.godot.dap.breakpoints import HitCondition, SourceBreakpoint, log_parts


class ExpressionError(Exception):
    """An expression the game could not evaluate; the message is the game's."""


# An expression evaluated in the stopped frame: its value as text, or ExpressionError.
Evaluate = Callable[[str], Awaitable[str]]
# One more hit of an agent's breakpoint on this line: its count, from 1.
CountHit = Callable[[str], int]


@dataclass
class AgentHit:
    """What one agent's breakpoint made of this stop."""

    agent: str
    stops: bool
    why: str  # breakpoint, condition, hitCondition, condition_error, logpoint, skipped
    hit_count: int | None = None
    error: str | None = None
    log: str | None = None  # a logpoint's message, its expressions evaluated

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"agent": self.agent, "why": self.why}
        if self.hit_count is not None:
            out["hitCount"] = self.hit_count
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class Verdict:
    """Every agent's say about one stop."""

    hits: list[AgentHit] = field(default_factory=list)

    @property
    def stop(self) -> bool:
        return any(h.stops for h in self.hits)

    @property
    def stopped_for(self) -> list[str]:
        return [h.agent for h in self.hits if h.stops]

    @property
    def logs(self) -> list[AgentHit]:
        return [h for h in self.hits if h.log is not None]


def needs_deciding(here: dict[str, list[SourceBreakpoint]]) -> bool:
    """Whether any breakpoint at this line is more than a line (else: a plain stop)."""
    return any(not bps[0].plain for bps in here.values() if bps)


async def decide(
    here: dict[str, list[SourceBreakpoint]], count: CountHit, evaluate: Evaluate
) -> Verdict:
    """Each agent's breakpoint at the stopped line (the first, if it sent several for one
    line) has its say. Identical expressions are evaluated once per stop."""
    known: dict[str, str | ExpressionError] = {}

    async def cached(expression: str) -> str:
        if expression not in known:
            try:
                known[expression] = await evaluate(expression)
            except ExpressionError as err:
                known[expression] = err
        value = known[expression]
        if isinstance(value, ExpressionError):
            raise value
        return value

    verdict = Verdict()
    for agent in sorted(here):
        verdict.hits.append(await _one(agent, here[agent][0], count, cached))
    return verdict


async def _one(agent: str, bp: SourceBreakpoint, count: CountHit, evaluate: Evaluate) -> AgentHit:
    if bp.condition is not None:
        try:
            # `not not`: GDScript's truth of any value, answered as true or false.
            held = await evaluate(f"not not ({bp.condition})") == "true"
        except ExpressionError as err:
            return AgentHit(agent, True, "condition_error", error=str(err))
        if not held:
            return AgentHit(agent, False, "skipped")
    hits = count(agent)
    if bp.hit_condition is not None and not HitCondition.parse(bp.hit_condition).met(hits):
        return AgentHit(agent, False, "skipped", hit_count=hits)
    if bp.log_message is not None:
        text = await interpolate(bp.log_message, evaluate)
        return AgentHit(agent, False, "logpoint", hit_count=hits, log=text)
    why = "hitCondition" if bp.hit_condition else "condition" if bp.condition else "breakpoint"
    return AgentHit(agent, True, why, hit_count=hits)


async def interpolate(message: str, evaluate: Evaluate) -> str:
    """A logMessage with each `{expression}` replaced by its value as text."""
    out: list[str] = []
    for text, is_expression in log_parts(message):
        if not is_expression:
            out.append(text)
            continue
        try:
            # str(): a String comes back as it is, and a null as "<null>" at once.
            out.append(await evaluate(f"str({text})"))
        except ExpressionError as err:
            out.append(f"<error: {err}>")
    return "".join(out)

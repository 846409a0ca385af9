"""An operation agents can call, declared once.

An `Operation` names its path and methods, its arguments model (field docs, defaults,
examples, constraints), its answer model and the error codes it can answer. Everything
else derives from it: parsing a request into the arguments model *is* its validation (the
400 names the field, e.g. `breakpoints[0].line`), the OpenAPI document and HTTP_API.md
are generated from it (api/openapi.py), the MCP tools take its arguments model as their
input schema (api/mcp/tools.py), and tests check the client's methods against it.

A handler takes the parsed arguments and the `Caller` and returns the answer (a model or
plain JSON); REST and MCP call the very same handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from sidecar.errors import CODES, RequestError

Method = Literal["GET", "POST", "DELETE"]

# What calling an operation does to the shared editor and game:
# - "read": nothing an agent could notice (open to everyone, even under a lease);
# - "change": state other agents share (breakpoints, documents, files, reloads): audited;
# - "control": drives the running game (launch, continue, step, input, time, properties):
#   audited, and refused to everyone but the holder while a control lease is held.
Effect = Literal["read", "change", "control"]


class Arguments(BaseModel):
    """Base of every arguments model: JSON's own types (no "1" for 1, no 1.5 for an
    integer, no true for a number; 1.0 is 1, as JSON Schema has it); fields nobody
    declared are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class NoArguments(Arguments):
    """An operation that takes nothing."""


class Answer(BaseModel):
    """Base of every answer model. Godot's own answers carry fields of their own (DAP and
    LSP grow), which are passed on as they are."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


ArgsT = TypeVar("ArgsT", bound=Arguments)


@dataclass(frozen=True)
class Caller:
    """Who calls an operation: the key their breakpoints and documents are kept under."""

    identity: str
    # Known only by its connection (no X-Agent-Id): what it keeps goes when that closes.
    connection_scoped: bool = False


Handler = Callable[[ArgsT, Caller], Awaitable[Any]]

# What every call of every operation passes, REST and MCP alike (the composition root gives
# it to the RouteTable): the operation, the arguments as sent, the caller, and the call
# itself (parse, then handler) to await or not. Policies that hang on an operation's
# `effect` (the control lease, the audit trail) live there, so an operation needs nothing
# but its declaration to be under them.
CallPolicy = Callable[
    ["Operation[Any]", dict[str, Any], Caller, Callable[[], Awaitable[Any]]], Awaitable[Any]
]


@dataclass(frozen=True)
class BinaryForm:
    """An answer an operation can also give as raw bytes rather than JSON.

    The JSON answer carries the bytes base64-encoded in its field `field`; a request whose
    `Accept` prefers `media_type` (`Accept: image/png`) gets those bytes as they are, with
    that Content-Type. MCP hands them over as a content block of that type.
    """

    media_type: str
    field: str
    description: str


@dataclass(frozen=True)
class Operation(Generic[ArgsT]):
    """One operation: where it is served, what it takes, answers and can fail with."""

    name: str  # operationId, MCP tool name and client method name (snake_case)
    path: str
    summary: str
    arguments: type[ArgsT]
    answer: Any  # a model class, or a type pydantic's TypeAdapter takes (list[X], X | None)
    methods: tuple[Method, ...] = ("POST",)
    # The codes this operation answers beyond those every endpoint can (errors.COMMON).
    errors: tuple[str, ...] = ()
    description: str = ""
    # False: the answer's fields sit at the top level beside "status": "ok" (the seed's
    # /status shape) instead of under "result".
    envelope: bool = True
    tool: bool = True  # offered as an MCP tool
    tags: tuple[str, ...] = ()
    # The answer's bytes as they are, chosen by the request's Accept (None: JSON only).
    binary: BinaryForm | None = None
    effect: Effect = "read"

    def __post_init__(self) -> None:
        unknown = [c for c in self.errors if c not in CODES]
        if unknown:
            raise ValueError(f"{self.name}: undeclared error codes {unknown}")

    def parse(self, raw: dict[str, Any], *, from_query: bool = False) -> ArgsT:
        """The arguments as their model, or a 400 naming the first field at fault.

        A query string's values are text: they are read as the field's type would be
        written in a URL (`?line=3`, `?all=true`).
        """
        try:
            if from_query:
                return self.arguments.model_validate_strings(raw)
            return self.arguments.model_validate(integral_floats_as_ints(raw))
        except ValidationError as exc:
            raise invalid(exc) from None


def integral_floats_as_ints(value: Any) -> Any:
    """`3.0` read as `3`. JSON Schema's `integer` (what the OpenAPI document says) takes
    3.0, and a JSON number has no type of its own; 3.5 stays a float and is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(v) for v in value]
    return value


def invalid(exc: ValidationError) -> RequestError:
    """A pydantic validation failure as the bridge's 400: the field, the rule, the value."""
    first = exc.errors(include_url=False)[0]
    where = field_path(first["loc"])
    if first["type"] == "missing":
        return RequestError(
            f"missing field '{where}'", code="missing_field", details={"field": where}
        )
    return RequestError(
        f"field '{where}': {_reason(first)}", code="invalid_field", details={"field": where}
    )


def _reason(error: ErrorDetails) -> str:
    message = error["msg"]
    # A model validator's own sentence says it all; pydantic prefixes it.
    return message.removeprefix("Value error, ")


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("breakpoints", 0, "line")` → `breakpoints[0].line`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "union[")):  # pydantic's validator names
            out += f".{part}" if out else part
    return out or "body"


@dataclass
class Bound(Generic[ArgsT]):
    """An operation with the handler that serves it in this sidecar."""

    operation: Operation[ArgsT]
    handler: Handler[ArgsT]
    policy: CallPolicy | None = None

    async def call(self, raw: dict[str, Any], caller: Caller, *, from_query: bool = False) -> Any:
        async def run() -> Any:
            return await self.handler(self.operation.parse(raw, from_query=from_query), caller)

        if self.policy is None:
            return await run()
        return await self.policy(self.operation, raw, caller, run)

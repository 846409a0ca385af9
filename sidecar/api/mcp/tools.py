"""The MCP tools: one per operation this sidecar serves, derived from its declaration.

A tool's name is the operation's name, its description the operation's summary (and
description), its input schema the arguments model's JSON schema and its output schema
the answer's. A call parses the arguments with the operation (the very same 400 as REST,
naming the field) and awaits the operation's handler: no HTTP request is made up, and the
answer is serialized once, for the MCP message.

The list is read from the route table each time it is asked for, so operations served
after `/mcp` was first used are tools as well.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from mcp_types import Tool as McpTool
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from sidecar.errors import SidecarError
from sidecar.web.http import RouteTable
from sidecar.web.operation import BinaryForm, Bound, Caller, Operation

log = logging.getLogger(__name__)

Schema = dict[str, Any]

# MCP wants an object at the top of a tool's structured answer (2025-11-25); an answer
# that is not one (a list, a value or null) is wrapped as the SDK's own tools do it.
WRAPPED = "result"


@dataclass(frozen=True)
class OperationTool:
    """An operation offered as an MCP tool."""

    bound: Bound[Any]
    tool: McpTool
    wrapped: bool  # the structured answer is {"result": answer}

    async def call(self, arguments: dict[str, Any], caller: Caller) -> CallToolResult:
        """The handler's answer, or the REST error body as the tool's error."""
        try:
            answer = to_jsonable_python(await self.bound.call(arguments, caller), by_alias=True)
        except SidecarError as err:
            return error_result(err)
        except Exception:
            # As REST answers it (web/http.py): nothing of the exception reaches the agent.
            log.exception("unhandled error in MCP tool %s", self.tool.name)
            return error_result(SidecarError("internal error in the sidecar; see its log"))
        binary = self.bound.operation.binary
        if binary is not None and isinstance(answer, dict) and binary.field in answer:
            return _with_binary(answer, binary)
        structured = {WRAPPED: answer} if self.wrapped else answer
        return CallToolResult(content=[_text(answer)], structured_content=structured)


def _with_binary(answer: dict[str, Any], binary: BinaryForm) -> CallToolResult:
    """An answer carrying bytes (a PNG) as a content block of their type (an image a model
    can look at) and the rest as text and structured content."""
    rest = {k: v for k, v in answer.items() if k != binary.field}
    block: ImageContent | TextContent
    if binary.media_type.startswith("image/"):
        block = ImageContent(type="image", data=answer[binary.field], mime_type=binary.media_type)
    else:  # no operation answers other bytes yet
        block = _text({binary.field: answer[binary.field]})
    return CallToolResult(content=[block, _text(rest)], structured_content=rest)


def error_result(err: SidecarError) -> CallToolResult:
    """A tool error carrying what REST would answer, with its HTTP status."""
    body = {"http_status": err.status, **err.body()}
    return CallToolResult(content=[_text(body)], is_error=True)


def _text(value: Any) -> TextContent:
    return TextContent(
        type="text", text=json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    )


def tool_of(bound: Bound[Any]) -> OperationTool:
    op = bound.operation
    output, wrapped = output_schema(op)
    tool = McpTool(
        name=op.name,
        description=f"{op.summary}\n\n{op.description}" if op.description else op.summary,
        input_schema=input_schema(op),
        output_schema=output,
        # A GET changes nothing (HTTP's own rule, which the operations keep).
        annotations=ToolAnnotations(read_only_hint=True) if "GET" in op.methods else None,
    )
    return OperationTool(bound, tool, wrapped)


def input_schema(op: Operation[Any]) -> Schema:
    return inline_refs(op.arguments.model_json_schema(by_alias=True))


def output_schema(op: Operation[Any]) -> tuple[Schema, bool]:
    """The answer's schema as MCP takes it (an object), and whether it had to be wrapped."""
    schema = inline_refs(TypeAdapter(op.answer).json_schema(mode="serialization", by_alias=True))
    if op.binary is not None:  # its bytes go in a content block of their own (_with_binary)
        schema = _without(schema, op.binary.field)
    if schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {WRAPPED: schema}, "required": [WRAPPED]}, True


def _without(schema: Schema, field: str) -> Schema:
    properties = {k: v for k, v in schema.get("properties", {}).items() if k != field}
    required = [name for name in schema.get("required", []) if name != field]
    return {**schema, "properties": properties, "required": required}


def inline_refs(schema: Schema) -> Schema:
    """`schema` with each `$ref` to its `$defs` replaced by the definition.

    MCP hosts hand input schemas to models, and not all of them follow references. A
    recursive definition cannot be inlined: such a schema is kept as it is.
    """
    defs: dict[str, Schema] = schema.get("$defs", {})
    if not defs:
        return schema

    class Recursive(Exception):
        pass

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise Recursive
            siblings = {k: walk(v, seen) for k, v in node.items() if k != "$ref"}
            return {**walk(defs[name], seen | {name}), **siblings}
        return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}

    try:
        inlined: Schema = walk(schema, frozenset())
    except Recursive:
        return schema
    return inlined


class OperationTools:
    """The tools of the operations `routes` serves (those declared with `tool=True`)."""

    def __init__(self, routes: RouteTable) -> None:
        self.routes = routes
        self._by_name: dict[str, OperationTool] = {}

    def _current(self) -> dict[str, OperationTool]:
        served = [b for b in self.routes.bound() if b.operation.tool]
        if len(served) != len(self._by_name):  # operations are only ever added
            # Schemas are built once per operation: listing the tools stays cheap.
            self._by_name = {
                b.operation.name: self._by_name.get(b.operation.name) or tool_of(b) for b in served
            }
        return self._by_name

    def list(self) -> list[McpTool]:
        return [t.tool for t in self._current().values()]

    def get(self, name: str) -> OperationTool | None:
        return self._current().get(name)

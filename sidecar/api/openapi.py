"""The OpenAPI 3.1 document and HTTP_API.md, both made from the operations' declarations.

Every operation is declared once (web/operation.py) and listed in `api/catalog.py`; this
module turns the catalog into the document: arguments as query parameters (GET) or a
request body (POST), answers in the `{"status": "ok", "result": ...}` envelope, one
error response per HTTP status the operation can answer, listing its codes. The few raw
routes (health, the dashboard's page, this document, `/mcp`) are described here by hand.
It needs nothing running and imports nothing above the api layer, so the document is the
same whether served (`GET /openapi.json`) or written by the command line:

    python -m sidecar.api.openapi --markdown -o addons/godot_debug_connection/HTTP_API.md
    python -m sidecar.api.openapi --json            # the document, as served
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from sidecar import __version__
from sidecar.api import apidoc, catalog
from sidecar.api.control import EFFECT_ERRORS
from sidecar.errors import CODES, COMMON
from sidecar.web.http import RouteTable
from sidecar.web.operation import Operation

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
DEFAULT_SERVER = "http://127.0.0.1:8080"
HTTP_API_MD = Path(__file__).resolve().parents[2] / "addons/godot_debug_connection/HTTP_API.md"
REF = "#/components/schemas/{model}"
# Codes every operation that takes arguments can answer: parsing them is its validation.
ARGUMENT_ERRORS = ("missing_field", "invalid_field")

TITLE = "godot_debug_connection HTTP API"
DESCRIPTION = (
    "Many AI agents share one Godot editor's debug adapter (DAP) and language server (LSP) "
    'over HTTP on 127.0.0.1. JSON in, JSON out: `{"status": "ok", "result": ...}` (GET /status: '
    "its fields at the top level) or "
    '`{"status": "error", "error": {"code", "message", ...}}`. GET operations take their '
    "arguments in the query, POST ones as a JSON object body. Send `X-Agent-Id` to be known "
    "by name: breakpoints and open documents belong to the agent that made them. LSP "
    "positions are 0-based (line and UTF-16 character); debugger lines are 1-based."
)

# Tags in the order the documents list them; an operation may bring a tag of its own.
TAGS: dict[str, str] = {
    "bridge": "The bridge and its connections to Godot",
    "services": "The bridge and its connections to Godot",
    "debug": "Godot's debug adapter (DAP), shared by every agent",
    "lsp": "Godot's language server (LSP), shared documents",
    "edit": "Files and the editor",
    "editor": "Files and the editor",
    "game": "The running game: its runtime errors and performance monitors",
    "control": "The control lease and the audit trail",
    "mcp": "Model Context Protocol",
    "meta": "Discovery and the dashboard",
    "dashboard": "Discovery and the dashboard",
}


# -- the document ------------------------------------------------------------------------


def build(server_url: str = DEFAULT_SERVER) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation the bridge serves (a copy of its own:
    the catalog does not change while the sidecar runs, so it is built once per server)."""
    return copy.deepcopy(_build(server_url))


@functools.lru_cache(maxsize=8)
def _build(server_url: str) -> dict[str, Any]:
    operations = catalog.OPERATIONS
    models = _Models(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        for method in op.methods:
            paths.setdefault(op.path, {})[method.lower()] = _declared(op, method, models)
    for (raw_method, path), spec in RAW.items():
        paths.setdefault(path, {})[raw_method.lower()] = spec
    schemas = {**models.components, **ERROR_SCHEMAS}
    used = {tag for ops in paths.values() for op in ops.values() for tag in op["tags"]}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": server_url}],
        "tags": [{"name": t, "description": TAGS.get(t, t)} for t in _tag_order(used)],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "parameters": {"AgentId": AGENT_ID},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "only when a token is configured (GODOT_BRIDGE_TOKEN)",
                }
            },
        },
        "security": [{}, {"bearer": []}],
    }


def _tag_order(used: set[str]) -> list[str]:
    return [t for t in TAGS if t in used] + sorted(used - set(TAGS))


class _Models:
    """The JSON Schemas of every operation's arguments and answer, from pydantic, with the
    models they name gathered as components (`#/components/schemas/<Model>`)."""

    def __init__(self, operations: Iterable[Operation[Any]]) -> None:
        keys: list[tuple[Any, Any, TypeAdapter[Any]]] = []
        for op in operations:
            keys.append(((op.name, "arguments"), "validation", TypeAdapter(op.arguments)))
            keys.append(((op.name, "answer"), "serialization", TypeAdapter(op.answer)))
        by_key, defs = TypeAdapter.json_schemas(keys, ref_template=REF)
        self.components: dict[str, Schema] = defs.get("$defs", {})
        self._by_key = {key: schema for (key, _mode), schema in by_key.items()}

    def arguments(self, op: Operation[Any]) -> Schema:
        """The arguments model's own schema (its fields), for query parameters."""
        return self.resolve(self.arguments_ref(op))

    def arguments_ref(self, op: Operation[Any]) -> Schema:
        return self._by_key[(op.name, "arguments")]

    def answer(self, op: Operation[Any]) -> Schema:
        return self._by_key[(op.name, "answer")]

    def resolve(self, schema: Schema) -> Schema:
        if "$ref" in schema:
            return self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema


def _declared(op: Operation[Any], method: str, models: _Models) -> dict[str, Any]:
    first = method == op.methods[0]
    out: dict[str, Any] = {
        # GET and POST of one operation: the name goes to the first, the other says its method.
        "operationId": op.name if first else f"{op.name}_{method.lower()}",
        "summary": op.summary,
        "tags": list(op.tags) or ["bridge"],
        "parameters": [{"$ref": "#/components/parameters/AgentId"}],
        # read / change (audited) / control (audited; refused under another agent's lease)
        "x-effect": op.effect,
    }
    if op.description:
        out["description"] = op.description
    arguments = models.arguments(op)
    if method == "GET":
        out["parameters"] += query_parameters(arguments)
    elif arguments.get("properties"):
        out["requestBody"] = {
            # A body some field of which is required, or one of several (anyOf/oneOf).
            "required": any(arguments.get(k) for k in ("required", "anyOf", "oneOf", "allOf")),
            "content": {"application/json": {"schema": models.arguments_ref(op)}},
        }
    out["responses"] = {
        "200": _success(op, models.answer(op)),
        **error_responses(declared_codes(op, has_arguments=bool(arguments.get("properties")))),
    }
    return out


def query_parameters(arguments: Schema) -> list[dict[str, Any]]:
    """A GET operation's arguments: one query parameter per field of its model."""
    required = set(arguments.get("required", []))
    out = []
    for name, prop in arguments.get("properties", {}).items():
        schema = _not_null({k: v for k, v in prop.items() if k not in ("description", "title")})
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": schema,
        }
        if prop.get("description"):
            param["description"] = prop["description"]
        out.append(param)
    return out


def _not_null(schema: Schema) -> Schema:
    """A query has no null: an optional field is left out instead (`X | None = None`)."""
    options = [o for o in schema.get("anyOf", ()) if o != {"type": "null"}]
    if "anyOf" not in schema or len(options) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**rest, **options[0]} if len(options) == 1 else {**rest, "anyOf": options}


def _success(op: Operation[Any], answer: Schema) -> dict[str, Any]:
    ok = {"status": {"const": "ok"}}
    if op.envelope:
        schema: Schema = {
            "type": "object",
            "required": ["status", "result"],
            "properties": {**ok, "result": answer},
        }
    else:  # the answer's fields at the top level, beside "status": "ok"
        schema = {"allOf": [{"type": "object", "required": ["status"], "properties": ok}, answer]}
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if op.binary is not None:  # chosen by Accept: the bytes as they are
        content[op.binary.media_type] = {
            "schema": {"type": "string", "format": "binary", "description": op.binary.description}
        }
    return {"description": op.summary, "content": content}


def declared_codes(op: Operation[Any], *, has_arguments: bool) -> list[str]:
    """Every code `op` can answer: its own, the common ones, and those of its arguments."""
    codes = [
        *COMMON,
        *(ARGUMENT_ERRORS if has_arguments else ()),
        *op.errors,
        *EFFECT_ERRORS.get(op.effect, ()),
    ]
    return list(dict.fromkeys(codes))


def error_responses(codes: Iterable[str]) -> dict[str, Any]:
    """One response per HTTP status among `codes`, its schema naming the codes possible."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CODES[code].status, []).append(code)
    out: dict[str, Any] = {}
    for status, names in sorted(by_status.items()):
        response: dict[str, Any] = {
            "description": "; ".join(f"`{n}`: {CODES[n].meaning}" for n in names),
            "content": {"application/json": {"schema": _error_schema(names)}},
        }
        if status == 503 or "lease_held" in names:  # until the lease ends
            response["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before trying again",
                    "schema": {"type": "integer"},
                }
            }
        out[str(status)] = response
    return out


def _error_schema(codes: list[str]) -> Schema:
    return {
        "allOf": [{"$ref": REF.format(model="Error")}],
        "properties": {"error": {"properties": {"code": {"enum": codes}}}},
    }


ERROR_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every refusal of the bridge (not `/mcp`'s, which are JSON-RPC).",
        "required": ["status", "error"],
        "properties": {
            "status": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "enum": list(CODES),
                        "description": "machine word, one per condition (the vocabulary)",
                    },
                    "message": {
                        "type": "string",
                        "description": "what went wrong and what to do about it",
                    },
                    "field": {
                        "type": "string",
                        "description": "the request field at fault, e.g. `breakpoints[0].line`",
                    },
                },
            },
        },
    },
    "JsonRpcError": {
        "type": "object",
        "description": "A JSON-RPC 2.0 error answer (`/mcp`).",
        "required": ["jsonrpc", "id", "error"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["string", "integer", "null"]},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "integer",
                        "description": "-32700 parse error, -32600 invalid request (also: "
                        "missing or unknown session), -32601 unknown method, -32602 invalid "
                        "params, -32603 internal error",
                    },
                    "message": {"type": "string"},
                    "data": {},
                },
            },
        },
    },
    "JsonRpcMessage": {
        "type": "object",
        "description": "A JSON-RPC 2.0 request (`id` and `method`), notification (`method`, "
        "no `id`) or response.",
        "required": ["jsonrpc"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["string", "integer"]},
            "method": {
                "type": "string",
                "description": "initialize, notifications/initialized, tools/list, tools/call, ...",
            },
            "params": {"type": "object"},
        },
    },
}

AGENT_ID: dict[str, Any] = {
    "name": "X-Agent-Id",
    "in": "header",
    "required": False,
    "description": "your name (its first 64 printable characters); without it you are known "
    "by your connection",
    "schema": {"type": "string"},
}


# -- the raw routes: not operations, described by hand -------------------------------------


def _raw(summary: str, tag: str, operation_id: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [{"$ref": "#/components/parameters/AgentId"}],
    }
    spec.update(extra)
    return spec


def _page(summary: str, operation_id: str, description: str) -> dict[str, Any]:
    html = {"text/html": {"schema": {"type": "string"}}}
    return _raw(
        summary,
        "meta",
        operation_id,
        description=description,
        responses={"200": {"description": summary, "content": html}, **error_responses(COMMON)},
    )


MCP_SESSION = {
    "name": "Mcp-Session-Id",
    "in": "header",
    "required": False,
    "description": "the session the `initialize` answer named (its `Mcp-Session-Id` header); "
    "every request after `initialize` must send it",
    "schema": {"type": "string"},
}


def _jsonrpc_error(description: str) -> dict[str, Any]:
    schema = {"$ref": REF.format(model="JsonRpcError")}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


MCP_GUARD = error_responses(c for c in COMMON if c != "invalid_json")
MCP_DESCRIPTION = """\
Model Context Protocol over its Streamable HTTP transport (the official `mcp` SDK). Bodies \
and answers are JSON-RPC 2.0, not the bridge's envelope; only the checks in front of every \
route (Host, Origin, token, body size, `Content-Type: application/json`) answer in the \
bridge's error shape. Answers are plain JSON (never an SSE stream): the server never speaks \
first, so there is no GET stream (GET is 405). Start with `initialize` (no session header): \
its answer's `Mcp-Session-Id` header names the session, which every later request sends. \
Each session is an agent of its own (`mcp-<session id>`) unless the client sends \
`X-Agent-Id`. A session ends with its DELETE, after 5 minutes idle (GODOT_BRIDGE_MCP_IDLE) \
or, when 100 are open, as the least recently used idle one; its id then answers 404 and \
an `mcp-` agent's breakpoints go.

```sh
curl -si 127.0.0.1:8080/mcp -H 'Accept: application/json, text/event-stream' --json \\
  '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": \
"2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}}'
# the answer's header: mcp-session-id: 4cd65e8001fd446fbeb3bbb827c77988
curl -s 127.0.0.1:8080/mcp -H 'Accept: application/json, text/event-stream' \\
  -H 'Mcp-Session-Id: 4cd65e8001fd446fbeb3bbb827c77988' --json \\
  '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "status", \
"arguments": {}}}'
```"""

RAW: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/health"): _raw(
        "the sidecar is up (needs no token)",
        "bridge",
        "health",
        responses={
            "200": {
                "description": "up",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "result"],
                            "properties": {
                                "status": {"const": "ok"},
                                "result": {
                                    "type": "object",
                                    "required": ["healthy"],
                                    "properties": {"healthy": {"const": True}},
                                },
                            },
                        }
                    }
                },
            },
            **error_responses(COMMON),
        },
    ),
    ("GET", "/"): _page(
        "the dashboard", "dashboard_page", "The dashboard's page (the same as /dashboard)."
    ),
    ("GET", "/dashboard"): _page(
        "the dashboard",
        "dashboard",
        "Services, agents, debug events, diagnostics; polls /dashboard/state.",
    ),
    ("GET", "/openapi.json"): _raw(
        "this API as an OpenAPI 3.1 document",
        "meta",
        "openapi",
        description="This document, as served; its server is the Host the request named.",
        responses={
            "200": {
                "description": "the document",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["openapi", "info", "paths"],
                            "properties": {
                                "openapi": {"type": "string"},
                                "info": {"type": "object"},
                                "paths": {"type": "object"},
                            },
                        }
                    }
                },
            },
            **error_responses(COMMON),
        },
    ),
    ("POST", "/mcp"): _raw(
        "Model Context Protocol (Streamable HTTP): send JSON-RPC messages",
        "mcp",
        "mcp",
        description=MCP_DESCRIPTION,
        parameters=[
            {"$ref": "#/components/parameters/AgentId"},
            MCP_SESSION,
            {
                "name": "Accept",
                "in": "header",
                "required": False,
                "description": "must accept application/json (MCP clients send "
                "`application/json, text/event-stream`); text/html alone is a 406",
                "schema": {"type": "string"},
            },
        ],
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model="JsonRpcMessage")},
                    "example": {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                }
            },
        },
        responses={
            "200": {
                "description": "the JSON-RPC answer to a request (a result or an error, e.g. "
                "-32601 for an unknown method); `initialize`'s carries the "
                "`Mcp-Session-Id` header",
                "headers": {"Mcp-Session-Id": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "202": {"description": "a notification or a response was taken (no body)"},
            "400": _jsonrpc_error(
                "not JSON (-32700), not a JSON-RPC message (-32602), or no `Mcp-Session-Id` "
                "on a request other than `initialize` (-32600 `Bad Request: Missing session ID`)"
            ),
            "404": _jsonrpc_error("no such session (ended, expired or evicted): initialize again"),
            "406": _jsonrpc_error("the `Accept` header does not take application/json"),
            **{s: r for s, r in MCP_GUARD.items() if s not in ("400", "503")},
            "503": _jsonrpc_error(
                "100 sessions are open and none is idle: `Too many open sessions`"
            ),
        },
    ),
    ("DELETE", "/mcp"): _raw(
        "Model Context Protocol (Streamable HTTP): end the session",
        "mcp",
        "mcp_end_session",
        description="End the MCP session named by `Mcp-Session-Id`.",
        parameters=[{"$ref": "#/components/parameters/AgentId"}, MCP_SESSION],
        responses={
            "200": {"description": "the session ended (no body)"},
            "400": _jsonrpc_error("no `Mcp-Session-Id` header: `Bad Request: Missing session ID`"),
            "404": _jsonrpc_error("no such session (already ended, expired or evicted)"),
            **{s: r for s, r in MCP_GUARD.items() if s != "400"},
        },
    ),
}


# -- serving -------------------------------------------------------------------------------


def register(routes: RouteTable) -> None:
    """Serve `GET /openapi.json`: the document, its server the Host the request named."""

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(build(f"http://{request.host}"))

    routes.add("GET", "/openapi.json", openapi, "this API as an OpenAPI 3.1 document")


def documented(doc: dict[str, Any] | None = None) -> Iterator[tuple[str, str]]:
    """(METHOD, path) of every operation the document lists."""
    for path, ops in (doc or build())["paths"].items():
        for method in ops:
            yield method.upper(), path


# -- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sidecar.api.openapi", description=__doc__)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--json", action="store_true", help="the OpenAPI document (default)")
    kind.add_argument("--markdown", action="store_true", help="HTTP_API.md")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    args = p.parse_args(argv)
    doc = build()
    text = apidoc.markdown(doc) if args.markdown else json.dumps(doc, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The OpenAPI 3.1 document and HTTP_API.md, both made from the route table + schemas.

`GET /openapi.json` builds the document from the routes the server is serving right now,
so it cannot list an endpoint that is not there nor miss one that is. HTTP_API.md is
written from the same two sources:

    python -m sidecar.api.openapi --markdown -o addons/godot_debug_connection/HTTP_API.md
    python -m sidecar.api.openapi --json            # the document, as served
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from sidecar import __version__
from sidecar.api.schemas import (
    COMPONENTS,
    ERROR_CODES,
    SCHEMAS,
    STATUS_TEXT,
    TAGS,
    Operation,
    Schema,
)
from sidecar.web.http import Route, RouteTable

OPENAPI_VERSION = "3.1.0"
DEFAULT_SERVER = "http://127.0.0.1:8080"
HTTP_API_MD = Path(__file__).resolve().parents[2] / "addons/godot_debug_connection/HTTP_API.md"
# Refusals any request may get from the checks in front of every handler (sidecar/guard.py).
COMMON_ERRORS = (401, 403, 421, 500)
BODY_ERRORS = (400, 408, 413, 415)
UNDOCUMENTED = Operation(tag="undocumented", result={})

TITLE = "godot_debug_connection HTTP API"
DESCRIPTION = (
    "Many AI agents share one Godot editor's debug adapter (DAP) and language server (LSP) "
    'over HTTP on 127.0.0.1. JSON in, JSON out: `{"status": "ok", "result": ...}` (GET /status: '
    "its fields at the top level) or "
    '`{"status": "error", "error": {"code", "message", ...}}`. POST bodies are the '
    "DAP request's `arguments` or the LSP method's `params`; read-only endpoints also take GET "
    "with query parameters. Send `X-Agent-Id` to be known by name: breakpoints and open "
    "documents belong to the agent that made them."
)


# -- the document ------------------------------------------------------------------------


def operation_of(route: Route) -> Operation:
    return SCHEMAS.get((route.method, route.path), UNDOCUMENTED)


def build(routes: Iterable[Route], server_url: str = DEFAULT_SERVER) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.method == "HEAD":
            continue
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": server_url}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
        "security": [{}, {"bearer": []}],
    }


def _operation(route: Route) -> dict[str, Any]:
    op = operation_of(route)
    out: dict[str, Any] = {
        "operationId": operation_id(route.method, route.path),
        "summary": route.summary,
        "tags": [op.tag],
        "parameters": [{"$ref": "#/components/parameters/AgentId"}],
    }
    if op is UNDOCUMENTED:
        out["x-undocumented"] = True
    if op.notes:
        out["description"] = op.notes
    if op.body is not None and route.method == "GET":
        out["parameters"] += query_parameters(op.body)
    elif op.body is not None:
        body: dict[str, Any] = {"schema": op.body}
        if op.example is not None:
            body["example"] = op.example
        out["requestBody"] = {"required": False, "content": {"application/json": body}}
    out["responses"] = _responses(route, op)
    return out


def operation_id(method: str, path: str) -> str:
    words = [w for w in path.replace(".", "/").split("/") if w] or ["root"]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def query_parameters(schema: Schema) -> list[dict[str, Any]]:
    """A GET endpoint's arguments: the top-level fields of its body schema, in the query."""
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
        }
        if prop.get("description"):
            param["description"] = prop["description"]
        out.append(param)
    return out


def _responses(route: Route, op: Operation) -> dict[str, Any]:
    if op.raw is not None:
        ok: dict[str, Any] = {op.raw: {"schema": op.result}}
    elif op.flat:
        ok_field = {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        }
        flat = {"allOf": [ok_field, op.result]}
        ok = {"application/json": {"schema": flat}}
        if op.answer is not None:
            ok["application/json"]["example"] = {"status": "ok", **op.answer}
    else:
        envelope = {
            "type": "object",
            "required": ["status", "result"],
            "properties": {"status": {"const": "ok"}, "result": op.result},
        }
        ok = {"application/json": {"schema": envelope}}
        if op.answer is not None:
            ok["application/json"]["example"] = {"status": "ok", "result": op.answer}
    out: dict[str, Any] = {"200": {"description": route.summary, "content": ok}}
    for status in error_statuses(route, op):
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


def error_statuses(route: Route, op: Operation) -> list[int]:
    statuses = set(op.errors) | set(COMMON_ERRORS)
    if route.method not in ("GET", "HEAD", "DELETE"):
        statuses |= set(BODY_ERRORS)
    return sorted(statuses)


def _components() -> dict[str, Any]:
    responses = {}
    for status, text in STATUS_TEXT.items():
        response: dict[str, Any] = {
            "description": f"{text} (codes: {', '.join(ERROR_CODES[status])})",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 503:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        responses[f"E{status}"] = response
    return {
        "schemas": COMPONENTS,
        "responses": responses,
        "parameters": {
            "AgentId": {
                "name": "X-Agent-Id",
                "in": "header",
                "required": False,
                "description": "your name; without it you are known by your connection",
                "schema": {"type": "string", "maxLength": 64},
            }
        },
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "only when a token is configured (GODOT_BRIDGE_TOKEN)",
            }
        },
    }


def register(routes: RouteTable) -> None:
    """Serve `GET /openapi.json`, built from `routes` at request time."""

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(build(routes, f"http://{request.host}"))

    routes.add("GET", "/openapi.json", openapi, "this API as an OpenAPI 3.1 document")


# -- HTTP_API.md -------------------------------------------------------------------------

MD_HEAD = """\
# HTTP API

<!-- Generated by `python -m sidecar.api.openapi --markdown` from the route table
     (sidecar/http.py and the modules that register routes) and sidecar/schemas.py.
     Do not edit by hand: tests/test_openapi.py checks this file is what it generates. -->

The bridge listens on `http://127.0.0.1:8080` (`GODOT_BRIDGE_PORT`). The same information
is served as an OpenAPI 3.1 document at `GET /openapi.json`; a dashboard is at `GET /`;
a Model Context Protocol endpoint at `POST /mcp`.

## Conventions

- JSON in, JSON out. Success is `200` with `{"status": "ok", "result": ...}` (`GET /status`
  alone answers the seed's fields at the top level, beside `"status": "ok"`). POST bodies
  are the DAP request's `arguments` or the LSP method's `params`; `result` is the DAP
  response's `body` or the LSP result.
- Read-only endpoints (listed with `GET, POST`) also take GET with query parameters;
  numbers and booleans in a query are read as JSON.
- A request with a body needs `Content-Type: application/json` (`curl --json` sets it).
- Paths and URIs may be `res://`, project-relative, absolute or `file://`; they must lie
  inside the project.
- Debug lines are 1-based (DAP); LSP positions are 0-based lines and UTF-16 characters.
- Only `Host: 127.0.0.1|localhost|[::1]` (any port) is served; a request with a foreign
  `Origin` is refused. When a token is configured (`GODOT_BRIDGE_TOKEN`), every request
  but `GET /health` needs `Authorization: Bearer <token>`.

## Many agents, one editor

- Send `X-Agent-Id: <name>` to be known by name; without it you are `client-<id>` of your
  connection. `/status` and the dashboard list every connected agent.
- One DAP and one LSP session to Godot serve everyone; every answer goes to the agent
  that asked.
- Breakpoints belong to the agent that set them: `/debug/setBreakpoints` replaces only
  your set in that file, Godot gets the union of everyone's, `/debug/breakpoints` shows
  yours (`all=true`: everyone's).
- There is one game: any agent's continue/step/terminate drives it for all. Inspecting
  (`stackTrace`, `scopes`, `variables`, `evaluate`) needs it stopped, else 409.
- Debug events go into one numbered log; read it with `GET /debug/events?since=N&wait=S`
  from where you left off (`next`).
- Documents are shared and reference-counted per agent; a stale `didChange` version is a
  409. Edits carry `expected_sha256`; a stale hash is a 409, so no agent silently
  overwrites another.
- MCP sessions (`/mcp`) are agents too: each session is `mcp-<session id>` unless its
  client sends `X-Agent-Id`.

## Errors

```json
{"status": "error",
 "error": {"code": "missing_field", "message": "missing field 'expression'", "field": "expression"}}
```

| status | when | codes |
|---|---|---|
"""


def markdown(routes: Iterable[Route]) -> str:
    """HTTP_API.md for `routes`."""
    table = list(routes)
    parts = [MD_HEAD]
    parts += [
        f"| {s} | {STATUS_TEXT[s]} | {', '.join(f'`{c}`' for c in ERROR_CODES[s])} |\n"
        for s in sorted(STATUS_TEXT)
    ]
    parts.append("\n## Endpoints\n\n| method | path | what |\n|---|---|---|\n")
    groups = _grouped(table)
    parts += [f"| {m} | `{p}` | {s} |\n" for m, p, s, _ in _flat(groups)]
    for tag, title in TAGS.items():
        entries = groups.get(tag, [])
        if entries:
            parts.append(f"\n## {title}\n")
            parts += [_md_endpoint(m, p, s, op) for m, p, s, op in entries]
    parts.append(_md_shapes())
    return "".join(parts)


Entry = tuple[str, str, str, Operation]


def _grouped(routes: list[Route]) -> dict[str, list[Entry]]:
    """Endpoints per tag; GET and POST of one operation become one entry."""
    by_path: dict[tuple[str, int], list[Route]] = {}
    for r in routes:
        by_path.setdefault((r.path, id(operation_of(r))), []).append(r)
    out: dict[str, list[Entry]] = {}
    for rs in by_path.values():
        op = operation_of(rs[0])
        methods = ", ".join(sorted(r.method for r in rs))
        out.setdefault(op.tag, []).append((methods, rs[0].path, rs[0].summary, op))
    for entries in out.values():
        entries.sort(key=lambda e: e[1])
    return out


def _flat(groups: dict[str, list[Entry]]) -> list[Entry]:
    order = [*TAGS, *(tag for tag in groups if tag not in TAGS)]
    return [e for tag in order for e in groups.get(tag, [])]


def _md_endpoint(methods: str, path: str, summary: str, op: Operation) -> str:
    lines = [f"\n### {methods} `{path}`\n\n{summary[:1].upper()}{summary[1:]}."]
    if op.notes:
        lines.append(f" {op.notes}")
    lines.append("\n")
    if op.body is not None and fields(op.body):
        where = "Query or body" if "GET" in methods and "POST" in methods else "Body"
        where = "Query" if methods == "GET" else where
        lines.append(f"\n{where}:\n\n| field | type | required | what |\n|---|---|---|---|\n")
        lines += [f"| `{n}` | {t} | {r} | {d} |\n" for n, t, r, d in fields(op.body)]
    example = _md_example(methods, path, op)
    if example:
        lines.append(example)
    if op.answer is not None and op.flat:
        answer = json.dumps({"status": "ok", **op.answer}, ensure_ascii=False)
        lines.append(f"\nAnswer (no `result` wrapper):\n\n```json\n{answer}\n```\n")
    elif op.answer is not None:
        answer = json.dumps(op.answer, ensure_ascii=False)
        lines.append(f"\nAnswer `result`:\n\n```json\n{answer}\n```\n")
    if op.errors:
        lines.append(f"\nErrors: {', '.join(str(e) for e in op.errors)}.\n")
    return "".join(lines)


def _md_example(methods: str, path: str, op: Operation) -> str:
    if op.example is None and op.raw is not None:
        return ""
    url = f"127.0.0.1:8080{path}"
    if methods == "GET" or (op.body is None and methods.startswith("GET")):
        query = "&".join(f"{k}={_query(v)}" for k, v in (op.example or {}).items())
        command = f"curl -s '{url}{'?' + query if query else ''}'"
    else:
        command = f"curl -s --json '{json.dumps(op.example or {}, ensure_ascii=False)}' {url}"
    return f"\n```sh\n{command}\n```\n"


def _query(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def fields(schema: Schema) -> list[tuple[str, str, str, str]]:
    """(name, type, required, description) of an object schema's top-level fields."""
    merged = _merge(schema)
    required = set(merged.get("required", []))
    return [
        (name, type_name(prop), "yes" if name in required else "", prop.get("description", ""))
        for name, prop in merged.get("properties", {}).items()
    ]


def _merge(schema: Schema) -> Schema:
    if "allOf" not in schema:
        return _resolve(schema)
    props: dict[str, Any] = {}
    required: list[str] = []
    for part in schema["allOf"]:
        part = _merge(part)
        props.update(part.get("properties", {}))
        required += part.get("required", [])
    return {"type": "object", "properties": props, "required": required}


def _resolve(schema: Schema) -> Schema:
    if "$ref" in schema:
        return COMPONENTS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def type_name(schema: Schema) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " or ".join(type_name(s) for s in schema["anyOf"])
    if "allOf" in schema:
        return "object"
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_name(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(json.dumps(v) for v in schema["enum"])
    return str(kind)


def _md_shapes() -> str:
    parts = ["\n## Shapes\n\nObjects the tables above refer to by name.\n"]
    for name, schema in COMPONENTS.items():
        parts.append(f"\n### {name}\n\n| field | type | required | what |\n|---|---|---|---|\n")
        parts += [f"| `{n}` | {t} | {r} | {d} |\n" for n, t, r, d in fields(schema)]
    return "".join(parts)


# -- command line ------------------------------------------------------------------------


def offline_routes() -> RouteTable:
    """The route table a sidecar serves, built without starting anything."""
    from sidecar.app import Sidecar
    from sidecar.config import Config

    config = Config(
        project=".",
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=6005,
        dap_port=6006,
    )
    return Sidecar(config).routes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sidecar.api.openapi", description=__doc__)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--json", action="store_true", help="the OpenAPI document (default)")
    kind.add_argument("--markdown", action="store_true", help="HTTP_API.md")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    args = p.parse_args(argv)
    routes = offline_routes()
    text = markdown(routes) if args.markdown else json.dumps(build(routes), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

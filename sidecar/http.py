"""The agent-facing HTTP API: one route table, JSON in and out, errors in one shape.

Handlers take the aiohttp request and return the `result` to send; they raise
``BridgeError`` subclasses for anything else. Peer modules (dap, lsp, ...) add their
routes to the same ``RouteTable`` so the 404 listing (and later the OpenAPI document)
cannot drift from what is served.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .agents import Agent, AgentRegistry, clean_agent_name
from .errors import BridgeError, RequestError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[Any]]

MAX_BODY = 1024 * 1024

AGENT_KEY = web.RequestKey("agent", Agent)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str


class RouteTable:
    """Every endpoint the bridge serves."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, summary: str) -> None:
        self._routes.append(Route(method.upper(), path, handler, summary))

    def route(self, method: str, path: str, summary: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, path, handler, summary)
            return handler

        return register

    def endpoints(self) -> list[dict[str, Any]]:
        """Paths with their methods, for the 404 answer."""
        by_path: dict[str, list[str]] = {}
        for r in self._routes:
            by_path.setdefault(r.path, []).append(r.method)
        return [{"path": p, "methods": sorted(m)} for p, m in sorted(by_path.items())]

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


def ok(result: Any) -> web.Response:
    return web.json_response({"status": "ok", "result": result}, dumps=_dumps)


def error_response(err: BridgeError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=err.headers, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's arguments: the JSON object body of a POST, the query of a GET."""
    if request.method == "GET":
        return {k: _query_value(v) for k, v in request.query.items()}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise RequestError(
            f"request body must be a JSON object, got {type(value).__name__}",
            code="invalid_json",
        )
    return value


def _query_value(raw: str) -> Any:
    """Query values are text; numbers and booleans are decoded as JSON would."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def require(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """`body[name]`, or a 400 naming the field when it is missing or of the wrong type."""
    if name not in body:
        raise RequestError(f"missing field '{name}'", code="missing_field", details={"field": name})
    value = body[name]
    if not _is_kind(value, kind):
        raise RequestError(
            f"field '{name}' must be {_kind_name(kind)}, got {type(value).__name__}",
            code="invalid_field",
            details={"field": name},
        )
    return value


def _is_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not a number
    return isinstance(value, kinds)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
    names.update({dict: "an object", list: "an array"})
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def agent_of(request: web.Request) -> Agent | None:
    """The agent record of the connection this request came on (None in direct mode)."""
    return request.get(AGENT_KEY)


def identity_of(request: web.Request) -> str:
    """The key per-agent state is kept under: `X-Agent-Id`, else the client id."""
    agent = agent_of(request)
    if agent is not None:
        return agent.identity
    name = clean_agent_name(request.headers.get("X-Agent-Id"))
    if name:
        return name
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"peer-{peer[0]}:{peer[1]}" if peer else "anonymous"


def make_app(routes: RouteTable, agents: AgentRegistry) -> web.Application:
    """The aiohttp application every agent connection is served by."""
    app = web.Application(
        middlewares=[_identity_middleware(agents), _error_middleware(routes)],
        client_max_size=MAX_BODY,
    )
    for r in routes:
        app.router.add_route(r.method, r.path, _wrap(r.handler))
    return app


def _wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        result = await handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        return ok(result)

    return serve


def _identity_middleware(agents: AgentRegistry) -> Any:
    @web.middleware
    async def identity(request: web.Request, handler: Handler) -> web.StreamResponse:
        client_id = request.transport.get_extra_info("client_id") if request.transport else None
        agent = agents.get(client_id) if client_id is not None else None
        if agent is not None:
            agent.requests += 1
            name = clean_agent_name(request.headers.get("X-Agent-Id"))
            if name:
                agent.name = name
        if agent is not None:
            request[AGENT_KEY] = agent
        return await handler(request)

    return identity


def _error_middleware(routes: RouteTable) -> Any:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except BridgeError as err:
            return error_response(err)
        except web.HTTPNotFound:
            return error_response(
                RequestError(
                    f"no endpoint {request.path}; see 'endpoints' for the ones there are",
                    status=404,
                    code="not_found",
                    details={"endpoints": routes.endpoints()},
                )
            )
        except web.HTTPMethodNotAllowed as exc:
            allowed = sorted(exc.allowed_methods)
            return error_response(
                RequestError(
                    f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
                    status=405,
                    code="method_not_allowed",
                    headers={"Allow": ", ".join(allowed)},
                    details={"allowed": allowed},
                )
            )
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                RequestError(
                    f"request body larger than {MAX_BODY} bytes",
                    status=413,
                    code="body_too_large",
                )
            )
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return error_response(BridgeError("internal error in the sidecar; see its log"))

    return errors

"""The agent-facing HTTP API: one route table, JSON in and out, errors in one shape.

Handlers take the aiohttp request and return the `result` to send; they raise
``SidecarError`` subclasses for anything else. Peer modules (dap, lsp, ...) add their
routes to the same ``RouteTable`` so the 404 listing (and later the OpenAPI document)
cannot drift from what is served.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler as WebHandler
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from sidecar.agents import Agent, AgentRegistry, clean_agent_name
from sidecar.errors import RequestError, SidecarError
from sidecar.web import guard
from sidecar.web.operation import ArgsT, BinaryForm, Bound, Caller, CallPolicy, Operation
from sidecar.web.operation import Handler as OperationHandler

log = logging.getLogger(__name__)


class _QuietBadRequests(logging.Filter):
    """aiohttp logs every request its parser rejects as an error with a traceback; those are
    the client's fault (and a hostile client's flood), so they become one debug line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            log.debug("refused a malformed request: %s", exc)
            return False
        return True


logging.getLogger("aiohttp.server").addFilter(_QuietBadRequests())

Handler = Callable[[web.Request], Awaitable[Any]]

MAX_BODY = 1024 * 1024
# A request's body must arrive within this long after its head (slow-body clients).
BODY_TIMEOUT = 10.0

# Limits of aiohttp's HTTP/1.1 server, given to web.AppRunner (docs/RELIABILITY.md).
# Over-long request lines or header fields are answered 400 by aiohttp's parser. An idle
# keep-alive connection is closed after `keepalive_timeout`; the addon closes idle agents
# sooner (60 s) and slow ones (no complete request head in 10 s), this is the backstop for
# the direct `--serve` mode. After an answer sent before the whole body was read (413, 415,
# 408, ...) the rest of the body is read and dropped for at most `lingering_time`, so the
# client can finish sending and read the answer; then the connection is closed.
SERVER_LIMITS: dict[str, Any] = {
    "max_line_size": 8190,
    "max_field_size": 8190,
    "keepalive_timeout": 75.0,
    "lingering_time": 2.0,
}

AGENT_KEY = web.RequestKey("agent", Agent)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    # False: the handler's dict is answered at the top level next to "status": "ok" (the
    # seed's /status shape, which its scripts read as status["overall_ready"]).
    envelope: bool = True
    # The declaration it serves; None for the few raw routes (the dashboard's page, /mcp).
    operation: Operation[Any] | None = None


class RouteTable:
    """Every endpoint the bridge serves."""

    def __init__(self, policy: CallPolicy | None = None) -> None:
        self._routes: list[Route] = []
        self._bound: dict[str, Bound[Any]] = {}
        # Around every operation's call, REST and MCP (web/operation.py CallPolicy).
        self.policy = policy

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        summary: str,
        *,
        envelope: bool = True,
        operation: Operation[Any] | None = None,
    ) -> None:
        """A raw route: `handler` takes the aiohttp request (use `serve` for operations)."""
        self._routes.append(Route(method.upper(), path, handler, summary, envelope, operation))

    def serve(self, operation: Operation[ArgsT], handler: OperationHandler[ArgsT]) -> None:
        """Serve `operation` on each of its methods: the request parsed into its arguments
        model (the 400 names the field), the handler called with them and the caller."""
        if operation.name in self._bound:
            raise ValueError(f"operation {operation.name} served twice")
        bound = Bound(operation, handler, self.policy)
        self._bound[operation.name] = bound

        async def serve(request: web.Request) -> Any:
            query = request.method == "GET"
            raw = query_args(request) if query else await json_body(request)
            result = await bound.call(raw, caller_of(request), from_query=query)
            binary = operation.binary
            if binary is not None and prefers(request.headers.get("Accept"), binary.media_type):
                return binary_response(result, binary)
            return result

        serve.__name__ = operation.name
        for method in operation.methods:
            self.add(
                method,
                operation.path,
                serve,
                operation.summary,
                envelope=operation.envelope,
                operation=operation,
            )

    def bound(self) -> list[Bound[Any]]:
        """The operations served, with their handlers (MCP calls them directly)."""
        return list(self._bound.values())

    def endpoints(self) -> list[dict[str, Any]]:
        """Paths with their methods, for the 404 answer."""
        by_path: dict[str, list[str]] = {}
        for r in self._routes:
            by_path.setdefault(r.path, []).append(r.method)
        return [{"path": p, "methods": sorted(m)} for p, m in sorted(by_path.items())]

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


JSON_TYPE = "application/json"


def prefers(accept: str | None, media_type: str) -> bool:
    """True when an `Accept` header ranks `media_type` above JSON (a tie goes to JSON, the
    default answer): `image/png` and `image/*` pick PNG, `*/*` or none JSON."""
    if not accept:
        return False
    return _quality(accept, media_type) > _quality(accept, JSON_TYPE)


def _quality(accept: str, media_type: str) -> float:
    """The q of the most specific range in `accept` that covers `media_type` (RFC 9110)."""
    kind, _, sub = media_type.partition("/")
    best, best_rank = 0.0, -1
    for item in accept.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        want_kind, _, want_sub = name.lower().partition("/")
        if want_kind == kind and want_sub == sub:
            rank = 2
        elif want_kind == kind and want_sub == "*":
            rank = 1
        elif want_kind == "*" and want_sub == "*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best, best_rank = _q(params), rank
    return best


def _q(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def binary_response(result: Any, form: BinaryForm) -> web.Response:
    """The bytes an answer carries base64-encoded in `form.field`, as they are."""
    answer = result.model_dump(by_alias=True) if isinstance(result, BaseModel) else result
    data = base64.b64decode(answer[form.field])
    return web.Response(body=data, content_type=form.media_type)


def ok(result: Any) -> web.Response:
    return web.json_response({"status": "ok", "result": result}, dumps=_dumps)


def ok_flat(result: dict[str, Any]) -> web.Response:
    """A success whose fields sit at the top level, beside "status": "ok"."""
    return web.json_response({"status": "ok", **result}, dumps=_dumps)


def error_response(err: SidecarError) -> web.Response:
    headers = dict(err.headers)
    close = headers.pop("Connection", "").lower() == "close"
    resp = web.json_response(err.body(), status=err.status, headers=headers, dumps=_dumps)
    if close:
        resp.force_close()
    return resp


def _dumps(obj: Any) -> str:
    # Answers may be models (the declarations' answer types): the same conversion MCP uses.
    return json.dumps(
        to_jsonable_python(obj, by_alias=True), separators=(",", ":"), ensure_ascii=False
    )


async def read_body(request: web.Request) -> bytes:
    """The whole body; 408 (and the connection closed) when it is not in by BODY_TIMEOUT."""
    try:
        return await asyncio.wait_for(request.read(), BODY_TIMEOUT)
    except asyncio.TimeoutError:
        raise RequestError(
            f"request body not received within {BODY_TIMEOUT:g} s",
            status=408,
            code="request_timeout",
            headers={"Connection": "close"},
        ) from None


async def json_body(request: web.Request) -> dict[str, Any]:
    """A POST's arguments: its JSON object body (nothing: {})."""
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise RequestError("request body is not UTF-8", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise RequestError("request body nests too deeply", code="invalid_json") from None
    except ValueError as exc:  # NaN/Infinity, integers of more than 4300 digits
        raise RequestError(f"request body is not usable JSON: {exc}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise RequestError(
            f"request body must be a JSON object, got {type(value).__name__}",
            code="invalid_json",
        )
    return value


def query_args(request: web.Request) -> dict[str, str]:
    """A GET's arguments: the query's values as text, for the model to read as it types them.
    A name given twice is a 400 rather than a silent choice of one."""
    args: dict[str, str] = {}
    for name, value in request.query.items():
        if name in args:
            raise RequestError(
                f"query parameter '{name}' given more than once",
                code="invalid_field",
                details={"field": name},
            )
        args[name] = value
    return args


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def agent_of(request: web.Request) -> Agent | None:
    """The agent record of the connection this request came on (None in direct mode)."""
    return request.get(AGENT_KEY)


def caller_of(request: web.Request) -> Caller:
    """Who sent the request, as the operations know callers."""
    agent = agent_of(request)
    return Caller(identity_of(request), connection_scoped=agent is not None and agent.name is None)


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


def make_app(
    routes: RouteTable, agents: AgentRegistry, *, token: str | None = None
) -> web.Application:
    """The aiohttp application every agent connection is served by.

    `token`: when set, every request but `GET /health` needs `Authorization: Bearer <token>`
    (sidecar/guard.py has the other checks every request passes first).
    """
    if token:
        log.info("token required: agents send Authorization: Bearer <token>; GET /health is open")
    if not any(r.path == guard.HEALTH_PATH for r in routes):
        routes.add("GET", guard.HEALTH_PATH, guard.health, "the sidecar is up (needs no token)")
    app = web.Application(
        middlewares=[
            guard.middleware(token, MAX_BODY, error_response),
            _identity_middleware(agents),
            _error_middleware(routes),
        ],
        client_max_size=MAX_BODY,
    )
    for r in routes:
        app.router.add_route(r.method, r.path, _wrap(r.handler, r.envelope))
    return app


def _wrap(
    handler: Handler, envelope: bool = True
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        result = await handler(request)
        if isinstance(result, web.StreamResponse):
            return result
        if not envelope and isinstance(result, BaseModel):
            result = result.model_dump(mode="json", by_alias=True)
        return ok(result) if envelope or not isinstance(result, dict) else ok_flat(result)

    return serve


def _identity_middleware(agents: AgentRegistry) -> Any:
    @web.middleware
    async def identity(request: web.Request, handler: WebHandler) -> web.StreamResponse:
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
    async def errors(request: web.Request, handler: WebHandler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SidecarError as err:
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
        except ConnectionError as exc:
            # The agent went away mid-request (its body never came): nobody is left to answer.
            log.debug("client gone during %s %s: %r", request.method, request.path, exc)
            return error_response(RequestError("the client went away", code="client_gone"))
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return error_response(SidecarError("internal error in the sidecar; see its log"))

    return errors

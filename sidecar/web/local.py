"""Calling the bridge's own endpoints from inside the sidecar, on an agent's behalf.

The MCP tools (and the dashboard) do what the REST endpoints do by calling the very
same route handlers, so there is one implementation of every operation. A handler
reads its request only through `http.json_body` and `http.identity_of`; `LocalRequest`
offers exactly that: the arguments as a JSON body and the agent as `X-Agent-Id`.
"""

from __future__ import annotations

import json
from typing import Any, cast

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from sidecar.errors import RequestError
from sidecar.web.http import Handler, RouteTable


class LocalRequest:
    """What a route handler may read of a request, made up inside the sidecar."""

    def __init__(self, method: str, path: str, body: dict[str, Any], identity: str) -> None:
        self.method = method
        self.path = path
        # A GET's arguments are its query; values are JSON, as http.json_body reads them.
        query = {k: json.dumps(v) for k, v in body.items()} if method == "GET" else {}
        self.query: MultiDictProxy[str] = MultiDictProxy(MultiDict(query))
        self.headers = CIMultiDictProxy(CIMultiDict({"X-Agent-Id": identity}))
        self.transport = None
        self._raw = json.dumps(body).encode("utf-8")

    def get(self, key: object, default: Any = None) -> Any:
        return default  # no connection, so no per-connection agent record

    async def read(self) -> bytes:
        return self._raw


class RouteCaller:
    """`await caller.call("POST", "/debug/setBreakpoints", {...}, "alice")` → the `result`.

    Errors are the handlers' own `BridgeError`s, with the status, code and message an
    HTTP agent would get.
    """

    def __init__(self, routes: RouteTable) -> None:
        self.routes = routes

    def handler(self, method: str, path: str) -> Handler:
        for route in self.routes:
            if route.method == method and route.path == path:
                return route.handler
        raise RequestError(f"no endpoint {method} {path}", status=404, code="not_found")

    async def call(self, method: str, path: str, body: dict[str, Any] | None, identity: str) -> Any:
        request = LocalRequest(method, path, body or {}, identity)
        return await self.handler(method, path)(cast(web.Request, request))

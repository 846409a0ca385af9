"""What agents and people discover and watch the bridge through, added to its routes.

`GET /openapi.json` (openapi.py), the dashboard (dashboard.py) and the Model Context
Protocol endpoint `/mcp` (mcp/endpoint.py). `app.Sidecar` calls `register` once, before it
builds the aiohttp application, so all of them pass the same middleware as every other
route.
"""

from __future__ import annotations

from sidecar.api import dashboard, openapi
from sidecar.api.mcp import endpoint as mcp_api
from sidecar.web.http import RouteTable


def register(routes: RouteTable, source: dashboard.DashboardSource) -> mcp_api.McpEndpoint:
    openapi.register(routes)

    async def forget(identity: str) -> None:
        # An MCP session's breakpoints go when the session goes (issue 11).
        await source.dap_session.forget_agent(identity)

    mcp = mcp_api.register(routes, forget)
    dashboard.register(routes, source, mcp.sessions.as_json)
    return mcp

"""Who may drive the editor: checks every request passes before any handler runs.

The bridge listens on 127.0.0.1 only, but a loopback port is still reachable from two
places that are not the user's agents:

- a web page in the user's browser, by DNS rebinding (its own host name resolving to
  127.0.0.1, so the `Host` header names that site) or by a plain cross-origin request
  (the `Origin` header names the page);
- any other local process, which the optional token keeps out.

So, in this order:

1. `Host` must be `127.0.0.1`, `localhost` or `[::1]`, with any port: else 421
   (`misdirected_request`); a request without `Host` is a 400 (HTTP/1.1 requires one).
2. A present `Origin` must be `http(s)://` one of those hosts: else 403 (`forbidden_origin`).
3. When a token is configured (environment `GODOT_BRIDGE_TOKEN` or the project setting
   `godot_debug_connection/token`, passed to the sidecar by the addon), every request but
   a GET of OPEN_PATHS needs `Authorization: Bearer <token>`: else 401 (`unauthorized`).
   Those disclose nothing: `/health` says only that the sidecar is up, and `/` and
   `/dashboard` are the dashboard's static page, which a browser can only open without a
   header; the data it shows comes from `/dashboard/state`, which needs the token.
4. A request with a body (any method but GET/HEAD/OPTIONS) must say
   `Content-Type: application/json`: else 415 (`unsupported_media_type`). Browsers cannot
   send that cross-origin without a CORS preflight, which this server never grants. A
   request without a body passes whatever its `Content-Type` (`curl -X POST
   .../debug/continue`); a browser sending one cross-origin is stopped by rule 2.
5. A declared `Content-Length` above the body cap is refused at once with 413, before
   anything reads the body.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from sidecar.errors import RequestError

HEALTH_PATH = "/health"
# GET (and HEAD) of these needs no token: see rule 3.
OPEN_PATHS = frozenset({HEALTH_PATH, "/", "/dashboard"})

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
# host[:port], the host part compared case-insensitively against _LOOPBACK_NAMES.
_HOST = re.compile(r"^(\[[^\]]*\]|[^:\[\]]*)(?::([0-9]{1,5}))?$")
_JSON = "application/json"
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Render = Callable[[RequestError], web.StreamResponse]


def is_loopback_host(value: str | None) -> bool:
    """True for `127.0.0.1`, `localhost`, `[::1]`, each optionally with a valid `:port`."""
    if not value:
        return False
    m = _HOST.match(value.strip())
    if m is None:
        return False
    host, port = m.group(1).lower(), m.group(2)
    if port is not None and not 0 < int(port) < 65536:
        return False
    return host in _LOOPBACK_NAMES


def is_loopback_origin(value: str) -> bool:
    """True for an `Origin` of http(s) on a loopback host (any port); `null` is not."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    return is_loopback_host(parts.netloc)


def token_matches(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` with exactly `token` (compared in constant time)."""
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())


def check(request: web.Request, token: str | None, max_body: int) -> RequestError | None:
    """What is wrong with `request` before it reaches a handler, or None."""
    host = request.headers.get("Host")
    if host is None:
        return RequestError(
            "missing Host header; send Host: 127.0.0.1:<port>", code="missing_host", status=400
        )
    if not is_loopback_host(host):
        return RequestError(
            f"Host {host[:100]!r} is not this bridge: it answers only to 127.0.0.1, localhost "
            "or [::1] (any port), so that web pages cannot reach it by DNS rebinding",
            status=421,
            code="misdirected_request",
        )
    origin = request.headers.get("Origin")
    if origin is not None and not is_loopback_origin(origin):
        return RequestError(
            f"requests from web pages are refused (Origin {origin[:100]!r}); "
            "only local agents may drive the editor",
            status=403,
            code="forbidden_origin",
        )
    if token and not (request.path in OPEN_PATHS and request.method in ("GET", "HEAD")):
        if not token_matches(request.headers.get("Authorization"), token):
            return RequestError(
                "this bridge needs a token: send Authorization: Bearer <token> (the value of "
                "GODOT_BRIDGE_TOKEN or of the project setting godot_debug_connection/token)",
                status=401,
                code="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="godot_debug_connection"'},
            )
    if request.method not in _BODYLESS_METHODS:
        problem = _body_problem(request, max_body)
        if problem is not None:
            return problem
    return None


def _body_problem(request: web.Request, max_body: int) -> RequestError | None:
    if not request.body_exists:
        # Nothing to misread; aiohttp's client labels even an empty POST octet-stream.
        return None
    raw_type = request.headers.get("Content-Type")
    if raw_type is None or request.content_type.lower() != _JSON:
        got = "no Content-Type" if raw_type is None else f"Content-Type {raw_type[:100]!r}"
        return RequestError(
            f"request bodies must be JSON with Content-Type: application/json, got {got} "
            "(curl: --json or -H 'Content-Type: application/json')",
            status=415,
            code="unsupported_media_type",
        )
    length = request.content_length
    if length is not None and length > max_body:
        return RequestError(
            f"request body of {length} bytes is larger than {max_body} bytes",
            status=413,
            code="body_too_large",
        )
    return None


def middleware(token: str | None, max_body: int, render: Render) -> Any:
    """The aiohttp middleware running `check`; refusals are rendered by `render`."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        problem = check(request, token, max_body)
        if problem is not None:
            return render(problem)
        return await handler(request)

    return guard


async def health(request: web.Request) -> dict[str, Any]:
    """`GET /health`: the sidecar is up. Says nothing else, so it needs no token."""
    return {"healthy": True}

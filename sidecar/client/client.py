"""A small Python client of the bridge's HTTP API (standard library only).

    from sidecar.client import BridgeClient
    bridge = BridgeClient(agent="alice")            # GODOT_BRIDGE_URL, else 127.0.0.1:8080
    bridge.add_breakpoint("res://demo/main.gd", 14)
    since = bridge.events()["latest"]
    bridge.launch()
    stop = bridge.wait_for("stopped", since)
    frames = bridge.stack_trace()["stackFrames"]

Every method returns the answer's `result` (`status()` the whole answer: `/status` is not
wrapped); an error answer raises `BridgeHTTPError` with its status, code and message, an
unreachable bridge `BridgeUnreachable`, and a success without its `result` `BridgeError`.
Debug lines and `read_file`'s lines are 1-based; LSP `line`/`character` are 0-based, as on
the wire.

A method is named after the operation it calls (sidecar/api/catalog.py; `continue_` for
`continue`). Its optional parameters default to None, and None is not sent: the bridge's
declared default applies, so the client has no defaults of its own to drift
(tests/test_issue_12_client_contract.py checks every method against the declarations).
This module is the standard library only and imports nothing else of the sidecar: copy it
anywhere.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypedDict, cast

DEFAULT_PORT = 8080
DEFAULT_AGENT_ENV = "GODOT_BRIDGE_AGENT"


class ServiceStatus(TypedDict, total=False):
    service: str
    port: int
    state: str
    ready: bool
    retry_count: int
    last_activity: str | None
    last_error: str | None
    state_since: str | None
    next_retry_in_s: float | None
    message: str  # the state in words, and why when not connected
    down_reason: str | None  # why an agent disconnected it
    down_by: str | None  # that agent


class AgentInfo(TypedDict, total=False):
    id: int
    agent: str | None
    identity: str
    peer: str
    connected_at: str
    requests: int


class Clients(TypedDict):
    active: int
    max: int
    agents: list[AgentInfo]


class Status(TypedDict, total=False):
    status: str
    overall_ready: bool
    debug_adapter: ServiceStatus
    language_server: ServiceStatus
    clients: Clients
    sidecar: dict[str, Any]


class DebugEvent(TypedDict):
    seq: int
    time: float
    event: str
    body: dict[str, Any]


class EventsPage(TypedDict):
    events: list[DebugEvent]
    next: int
    latest: int
    dropped: int


class Breakpoint(TypedDict, total=False):
    id: int
    line: int
    verified: bool
    message: str


class FileText(TypedDict):
    uri: str
    text: str
    sha256: str
    line_count: int
    start_line: int
    end_line: int


class BridgeError(Exception):
    """Anything that kept a request from getting a `result`."""


class BridgeUnreachable(BridgeError):
    """Nothing answered at the bridge's URL."""


class BridgeHTTPError(BridgeError):
    """The bridge answered with an error."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error
        self.code = str(error.get("code", "unknown"))
        self.message = str(error.get("message", ""))
        super().__init__(f"{status} {self.code}: {self.message}")


def default_url() -> str:
    """GODOT_BRIDGE_URL, else http://127.0.0.1:$GODOT_BRIDGE_PORT (8080)."""
    url = os.environ.get("GODOT_BRIDGE_URL", "").strip()
    if url:
        return url if "://" in url else f"http://{url}"
    port = os.environ.get("GODOT_BRIDGE_PORT", "").strip()
    return f"http://127.0.0.1:{port if port.isdigit() else DEFAULT_PORT}"


def position(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


# Operations whose answer is not wrapped in {"status": "ok", "result": ...}: their fields
# sit beside "status" (the seed's /status shape), so the whole answer is the result.
FLAT_PATHS = frozenset({"/status"})


def given(**fields: Any) -> dict[str, Any]:
    """The fields that were given: None is "not sent", so the bridge's default applies."""
    return {name: value for name, value in fields.items() if value is not None}


class BridgeClient:
    """Typed methods for the bridge's operations; `request` reaches any endpoint."""

    def __init__(
        self,
        url: str | None = None,
        *,
        agent: str | None = None,
        token: str | None = None,
        timeout: float = 45.0,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.agent = agent or os.environ.get(DEFAULT_AGENT_ENV) or None
        self.token = token if token is not None else os.environ.get("GODOT_BRIDGE_TOKEN")
        self.timeout = timeout

    # -- plumbing -------------------------------------------------------------------------

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """`result` of `method path` (the whole answer for the unwrapped `/status`, and for
        what is not an answer of the bridge's shape, as `/openapi.json`'s document); a GET
        sends `body` as query parameters."""
        url = self.url + path
        data = None
        headers = {"Accept": "application/json"}
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode({k: _query(v) for k, v in body.items()})
        elif method != "GET":
            data = json.dumps(body or {}).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.agent:
            headers["X-Agent-Id"] = self.agent
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        answer = self._send(urllib.request.Request(url, data, headers, method=method))
        return _result_of(method, path, answer)

    def _send(self, req: urllib.request.Request) -> Any:
        """Where every JSON request leaves: its answer as JSON, or the error raised."""
        return json.loads(self._fetch(req)[1] or b"null")

    def _fetch(self, req: urllib.request.Request) -> tuple[str, bytes]:
        """The one place a request leaves: the answer's Content-Type and bytes, or the
        error raised."""
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as exc:
            raise BridgeHTTPError(exc.code, _error_of(exc)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BridgeUnreachable(f"no bridge at {self.url}: {reason}") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, given(**query))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body or {})

    def _object(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """`post` for the operations whose result is a JSON object."""
        return cast(dict[str, Any], self.post(path, body))

    # -- the bridge -----------------------------------------------------------------------

    def status(self) -> Status:
        """The whole `/status` answer: `overall_ready`, the services, clients, sidecar."""
        return cast(Status, self.get("/status"))

    def dashboard_state(self, events: int | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.get("/dashboard/state", events=events))

    def health(self) -> bool:
        return bool(self.get("/health").get("healthy"))

    def openapi(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.get("/openapi.json"))

    def connect(self, service: str | None = None) -> dict[str, Any]:
        return self._object("/connect", given(service=service))

    def disconnect(
        self,
        service: str | None = None,
        force: bool | None = None,
        reason: str | None = None,
        resume_after: float | None = None,
    ) -> dict[str, Any]:
        """Disconnect the shared services: refused (409) while other agents are connected
        unless `force`; they reconnect by themselves after `resume_after` seconds."""
        body = given(service=service, force=force, reason=reason, resume_after=resume_after)
        return self._object("/disconnect", body)

    def wait_ready(self, timeout: float = 30.0) -> Status:
        """`/status` once both of Godot's servers are connected."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.get("overall_ready") or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    # -- the control lease and the audit trail ----------------------------------------------

    def control_lease(self) -> dict[str, Any]:
        """Who holds the control lease: {"lease": {holder, expires_at, ...} or None, "you"}."""
        return cast(dict[str, Any], self.get("/control/lease"))

    def take_lease(
        self, ttl: float | None = None, force: bool | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """Take (or renew) the control lease for `ttl` seconds: others' control requests get
        409 `lease_held` until it ends. Held by another: 409 unless `force` with a `reason`."""
        return self._object("/control/lease", given(ttl=ttl, force=force, reason=reason))

    def release_lease(self) -> dict[str, Any]:
        """Give the control lease back ({"released": false} when nobody held it)."""
        return self._object("/control/release")

    def audit(
        self,
        since: int | None = None,
        agent: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        wait: float | None = None,
    ) -> dict[str, Any]:
        """Audit records numbered above `since` ({"records", "next", "latest", "dropped"}):
        only `agent`'s, only of `kind` (an operation, `change`, `control` or `lease`)."""
        page = self.get("/audit", since=since, agent=agent, kind=kind, limit=limit, wait=wait)
        return cast(dict[str, Any], page)

    # -- breakpoints ----------------------------------------------------------------------

    def set_breakpoints(
        self, path: str, lines: Iterable[int | Mapping[str, Any]]
    ) -> list[Breakpoint]:
        """Replace YOUR breakpoints in `path`: 1-based lines, or DAP breakpoints
        (`{"line", "condition"?, "hitCondition"?, "logMessage"?}`, emulated per agent by
        the bridge); one per line, the last given wins. Your hit counts there restart."""
        by_line: dict[int, dict[str, Any]] = {}
        for item in lines:
            bp = {"line": item} if isinstance(item, int) else dict(item)
            bp.pop("hitCount", None)  # as listed by breakpoints(): not a field to set
            by_line[int(bp["line"])] = bp
        body = {"source": {"path": path}, "breakpoints": [by_line[n] for n in sorted(by_line)]}
        return cast(list[Breakpoint], self.post("/debug/setBreakpoints", body)["breakpoints"])

    def breakpoints(self, everyone: bool | None = None) -> dict[str, Any]:
        """{"agent": you, "breakpoints": {path: {agent: [{"line", "condition"?, ...}]}}};
        `everyone`: every agent's, not only yours."""
        return cast(dict[str, Any], self.get("/debug/breakpoints", all=everyone))

    def my_breakpoints(self, path: str) -> list[dict[str, Any]]:
        """Your breakpoints in `path` as listed (line, condition, hitCondition, logMessage)."""
        mine = self.breakpoints()
        per_agent = mine["breakpoints"].get(path, {})
        return [dict(bp) for bp in per_agent.get(mine["agent"], [])]

    def my_lines(self, path: str) -> list[int]:
        return [bp["line"] for bp in self.my_breakpoints(path)]

    def add_breakpoint(
        self,
        path: str,
        line: int,
        *,
        condition: str | None = None,
        hit_condition: str | None = None,
        log_message: str | None = None,
    ) -> list[Breakpoint]:
        """Add one breakpoint to yours in `path` (replacing yours on that line), keeping the
        others; with a condition, a hit condition or a log message (a logpoint) if given."""
        extra = {"condition": condition, "hitCondition": hit_condition, "logMessage": log_message}
        bp = {"line": line, **{k: v for k, v in extra.items() if v is not None}}
        return self.set_breakpoints(path, [*self.my_breakpoints(path), bp])

    def remove_breakpoint(self, path: str, line: int | None = None) -> list[Breakpoint]:
        """Remove one of your breakpoints in `path`, or all of them (`line=None`)."""
        mine = self.my_breakpoints(path)
        keep = [] if line is None else [bp for bp in mine if bp["line"] != line]
        return self.set_breakpoints(path, keep)

    def clear_breakpoints(
        self, path: str | None = None, everyone: bool | None = None
    ) -> dict[str, Any]:
        """Clear yours in `path` (all files when None); `everyone`: every agent's in `path`.

        The result is {"cleared": [{"path", "agent", "lines"}, ...]}.
        """
        source = None if path is None else {"path": path}
        return self._object("/debug/clearBreakpoints", given(source=source, everyone=everyone))

    # -- the game -------------------------------------------------------------------------

    def launch(
        self,
        scene: str | None = None,
        no_debug: bool | None = None,
        play_args: list[str] | None = None,
    ) -> dict[str, Any]:
        """Run `scene` (the bridge's default: the project's main scene) under the debugger."""
        body = given(scene=scene, noDebug=no_debug, playArgs=play_args)
        return self._object("/debug/launch", body)

    def continue_(self) -> dict[str, Any]:
        return self._object("/debug/continue")

    def pause(self) -> dict[str, Any]:
        return self._object("/debug/pause")

    def next(self) -> dict[str, Any]:
        return self._object("/debug/next")

    def step_in(self) -> dict[str, Any]:
        return self._object("/debug/stepIn")

    def step_out(self) -> dict[str, Any]:
        return self._object("/debug/stepOut")

    def terminate(self) -> dict[str, Any]:
        return self._object("/debug/terminate")

    def threads(self) -> dict[str, Any]:
        return self._object("/debug/threads")

    def stack_trace(
        self, levels: int | None = None, start_frame: int | None = None
    ) -> dict[str, Any]:
        body = given(levels=levels, startFrame=start_frame)
        return self._object("/debug/stackTrace", body)

    def scopes(self, frame_id: int = 0) -> dict[str, Any]:
        # The operation requires frameId; `scopes()` has always meant the top frame.
        return self._object("/debug/scopes", {"frameId": frame_id})

    def variables(
        self, reference: int, start: int | None = None, count: int | None = None
    ) -> dict[str, Any]:
        """The children of `reference` (a scope's or a variable's); `start`/`count` page."""
        body = given(variablesReference=reference, start=start, count=count)
        return self._object("/debug/variables", body)

    def evaluate(self, expression: str, frame_id: int | None = None) -> dict[str, Any]:
        body = given(expression=expression, frameId=frame_id)
        return self._object("/debug/evaluate", body)

    # -- the running game -----------------------------------------------------------------

    def game_tree(self, path: str | None = None, depth: int | None = None) -> dict[str, Any]:
        """The running game's scene tree below `path` (a node path), `depth` levels deep."""
        return self._object("/game/tree", given(path=path, depth=depth))

    def game_node(
        self,
        path: str | None = None,
        id: str | None = None,
        properties: list[str] | None = None,
    ) -> dict[str, Any]:
        """One node of the running game (by `path` or `id`) and its typed properties."""
        names = ",".join(properties) if properties is not None else None
        return self._object("/game/node", given(path=path, id=id, properties=names))

    def game_screenshot(self, max_width: int | None = None) -> dict[str, Any]:
        """A PNG of the running game's window as JSON: {width, height, format, data (the
        PNG, base64), png_bytes, game_width, game_height, ...}; `max_width` scales it down."""
        return self._object("/game/screenshot", given(max_width=max_width))

    def game_screenshot_png(self, max_width: int | None = None) -> bytes:
        """The same screenshot as the PNG's bytes (`Accept: image/png`)."""
        url = self.url + "/game/screenshot"
        if max_width is not None:
            url += "?" + urllib.parse.urlencode({"max_width": max_width})
        headers = {"Accept": "image/png"}
        if self.agent:
            headers["X-Agent-Id"] = self.agent
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        kind, data = self._fetch(urllib.request.Request(url, headers=headers))
        if not kind.startswith("image/png"):
            raise BridgeError(f"expected a PNG from {url}, got {kind or 'no Content-Type'}")
        return data

    # -- the running game's clock ---------------------------------------------------------

    def game_clock(self) -> dict[str, Any]:
        """The game's clock: {suspended, time_scale, frames_advanced, can_advance, ...}."""
        return self._object("/game/clock")

    def game_suspend(self) -> dict[str, Any]:
        """Suspend the game's processing (nothing moves; no debugger stop); the clock."""
        return self._object("/game/suspend", {})

    def game_resume(self) -> dict[str, Any]:
        """Resume the game's processing; the clock."""
        return self._object("/game/resume", {})

    def game_advance(
        self,
        frames: int | None = None,
        until: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Run exactly `frames` frames (suspending the game first; it stays suspended), or
        until `until` holds ({path, property, op, value}, or {path, expression}: a Godot
        Expression on the node), at most `frames` of them:
        {frames, reason, condition_met, values, elapsed_ms, ms_per_frame, clock, ...}."""
        return self._object("/game/advance", given(frames=frames, until=until, timeout=timeout))

    def game_time_scale(self, scale: float) -> dict[str, Any]:
        """Set the game's time scale (0.5: half speed); the clock."""
        return self._object("/game/time_scale", {"scale": scale})

    def game_input(
        self,
        steps: list[dict[str, Any]],
        screenshot: bool | None = None,
        max_width: int | None = None,
    ) -> dict[str, Any]:
        """Input steps done in the running game, as real input (`{"type": "action",
        "action": "ui_right", "frames": 30}`, keys, mouse, text, waits): {steps, frames, ms},
        and with `screenshot` the game as it is afterwards."""
        body = given(steps=steps, screenshot=screenshot, max_width=max_width)
        return self._object("/game/input", body)

    def game_evaluate(
        self, expression: str, path: str | None = None, id: str | None = None
    ) -> dict[str, Any]:
        """A Godot Expression evaluated in the running game, no breakpoint needed, with the
        node at `path` (or `id`; default the current scene) as self: {type, value, self}."""
        return self._object("/game/evaluate", given(expression=expression, path=path, id=id))

    def game_set_property(
        self, property: str, value: Any, path: str | None = None, id: str | None = None
    ) -> dict[str, Any]:
        """Set a node's property in the running game only (typed JSON `value`, e.g.
        {"x": 1, "y": 2}): {path, property, old, new}."""
        body = {"property": property, "value": value, **given(path=path, id=id)}
        return self._object("/game/set_property", body)

    # -- events ---------------------------------------------------------------------------

    def events(
        self, since: int | None = None, wait: float | None = None, limit: int | None = None
    ) -> EventsPage:
        """The events numbered above `since`, waiting up to `wait` s for the first one."""
        page = self.get("/debug/events", since=since, wait=wait, limit=limit)
        return cast(EventsPage, page)

    def follow(self, since: int | None = None, wait: float = 10.0) -> Iterator[DebugEvent]:
        """Every event after `since` (default: from now on), as it happens. Events that fell
        out of the bridge's bounded log before they were read come as one `dropped` event
        in their place (numbered as the last of them; its body says how many): a gap is
        never silent."""
        cursor = self.events()["latest"] if since is None else since
        while True:
            page = self.events(cursor, wait)
            missed = page["dropped"]
            if missed:
                text = f"{missed} events fell out of the bridge's log before they were read"
                body = {"dropped": missed, "text": text}
                now = time.time()
                yield {"seq": cursor + missed, "time": now, "event": "dropped", "body": body}
            yield from page["events"]
            cursor = page["next"]

    # -- the running game -----------------------------------------------------------------

    def game_errors(
        self,
        since: int | None = None,
        wait: float | None = None,
        limit: int | None = None,
        warnings: bool | None = None,
    ) -> dict[str, Any]:
        """The game's runtime errors numbered above `since` ({"errors", "next", "latest",
        "dropped"}), waiting up to `wait` s for the first; `warnings=False`: errors only."""
        body = given(since=since, wait=wait, limit=limit, warnings=warnings)
        return self._object("/game/errors", body)

    def game_monitors(
        self, names: str | Sequence[str] | None = None, history: int | None = None
    ) -> dict[str, Any]:
        """The game's latest monitor values by name ({"values", "history", ...}); `names`:
        only these (a list or a comma-separated string); `history`: the last frames too."""
        if names is not None and not isinstance(names, str):
            names = ",".join(names)
        return self._object("/game/monitors", given(names=names, history=history))

    def wait_for(self, kind: str, since: int, timeout: float = 30.0) -> DebugEvent | None:
        """The first `kind` event numbered above `since`, or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        cursor = since
        while (left := deadline - time.monotonic()) > 0:
            page = self.events(cursor, min(left, 10.0))
            for event in page["events"]:
                if event["event"] == kind:
                    return event
            cursor = page["next"]
        return None

    # -- language server and edits --------------------------------------------------------

    def completion(
        self,
        path: str,
        line: int,
        character: int,
        prefix: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        body = {
            "textDocument": {"uri": path},
            "position": position(line, character),
            **given(prefix=prefix, limit=limit),
        }
        return self._object("/lsp/completion", body)

    def at(self, method: str, path: str, line: int, character: int) -> Any:
        """hover, definition, declaration, references or signatureHelp at a position."""
        body = {"textDocument": {"uri": path}, "position": position(line, character)}
        return self.post(f"/lsp/{method}", body)

    def hover(self, path: str, line: int, character: int) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self.at("hover", path, line, character))

    def definition(self, path: str, line: int, character: int) -> list[dict[str, Any]]:
        return _as_list(self.at("definition", path, line, character))

    def declaration(self, path: str, line: int, character: int) -> list[dict[str, Any]]:
        return _as_list(self.at("declaration", path, line, character))

    def references(
        self, path: str, line: int, character: int, include_declaration: bool | None = None
    ) -> list[dict[str, Any]]:
        """Where the symbol is used (with its declaration, unless `include_declaration`
        is False)."""
        body: dict[str, Any] = {
            "textDocument": {"uri": path},
            "position": position(line, character),
        }
        if include_declaration is not None:
            body["context"] = {"includeDeclaration": include_declaration}
        return _as_list(self.post("/lsp/references", body))

    def signature_help(self, path: str, line: int, character: int) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self.at("signatureHelp", path, line, character))

    def document_symbol(self, path: str) -> list[dict[str, Any]]:
        return _as_list(self.post("/lsp/documentSymbol", {"textDocument": {"uri": path}}))

    def document_symbols(self, path: str) -> list[dict[str, Any]]:
        """`document_symbol` by the name this client had first."""
        return self.document_symbol(path)

    # Shared documents: an agent holds a document open until it closes it (or goes).

    def did_open(self, path: str, text: str | None = None) -> dict[str, Any]:
        return self._object("/lsp/didOpen", {"textDocument": {"uri": path, **given(text=text)}})

    def did_change(self, path: str, version: int, changes: list[dict[str, Any]]) -> dict[str, Any]:
        """`changes`: [{"text": whole}] or [{"range": ..., "text": ...}] (LSP, 0-based)."""
        body = {"textDocument": {"uri": path, "version": version}, "contentChanges": changes}
        return self._object("/lsp/didChange", body)

    def did_save(self, path: str) -> dict[str, Any]:
        return self._object("/lsp/didSave", {"textDocument": {"uri": path}})

    def did_close(self, path: str) -> dict[str, Any]:
        return self._object("/lsp/didClose", {"textDocument": {"uri": path}})

    def diagnostics(self, path: str, wait: float | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self.get("/lsp/diagnostics", uri=path, wait=wait))

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> FileText:
        """A project file's text (lines `start_line`..`end_line`, 1-based, inclusive; the
        whole file by default) and the sha256 of the whole file, for `apply_changes`."""
        body = given(uri=path, start_line=start_line, end_line=end_line)
        return cast(FileText, self.post("/edit/read", body))

    def apply_changes(
        self,
        path: str,
        text: str | None = None,
        edits: list[dict[str, Any]] | None = None,
        expected_sha256: str | None = None,
    ) -> dict[str, Any]:
        body = given(uri=path, text=text, edits=edits, expected_sha256=expected_sha256)
        return self._object("/edit/applyChanges", body)

    def reload(self, paths: list[str] | None = None) -> dict[str, Any]:
        return self._object("/execute/reload", given(paths=paths))


def _result_of(method: str, path: str, answer: Any) -> Any:
    """The `result` of a success; the whole answer of an unwrapped one (`/status`) or of
    what is not the bridge's answer shape at all (`/openapi.json`'s document)."""
    if not isinstance(answer, dict) or answer.get("status") != "ok":
        return answer
    if "result" in answer:
        return answer["result"]
    if path in FLAT_PATHS:
        return answer
    raise BridgeError(f"{method} {path}: the bridge answered ok without a 'result'")


def _as_list(result: Any) -> list[dict[str, Any]]:
    """An LSP answer that may be null, one item or a list, as a list."""
    if result is None:
        return []
    return cast(list[dict[str, Any]], result if isinstance(result, list) else [result])


def _query(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _error_of(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error
    return {"code": "http_error", "message": str(exc.reason)}

"""A small Python client of the bridge's HTTP API (standard library only).

    from sidecar.client.client import BridgeClient
    bridge = BridgeClient(agent="alice")            # GODOT_BRIDGE_URL, else 127.0.0.1:8080
    bridge.add_breakpoint("res://demo/main.gd", 14)
    since = bridge.events()["latest"]
    bridge.launch()
    stop = bridge.wait_for("stopped", since)
    frames = bridge.stack_trace()["stackFrames"]

Every method returns the answer's `result` (`status()` the whole answer: `/status` is not
wrapped); an error answer raises `BridgeHTTPError` with its status, code and message, and
an unreachable bridge `BridgeUnreachable`. Debug lines and `read_file`'s lines are 1-based;
LSP `line`/`character` are 0-based, as on the wire.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
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


class BridgeClient:
    """Typed methods for the bridge's endpoints; `request` reaches any endpoint."""

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
        """`result` of `method path` (the whole answer when it has none, as `/status`);
        a GET sends `body` as query parameters."""
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
        if isinstance(answer, dict) and answer.get("status") == "ok" and "result" in answer:
            return answer["result"]
        return answer

    def _send(self, req: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise BridgeHTTPError(exc.code, _error_of(exc)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BridgeUnreachable(f"no bridge at {self.url}: {reason}") from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, {k: v for k, v in query.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body or {})

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
        return self.post("/connect", {"service": service} if service else {})

    def disconnect(
        self,
        service: str | None = None,
        force: bool = False,
        reason: str | None = None,
        resume_after: float | None = None,
    ) -> dict[str, Any]:
        """Disconnect the shared services: refused (409) while other agents are connected
        unless `force`; they reconnect by themselves after `resume_after` seconds."""
        body: dict[str, Any] = {"service": service, "reason": reason, "resume_after": resume_after}
        if force:
            body["force"] = True
        return self.post("/disconnect", {k: v for k, v in body.items() if v is not None})

    def wait_ready(self, timeout: float = 30.0) -> Status:
        """`/status` once both of Godot's servers are connected."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.get("overall_ready") or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    # -- breakpoints ----------------------------------------------------------------------

    def set_breakpoints(self, path: str, lines: Iterable[int]) -> list[Breakpoint]:
        """Replace YOUR breakpoints in `path` (1-based lines; conditions are not supported)."""
        bps = [{"line": line} for line in sorted(set(lines))]
        body = {"source": {"path": path}, "breakpoints": bps}
        return cast(list[Breakpoint], self.post("/debug/setBreakpoints", body)["breakpoints"])

    def breakpoints(self, everyone: bool = False) -> dict[str, Any]:
        """{"agent": you, "breakpoints": {path: {agent: [{"line"}...]}}}."""
        return cast(dict[str, Any], self.get("/debug/breakpoints", all=everyone or None))

    def my_lines(self, path: str) -> list[int]:
        mine = self.breakpoints()
        per_agent = mine["breakpoints"].get(path, {})
        return [bp["line"] for bp in per_agent.get(mine["agent"], [])]

    def add_breakpoint(self, path: str, line: int) -> list[Breakpoint]:
        """Add one breakpoint to yours in `path`, keeping the others."""
        return self.set_breakpoints(path, [*self.my_lines(path), line])

    def remove_breakpoint(self, path: str, line: int | None = None) -> list[Breakpoint]:
        """Remove one of your breakpoints in `path`, or all of them (`line=None`)."""
        keep = [] if line is None else [n for n in self.my_lines(path) if n != line]
        return self.set_breakpoints(path, keep)

    def clear_breakpoints(self, path: str | None = None, everyone: bool = False) -> dict[str, Any]:
        """Clear yours in `path` (all files when None); `everyone`: every agent's in `path`.

        The result is {"cleared": [{"path", "agent", "lines"}, ...]}.
        """
        body: dict[str, Any] = {"source": {"path": path}} if path is not None else {}
        if everyone:
            body["everyone"] = True
        return self.post("/debug/clearBreakpoints", body)

    # -- the game -------------------------------------------------------------------------

    def launch(
        self, scene: str = "main", no_debug: bool = False, play_args: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"scene": scene}
        if no_debug:
            body["noDebug"] = True
        if play_args:
            body["playArgs"] = play_args
        return self.post("/debug/launch", body)

    def continue_(self) -> dict[str, Any]:
        return self.post("/debug/continue")

    def pause(self) -> dict[str, Any]:
        return self.post("/debug/pause")

    def next(self) -> dict[str, Any]:
        return self.post("/debug/next")

    def step_in(self) -> dict[str, Any]:
        return self.post("/debug/stepIn")

    def step_out(self) -> dict[str, Any]:
        return self.post("/debug/stepOut")

    def terminate(self) -> dict[str, Any]:
        return self.post("/debug/terminate")

    def threads(self) -> dict[str, Any]:
        return self.post("/debug/threads")

    def stack_trace(self, levels: int = 0, start_frame: int = 0) -> dict[str, Any]:
        body = {"levels": levels, "startFrame": start_frame} if start_frame else {"levels": levels}
        return self.post("/debug/stackTrace", body)

    def scopes(self, frame_id: int = 0) -> dict[str, Any]:
        return self.post("/debug/scopes", {"frameId": frame_id})

    def variables(
        self, reference: int, start: int | None = None, count: int | None = None
    ) -> dict[str, Any]:
        """The children of `reference` (a scope's or a variable's); `start`/`count` page."""
        body = {"variablesReference": reference, "start": start, "count": count}
        return self.post("/debug/variables", {k: v for k, v in body.items() if v is not None})

    def evaluate(self, expression: str, frame_id: int = 0) -> dict[str, Any]:
        return self.post("/debug/evaluate", {"expression": expression, "frameId": frame_id})

    # -- events ---------------------------------------------------------------------------

    def events(self, since: int = 0, wait: float = 0.0, limit: int = 500) -> EventsPage:
        return cast(EventsPage, self.get("/debug/events", since=since, wait=wait, limit=limit))

    def follow(self, since: int | None = None, wait: float = 10.0) -> Iterator[DebugEvent]:
        """Every event after `since` (default: from now on), as it happens."""
        cursor = self.events()["latest"] if since is None else since
        while True:
            page = self.events(cursor, wait)
            yield from page["events"]
            cursor = page["next"]

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
        limit: int = 100,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "textDocument": {"uri": path},
            "position": position(line, character),
            "limit": limit,
        }
        if prefix is not None:
            body["prefix"] = prefix
        return self.post("/lsp/completion", body)

    def at(self, method: str, path: str, line: int, character: int) -> Any:
        """hover, definition, declaration, references or signatureHelp at a position."""
        body = {"textDocument": {"uri": path}, "position": position(line, character)}
        return self.post(f"/lsp/{method}", body)

    def hover(self, path: str, line: int, character: int) -> dict[str, Any] | None:
        return self.at("hover", path, line, character)

    def definition(self, path: str, line: int, character: int) -> list[dict[str, Any]]:
        return _as_list(self.at("definition", path, line, character))

    def declaration(self, path: str, line: int, character: int) -> list[dict[str, Any]]:
        return _as_list(self.at("declaration", path, line, character))

    def references(
        self, path: str, line: int, character: int, include_declaration: bool = True
    ) -> list[dict[str, Any]]:
        body = {
            "textDocument": {"uri": path},
            "position": position(line, character),
            "context": {"includeDeclaration": include_declaration},
        }
        return _as_list(self.post("/lsp/references", body))

    def signature_help(self, path: str, line: int, character: int) -> dict[str, Any] | None:
        return self.at("signatureHelp", path, line, character)

    def document_symbols(self, path: str) -> list[dict[str, Any]]:
        return _as_list(self.post("/lsp/documentSymbol", {"textDocument": {"uri": path}}))

    # Shared documents: an agent holds a document open until it closes it (or goes).

    def did_open(self, path: str, text: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"uri": path}
        if text is not None:
            doc["text"] = text
        return self.post("/lsp/didOpen", {"textDocument": doc})

    def did_change(self, path: str, version: int, changes: list[dict[str, Any]]) -> dict[str, Any]:
        """`changes`: [{"text": whole}] or [{"range": ..., "text": ...}] (LSP, 0-based)."""
        body = {"textDocument": {"uri": path, "version": version}, "contentChanges": changes}
        return self.post("/lsp/didChange", body)

    def did_save(self, path: str) -> dict[str, Any]:
        return self.post("/lsp/didSave", {"textDocument": {"uri": path}})

    def did_close(self, path: str) -> dict[str, Any]:
        return self.post("/lsp/didClose", {"textDocument": {"uri": path}})

    def diagnostics(self, path: str, wait: float = 0.0) -> dict[str, Any]:
        return self.get("/lsp/diagnostics", uri=path, wait=wait or None)

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> FileText:
        """A project file's text (lines `start_line`..`end_line`, 1-based, inclusive; the
        whole file by default) and the sha256 of the whole file, for `apply_changes`."""
        body: dict[str, Any] = {"uri": path}
        if start_line is not None:
            body["start_line"] = start_line
        if end_line is not None:
            body["end_line"] = end_line
        return cast(FileText, self.post("/edit/read", body))

    def apply_changes(
        self,
        path: str,
        text: str | None = None,
        edits: list[dict[str, Any]] | None = None,
        expected_sha256: str | None = None,
    ) -> dict[str, Any]:
        body = {"uri": path, "text": text, "edits": edits, "expected_sha256": expected_sha256}
        return self.post("/edit/applyChanges", {k: v for k, v in body.items() if v is not None})

    def reload(self, paths: list[str] | None = None) -> dict[str, Any]:
        return self.post("/execute/reload", {} if paths is None else {"paths": paths})


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

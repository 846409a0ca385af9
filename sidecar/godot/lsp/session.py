"""One LSP session with Godot's GDScript language server, shared by every agent.

Godot allows few LSP connections and keeps documents per connection, so all agents go
through this one. ``Peer`` gives each request a fresh JSON-RPC id and routes the answer
back to the task that asked; this module adds the LSP handshake (``initialize`` once
per connection, which makes Godot parse every script first, hence its longer timeout),
the notifications Godot sends unasked (workspace root, a multi-MB list of native classes,
diagnostics), re-opening shared documents after a reconnect, and completion shaping.

Agents' requests go through ``SharedRequests`` (sharing.py): fair turns per agent, and
identical reads of the same document state sent once. Notifications (didOpen, didChange,
didClose) are written at once, never queued: everything an agent asks after one is sent
after it, so Godot answers it against the new text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sidecar.config import Config
from sidecar.errors import ProtocolError, WrongEditor
from sidecar.godot.identity import mismatch_message
from sidecar.godot.lsp.sharing import SharedRequests
from sidecar.godot.peer import JsonRpcCorrelation, Peer
from sidecar.godot.scheduler import FairScheduler
from sidecar.godot.service import ServiceStatus
from sidecar.project.documents import DocumentStore
from sidecar.project.paths import ProjectFile, ProjectPaths

log = logging.getLogger(__name__)

# Godot parses every script of the project before answering `initialize`.
INITIALIZE_TIMEOUT = 60.0
# Godot names its own project root (`gdscript_client/changeWorkspace`) while it handles
# `initialize`, before its answer, and only when our rootPath is not its root: a moment's grace
# for a notification that would come late.
WORKSPACE_WAIT = 0.2
DEFAULT_COMPLETION_LIMIT = 100
# Requests in flight at Godot's language server, and for one agent while another agent is
# active (docs/BENCHMARKS.md, "Issue 14: language-server fairness"). Godot answers every
# request that arrived before an editor loop iteration in that iteration, so the window bounds
# how much work one iteration does (and how long it stalls the editor); the room left over a
# busy agent's share lets another agent's request go at once instead of an iteration later.
LSP_WINDOW = 8
LSP_PER_AGENT = 1
# Who asks when the sidecar asks on its own behalf.
SIDECAR_AGENT = "<sidecar>"

_IDENT_TAIL = re.compile(r"[A-Za-z0-9_]*$")

CLIENT_CAPABILITIES: dict[str, Any] = {
    "textDocument": {
        "synchronization": {"didSave": True, "dynamicRegistration": False},
        "completion": {"completionItem": {"snippetSupport": False}},
        "hover": {"contentFormat": ["markdown", "plaintext"]},
        "signatureHelp": {},
        "definition": {},
        "declaration": {},
        "references": {},
        "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
        "publishDiagnostics": {"relatedInformation": False},
    },
    "workspace": {},
}


class LspError(ProtocolError):
    """Godot answered a request with a JSON-RPC error."""

    code = "lsp_error"


@dataclass
class ServerInfo:
    """What Godot told us about itself on the current connection."""

    workspace_root: str | None = None


class LspSession:
    """The shared connection, its documents and diagnostics."""

    def __init__(self, config: Config, status: ServiceStatus) -> None:
        self.config = config
        self.paths = ProjectPaths(config.project)
        self.documents = DocumentStore(self.paths, self._notify)
        self.server = ServerInfo()
        self._workspace_named = asyncio.Event()
        # The project root another editor reported on our port (wrong_editor), if any.
        self.foreign_root: str | None = None
        # Whether Godot's language server on our port has shown it serves our project:
        # None until a handshake told (the DAP leans on it when it has no other proof).
        self.identified: bool | None = None
        window = config.lsp_window or LSP_WINDOW
        self.scheduler = FairScheduler(window, config.lsp_per_agent or LSP_PER_AGENT)
        self.turns = SharedRequests(self.scheduler, self._send)
        self.peer = Peer(
            status,
            JsonRpcCorrelation(),
            what="language server",
            host=config.godot_host,
            request_timeout=config.request_timeout,
            on_message=self._on_message,
            on_connected=self._handshake,
            on_lost=self._lost,
            # LSP has no harmless request to ping with; a dead socket still shows as EOF.
            ping_interval=None,
        )

    @property
    def status(self) -> ServiceStatus:
        return self.peer.status

    def start(self) -> None:
        self.peer.start()

    async def stop(self) -> None:
        await self.peer.disconnect("sidecar stopping")

    async def connect(self, wait: float | None = None) -> bool:
        return await self.peer.connect(wait)

    async def disconnect(
        self, reason: str = "disconnected on request", *, resume_after: float | None = None
    ) -> None:
        await self.peer.disconnect(reason, resume_after=resume_after)

    def _lost(self, reason: str) -> None:
        # A proof that the port is ours holds for that connection only (another editor may
        # serve the port next): the DAP must not lean on it. A "not ours" verdict (the
        # handshake closing the link) stays until the next handshake says otherwise.
        if self.identified:
            self.identified = None

    # -- talking to Godot ----------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Any,
        *,
        agent: str = SIDECAR_AGENT,
        reads: ProjectFile | None = None,
    ) -> Any:
        """The `result` of one LSP request, sent in `agent`'s turn; 503 / 504 / 502 from the
        peer otherwise.

        `reads`: the request is a pure read about that script. An identical one (method and
        params) already on its way at the same state of the documents is joined instead of
        sent again.
        """
        key = None if reads is None else self._share_key(method, params, reads)
        answer = await self.turns.ask(agent, method, params, key)
        error = answer.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise LspError(
                f"Godot's language server refused {method}: {message}",
                details={"lsp_error": error, "method": method},
            )
        return answer.get("result")

    async def _send(self, method: str, params: Any) -> dict[str, Any]:
        return await self.peer.request(method, params)

    def _share_key(self, method: str, params: Any, f: ProjectFile) -> Hashable:
        """What makes two reads the same question: method, params, and what Godot reads to
        answer. Any notification the store sent since (an edit, an open, a close, here or in
        another script) makes it a new question; a script nobody has open is read from disk
        by Godot, so its size and time of change count too."""
        doc = self.documents.get(f)
        if doc is not None:
            on_disk: tuple[int, int] | None = None
        else:
            try:
                st = os.stat(self.paths.path(f))
                on_disk = (st.st_mtime_ns, st.st_size)
            except OSError:
                on_disk = None
        text = json.dumps(params, sort_keys=True, separators=(",", ":"))
        return (method, text, self.documents.generation, on_disk)

    def traffic(self) -> dict[str, Any]:
        """The requests' counters and the scheduler's state, for `/status`."""
        return {
            "sent": self.turns.traffic.sent,
            "shared": self.turns.traffic.shared,
            "in_flight": self.scheduler.in_flight,
            "waiting": self.scheduler.waiting,
            "window": self.scheduler.window,
            "per_agent": self.scheduler.per_agent,
        }

    def require_connected(self) -> None:
        """503 now rather than after changing shared state Godot would never see."""
        if not self.peer.connected:
            raise self.peer.unavailable()

    async def _notify(self, method: str, params: dict[str, Any]) -> None:
        # A lost connection is not the agent's problem here: the document store is the
        # truth and is replayed to Godot on reconnect (reopen_all).
        try:
            self.peer.send({"jsonrpc": "2.0", "method": method, "params": params})
        except Exception as exc:  # TransportError: replayed after the reconnect
            log.info("could not send %s (%s); it is replayed on reconnect", method, exc)

    async def _handshake(self, peer: Peer) -> None:
        self.identified = None  # until this connection's own answer tells
        self.server = ServerInfo()
        self._workspace_named.clear()
        root = self.paths.root
        params = {
            "processId": os.getpid(),
            "clientInfo": {"name": "godot_debug_connection"},
            "rootPath": root,
            "rootUri": self.paths.uri(ProjectFile("")).rstrip("/"),
            "capabilities": CLIENT_CAPABILITIES,
        }
        timeout = max(INITIALIZE_TIMEOUT, self.config.request_timeout)
        answer = await peer.request("initialize", params, timeout=timeout, handshake=True)
        if "error" in answer:
            raise ProtocolError(f"Godot refused initialize: {answer['error']}")
        await self._check_workspace(peer)
        peer.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        await self.documents.reopen_all()

    async def _check_workspace(self, peer: Peer) -> None:
        """WrongEditor when the server's project is not ours (the proof that needs no pid).

        Godot compares the rootPath we sent with its project and says nothing when they
        agree; it sends `gdscript_client/changeWorkspace` with its own root otherwise.
        """
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._workspace_named.wait(), WORKSPACE_WAIT)
        theirs = self.server.workspace_root
        if not theirs or same_project(theirs, self.config.project):
            # No notification: Godot found its project root equal to the rootPath we sent.
            self.foreign_root = None
            self.identified = True
            return
        self.foreign_root = theirs
        self.identified = False
        raise WrongEditor(
            mismatch_message(self.status.name, peer.port, self.config.project, theirs),
            details={"service": self.status.name, "state": "wrong_editor", "other": theirs},
        )

    def _on_message(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        params = msg.get("params")
        if "id" in msg and method:
            self._answer_server_request(msg)
            return
        if not isinstance(params, dict):
            params = {}
        if method == "textDocument/publishDiagnostics":
            self.documents.on_diagnostics(params)
        elif method == "gdscript_client/changeWorkspace":
            # Godot's project root differs from ours (symlinks): its URIs use its own.
            self.server.workspace_root = str(params.get("path") or "")
            self._workspace_named.set()
            if same_project(self.server.workspace_root, self.config.project):
                self.paths.set_godot_root(self.server.workspace_root)
        elif method == "gdscript/capabilities":
            pass  # several MB listing every native class: nothing here needs it
        elif method in ("window/logMessage", "window/showMessage"):
            log.info("language server: %s", params.get("message"))
        else:
            log.debug("language server notification %s ignored", method)

    def _answer_server_request(self, msg: dict[str, Any]) -> None:
        """Godot may ask us things (configuration, capability registration): say no politely."""
        try:
            self.peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": msg["id"],
                    "error": {"code": -32601, "message": f"{msg['method']} not supported"},
                }
            )
        except Exception as exc:
            log.debug("could not answer server request %s: %s", msg.get("method"), exc)


def same_project(a: str, b: str) -> bool:
    """Whether two spellings of a project directory name the same directory."""
    if a.startswith("file://"):
        a = a[len("file://") :]
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    return os.path.realpath(a).rstrip("/") == os.path.realpath(b).rstrip("/")


# -- completion shaping ---------------------------------------------------------------


@dataclass(frozen=True)
class CompletionQuery:
    prefix: str | None = None  # explicit filter from the agent
    limit: int = DEFAULT_COMPLETION_LIMIT  # 0 = everything


def cursor_prefix(text: str, line: int, character: int) -> str:
    """The identifier characters just before the cursor (what the agent is typing)."""
    lines = text.splitlines()
    if line < 0 or line >= len(lines):
        return ""
    before = _utf16_prefix(lines[line], character)
    match = _IDENT_TAIL.search(before)
    return match.group(0) if match else ""


def _utf16_prefix(line: str, units: int) -> str:
    count = 0
    for i, ch in enumerate(line):
        if count >= units:
            return line[:i]
        count += 2 if ord(ch) > 0xFFFF else 1
    return line


def item_name(item: dict[str, Any]) -> str:
    """What an item completes to, for matching: Godot labels functions `name(...)`."""
    name = item.get("filterText") or item.get("label") or ""
    if not isinstance(name, str):
        return ""
    name = name.split("(", 1)[0]
    return name.strip("\"'$")


def _rank(name: str, prefix: str) -> int:
    if not prefix:
        return 0
    if name == prefix:
        return 0
    if name.startswith(prefix):
        return 1
    lowered = name.lower()
    if lowered.startswith(prefix.lower()):
        return 2
    if prefix.lower() in lowered:
        return 3
    return 4


def shape_completion(result: Any, typed: str, query: CompletionQuery) -> dict[str, Any]:
    """Filter, rank and cut Godot's (very long) completion answer.

    Items whose name starts with what is typed at the cursor come first; otherwise
    Godot's order is kept (it lists the script's own symbols before the globals).
    """
    items = result.get("items", []) if isinstance(result, dict) else result or []
    items = [i for i in items if isinstance(i, dict)]
    wanted = query.prefix
    if wanted:
        low = wanted.lower()
        items = [i for i in items if item_name(i).lower().startswith(low)]
    key_prefix = wanted if wanted is not None else typed
    ranked = sorted(
        enumerate(items), key=lambda pair: (_rank(item_name(pair[1]), key_prefix), pair[0])
    )
    total = len(ranked)
    cut = ranked if query.limit <= 0 else ranked[: query.limit]
    out = []
    for _, item in cut:
        slim = dict(item)
        # `data` echoes the request for completionItem/resolve, which we do not offer.
        slim.pop("data", None)
        out.append(slim)
    return {
        "items": out,
        "total": total,
        "truncated": len(out) < total,
        "prefix": key_prefix,
        "isIncomplete": bool(result.get("isIncomplete")) if isinstance(result, dict) else False,
    }

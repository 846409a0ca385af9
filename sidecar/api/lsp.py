"""HTTP endpoints of the language server and of file edits.

Bodies are the LSP method's `params`; `result` is the LSP result. The URI in
`textDocument.uri` may be spelled any way `ProjectPaths` understands; Godot always gets
its own `file:///` form. Document notifications go through the shared `DocumentStore`
so that many agents can hold one file open without confusing Godot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sidecar.errors import RequestError
from sidecar.godot.lsp.session import (
    DEFAULT_COMPLETION_LIMIT,
    CompletionQuery,
    LspSession,
    cursor_prefix,
    shape_completion,
)
from sidecar.project.documents import SIDECAR_HOLDER, Document, ProjectFile
from sidecar.project.edits import Editor, EditRequest, EditResult, ReadRequest
from sidecar.web.http import RouteTable, identity_of, json_body, require

# Longest an agent may park a diagnostics long-poll.
MAX_WAIT = 60.0

POSITION_METHODS = ("hover", "definition", "declaration", "references", "signatureHelp")


def field(body: dict[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    """`body["a"]["b"]` for "a.b", or a 400 naming the whole dotted field."""
    parts = dotted.split(".")
    current: Any = body
    for depth, part in enumerate(parts):
        want = kind if depth == len(parts) - 1 else dict
        try:
            current = require(current, part, want)
        except RequestError as err:
            err.details["field"] = ".".join(parts[: depth + 1])
            err.message = err.message.replace(f"'{part}'", f"'{err.details['field']}'")
            err.args = (err.message,)
            raise
    return current


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    return default if body.get(name) is None else require(body, name, kind)


def _non_negative(value: int, name: str) -> int:
    if value < 0:
        raise RequestError(
            f"field '{name}' must not be negative", code="invalid_field", details={"field": name}
        )
    return value


@dataclass
class LspApi:
    session: LspSession
    editor: Editor

    # -- helpers ---------------------------------------------------------------------

    def _document_uri(self, body: dict[str, Any]) -> ProjectFile:
        # Only scripts: Godot parses anything it is given as GDScript (issue 11).
        if "textDocument" not in body and "uri" in body:
            return self.session.paths.script(body["uri"])  # a shortcut agents like
        raw = field(body, "textDocument.uri", str)
        return self.session.paths.script(raw, "textDocument.uri")

    def _params(self, body: dict[str, Any], f: ProjectFile, drop: tuple[str, ...] = ()) -> dict:
        params = {k: v for k, v in body.items() if k not in drop and k != "uri"}
        params["textDocument"] = {"uri": self.session.paths.uri(f)}
        return params

    def _position(self, body: dict[str, Any]) -> tuple[int, int]:
        line = _non_negative(field(body, "position.line", int), "position.line")
        char = _non_negative(field(body, "position.character", int), "position.character")
        return line, char

    def _text_of(self, f: ProjectFile) -> str:
        doc = self.session.documents.get(f)
        if doc is not None:
            return doc.text
        try:
            with open(self.session.paths.path(f), encoding="utf-8", newline="") as fh:
                return fh.read()
        except (OSError, UnicodeDecodeError):
            return ""

    def _disk_text(self, f: ProjectFile) -> str:
        try:
            with open(self.session.paths.path(f), encoding="utf-8", newline="") as fh:
                return fh.read()
        except FileNotFoundError:
            raise RequestError(
                f"{f.res} does not exist; give 'textDocument.text' to open it anyway",
                status=404,
                code="not_found",
                details={"path": f.res},
            ) from None
        except UnicodeDecodeError:
            raise RequestError(f"{f.res} is not UTF-8 text", code="not_text") from None

    # -- document notifications ---------------------------------------------------------

    async def did_open(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        f = self._document_uri(body)
        item = body.get("textDocument") if isinstance(body.get("textDocument"), dict) else body
        text = item.get("text")
        if text is not None and not isinstance(text, str):
            raise RequestError(
                "field 'textDocument.text' must be a string",
                code="invalid_field",
                details={"field": "textDocument.text"},
            )
        language = item.get("languageId") or "gdscript"
        self.session.require_connected()
        if text is None:
            # No text: join the shared copy if there is one, else take the file on disk.
            shared = self.session.documents.get(f)
            text = shared.text if shared is not None else self._disk_text(f)
        doc, created = await self.session.documents.open(
            f, identity_of(request), text, str(language)
        )
        out = doc.summary()
        out.update(created=created, text_matches=doc.text == text)
        if doc.text != text:
            # Someone else holds it with other text: never overwrite silently.
            out["text"] = doc.text
        return out

    async def did_change(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        f = self._document_uri(body)
        changes = require(body, "contentChanges", list)
        version = None
        if isinstance(body.get("textDocument"), dict):
            version = optional(body["textDocument"], "version", int, None)
        self.session.require_connected()
        doc = await self.session.documents.change(f, changes, version)
        return {"uri": doc.uri, "path": f.res, "version": doc.version}

    async def did_save(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        f = self._document_uri(body)
        self.session.require_connected()
        uri = await self.session.documents.save(f)
        return {"uri": uri, "path": f.res}

    async def did_close(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        f = self._document_uri(body)
        doc = await self.session.documents.close(f, identity_of(request))
        return {**doc.summary(), "closed_in_godot": not doc.holders}

    # -- requests -------------------------------------------------------------------------

    async def completion(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        f = self._document_uri(body)
        line, char = self._position(body)
        limit = _non_negative(optional(body, "limit", int, DEFAULT_COMPLETION_LIMIT), "limit")
        prefix = optional(body, "prefix", str, None)
        params = self._params(body, f, drop=("limit", "prefix"))
        result = await self.session.request("textDocument/completion", params)
        typed = cursor_prefix(self._text_of(f), line, char)
        # Godot answers every name in scope (2000+) whatever is typed; like an editor,
        # keep those that start with the word left of the cursor unless the agent says
        # otherwise ("prefix": "" keeps everything).
        query = CompletionQuery(typed if prefix is None else prefix, limit)
        return shape_completion(result, typed, query)

    def _position_handler(self, method: str) -> Any:
        async def handle(request: web.Request) -> Any:
            body = await json_body(request)
            f = self._document_uri(body)
            self._position(body)
            params = self._params(body, f)
            if method == "references":
                params.setdefault("context", {"includeDeclaration": True})
            return await self.session.request(f"textDocument/{method}", params)

        return handle

    async def document_symbol(self, request: web.Request) -> Any:
        body = await json_body(request)
        f = self._document_uri(body)
        return await self.session.request("textDocument/documentSymbol", self._params(body, f))

    # -- diagnostics -----------------------------------------------------------------------

    async def diagnostics(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        f = self._document_uri(body)
        wait = optional(body, "wait", (int, float), 0)
        wait = min(max(float(wait), 0.0), MAX_WAIT)
        store = self.session.documents
        doc = store.get(f)
        if doc is None:
            # Godot publishes only for open documents: open it briefly from disk.
            self.session.require_connected()
            text = self._disk_text(f)
            version = await self._transient_diagnostics(f, text, max(wait, self._timeout))
            return self._diagnostics_answer(f, version, is_open=False)
        await store.wait_diagnostics(f, doc.version, wait)
        return self._diagnostics_answer(f, doc.version, is_open=True)

    @property
    def _timeout(self) -> float:
        return self.session.config.request_timeout

    async def _transient_diagnostics(
        self, f: ProjectFile, text: str, timeout: float, save: bool = False
    ) -> int:
        store = self.session.documents
        doc, _ = await store.open(f, SIDECAR_HOLDER, text)
        try:
            version = doc.version
            if save:
                await store.save(f)
            await store.wait_diagnostics(f, version, timeout)
            return version
        finally:
            await store.close(f, SIDECAR_HOLDER)

    def _diagnostics_answer(self, f: ProjectFile, document_version: int, is_open: bool) -> dict:
        entry = self.session.documents.diagnostics(f)
        version = entry.version if entry else None
        return {
            "uri": self.session.paths.uri(f),
            "path": f.res,
            "open": is_open,
            "document_version": document_version,
            "version": version,
            "stale": version is None or version < document_version,
            "diagnostics": entry.items if entry else [],
        }

    # -- edits --------------------------------------------------------------------------------

    async def apply_changes(self, request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        req = EditRequest.from_body(body)
        result = await self.editor.apply(req)
        out = result.as_json()
        out["uri"] = self.session.paths.uri(result.file)
        out.update(await self._after_write(result))
        return out

    async def read(self, request: web.Request) -> dict[str, Any]:
        """A project file (any text file, not only scripts) and its sha256, from disk."""
        body = await json_body(request)
        result = await self.editor.read(ReadRequest.from_body(body))
        return result.as_json()

    async def _after_write(self, result: EditResult) -> dict[str, Any]:
        """Tell Godot (change + save) and collect its diagnostics for the new text."""
        f = result.file
        if not f.is_script:
            # A scene, resource or text file: Godot's language server would parse it as
            # GDScript (false errors), and no document can hold it (didOpen is script only).
            return {"lsp": "not_a_script", "diagnostics": None}
        store = self.session.documents
        # The disk is the truth now, also for a shared open copy (replayed on reconnect).
        doc: Document | None = await store.replace(f, result.text)
        if not self.session.peer.connected:
            return {"lsp": "not_connected", "diagnostics": None}
        if doc is None:
            version = await self._transient_diagnostics(f, result.text, self._timeout, save=True)
            return {"lsp": "notified", **self._edit_diagnostics(f, version)}
        version = doc.version
        await store.save(f)
        await store.wait_diagnostics(f, version, self._timeout)
        return {"lsp": "notified", **self._edit_diagnostics(f, version)}

    def _edit_diagnostics(self, f: ProjectFile, version: int) -> dict[str, Any]:
        entry = self.session.documents.fresh(f, version)
        return {
            "version": version,
            "diagnostics": entry.items if entry else None,
            "diagnostics_version": entry.version if entry else None,
        }


def register(routes: RouteTable, session: LspSession, editor: Editor | None = None) -> LspApi:
    """Add the /lsp/*, /edit/applyChanges and /edit/read endpoints to the route table."""
    api = LspApi(session, editor or Editor(session.paths))
    what = "language server"
    routes.add("POST", "/lsp/didOpen", api.did_open, f"{what}: open a shared document")
    routes.add("POST", "/lsp/didChange", api.did_change, f"{what}: full or incremental change")
    routes.add("POST", "/lsp/didSave", api.did_save, f"{what}: Godot reloads the script")
    routes.add("POST", "/lsp/didClose", api.did_close, f"{what}: release your hold")
    routes.add("POST", "/lsp/completion", api.completion, f"{what}: completion (prefix, limit)")
    for method in POSITION_METHODS:
        routes.add("POST", f"/lsp/{method}", api._position_handler(method), f"{what}: {method}")
    routes.add("POST", "/lsp/documentSymbol", api.document_symbol, f"{what}: documentSymbol")
    for verb in ("GET", "POST"):
        routes.add(verb, "/lsp/diagnostics", api.diagnostics, f"{what}: diagnostics (uri, wait)")
    routes.add(
        "POST", "/edit/applyChanges", api.apply_changes, "write a project file (hash-checked)"
    )
    for verb in ("GET", "POST"):
        routes.add(verb, "/edit/read", api.read, "read a project file (text, sha256, lines)")
    return api

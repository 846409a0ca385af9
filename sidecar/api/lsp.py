"""The language server's operations (`/lsp/*`) and the file edits (`/edit/*`).

Bodies are the LSP method's `params`; `result` is the LSP result. Positions in them are
LSP's: 0-based lines, characters in UTF-16 code units (`/edit/read`'s line range is
1-based, like the debugger's lines). A file may be named any way `ProjectPaths`
understands (`res://`, project-relative, absolute, `file://`); Godot always gets its own
`file:///` form. Document notifications go through the shared `DocumentStore` so that
many agents can hold one file open without confusing Godot.

One answer per condition on every endpoint here: outside the project 403
`outside_project`, not a `.gd` where only scripts make sense 400 `not_a_script`, a file
that is neither on disk nor open 404 `not_found`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from sidecar.api.shapes import SCRIPT_PATTERN, Position, TextDocument
from sidecar.errors import RequestError
from sidecar.godot.lsp.session import (
    DEFAULT_COMPLETION_LIMIT,
    CompletionQuery,
    LspSession,
    cursor_prefix,
    shape_completion,
)
from sidecar.project.documents import SIDECAR_HOLDER, Document
from sidecar.project.edits import Editor, EditRequest, EditResult, ReadRequest
from sidecar.project.paths import ProjectFile
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Operation

# Longest an agent may park a diagnostics long-poll.
MAX_WAIT = 60.0

# What asking Godot's language server can answer, whatever the request: not connected,
# the connection lost mid-request, silent past the deadline, an error answer.
PEER_ERRORS = ("not_connected", "connection_lost", "timeout", "lsp_error")
# Naming a file: a bad spelling, outside the project.
PATH_ERRORS = ("missing_field", "invalid_field", "outside_project")
SCRIPT_ERRORS = (*PATH_ERRORS, "not_a_script")

# --- arguments ---------------------------------------------------------------------------------

_URI_DOC = "res://, project-relative, absolute or file:// path of a project file"
_SCRIPT_PATTERN = SCRIPT_PATTERN
_SCRIPT_DOC = f"a GDScript (.gd) file: {_URI_DOC}"


class ScriptDocument(Arguments):
    uri: str = Field(
        min_length=1,
        description=_SCRIPT_DOC,
        examples=["res://player.gd"],
        json_schema_extra=_SCRIPT_PATTERN,
    )


def _given(name: str, json_type: str) -> JsonDict:
    """JSON Schema for "`name` is there and not null": what the server takes as given
    (null is taken as absent)."""
    return {"required": [name], "properties": {name: {"type": json_type}}}


_SCRIPT_NAMED: JsonDict = {"anyOf": [_given("textDocument", "object"), _given("uri", "string")]}
_FILE_NAMED: JsonDict = {"anyOf": [_given("uri", "string"), _given("textDocument", "object")]}


class DocumentArguments(Arguments):
    """A script, named LSP's way (`textDocument.uri`) or by `uri` alone (a shortcut)."""

    model_config = ConfigDict(json_schema_extra=_SCRIPT_NAMED)

    textDocument: ScriptDocument | None = Field(
        None, description="the script (a .gd file); required unless `uri` is given"
    )
    uri: str | None = Field(
        None,
        min_length=1,
        description=f"the script alone, when `textDocument` is not given: {_SCRIPT_DOC}",
        examples=["res://player.gd"],
        json_schema_extra=_SCRIPT_PATTERN,
    )

    @model_validator(mode="after")
    def _named(self) -> DocumentArguments:
        if self.textDocument is None and self.uri is None:
            # The request names no file: a missing field, like any other one.
            raise RequestError(
                "missing field 'textDocument' (or 'uri' alone)",
                code="missing_field",
                details={"field": "textDocument"},
            )
        return self

    def named(self) -> tuple[str, str]:
        """The file as the agent spelled it, and the field that carries it."""
        if self.textDocument is not None:
            return self.textDocument.uri, "textDocument.uri"
        assert self.uri is not None  # _named
        return self.uri, "uri"


class OpenedDocument(ScriptDocument):
    text: str | None = Field(
        None,
        description="the text to open it with; absent: the shared copy if open, else the disk",
    )
    languageId: str = "gdscript"
    version: int | None = Field(None, description="ignored: the sidecar numbers versions")


class DidOpenArguments(DocumentArguments):
    textDocument: OpenedDocument | None = Field(
        None, description="the script (a .gd file); required unless `uri` is given"
    )
    text: str | None = Field(None, description="with `uri` alone: the text to open it with")
    languageId: str = Field("gdscript", description="with `uri` alone: the language")

    def item(self) -> tuple[str | None, str]:
        """(text, languageId) from wherever the file was named."""
        if self.textDocument is not None:
            return self.textDocument.text, self.textDocument.languageId or "gdscript"
        return self.text, self.languageId or "gdscript"


class Range(Arguments):
    """Two LSP positions (0-based line, UTF-16 character), end exclusive."""

    start: Position
    end: Position


class ContentChange(Arguments):
    """An LSP TextDocumentContentChangeEvent: the whole text, or a range replaced."""

    text: str
    range: Range | None = Field(None, description="absent: `text` is the whole new text")


class VersionedDocument(ScriptDocument):
    version: int | None = Field(
        None, description="if given, must be newer than the document's (else 409 conflict)"
    )


class DidChangeArguments(DocumentArguments):
    textDocument: VersionedDocument | None = Field(
        None, description="the script (a .gd file); required unless `uri` is given"
    )
    contentChanges: list[ContentChange] = Field(
        description="applied in order, each to the result of the one before (LSP's rule)"
    )


class PositionArguments(DocumentArguments):
    position: Position = Field(description="LSP's: 0-based line, UTF-16 character")


class CompletionContext(Arguments):
    triggerKind: int = Field(
        1, ge=1, le=3, description="1 invoked, 2 a trigger character, 3 re-run"
    )
    triggerCharacter: str | None = None


class CompletionArguments(PositionArguments):
    context: CompletionContext | None = Field(None, description="LSP's, passed on to Godot")
    limit: int = Field(
        DEFAULT_COMPLETION_LIMIT, ge=0, description="most items in the answer; 0: all"
    )
    prefix: str | None = Field(
        None,
        description='keep items starting with this; absent: the word left of the cursor; "": all',
    )


class ReferenceContext(Arguments):
    includeDeclaration: bool = True


class ReferencesArguments(PositionArguments):
    context: ReferenceContext = Field(default_factory=ReferenceContext)


class FileArguments(Arguments):
    """A project file of any kind, by `uri` (or LSP's `textDocument.uri`)."""

    model_config = ConfigDict(json_schema_extra=_FILE_NAMED)

    uri: str | None = Field(None, min_length=1, description=_URI_DOC, examples=["res://a.gd"])
    textDocument: TextDocument | None = Field(
        None, description="LSP's spelling of `uri`, used when `uri` is absent"
    )

    @model_validator(mode="after")
    def _named(self) -> FileArguments:
        if self.uri is None and self.textDocument is None:
            raise RequestError(
                f"missing field 'uri' ({_URI_DOC})",
                code="missing_field",
                details={"field": "uri"},
            )
        return self

    def named(self) -> tuple[str, str]:
        """The file as the agent spelled it, and the field that carries it."""
        if self.uri is not None:
            return self.uri, "uri"
        assert self.textDocument is not None  # _named
        return self.textDocument.uri, "textDocument.uri"


class QueryFileArguments(Arguments):
    """A file by `uri`, which a GET's query can carry: required, also in a POST."""

    uri: str = Field(min_length=1, description=_URI_DOC, examples=["res://a.gd"])

    def named(self) -> tuple[str, str]:
        """The file as the agent spelled it, and the field that carries it."""
        return self.uri, "uri"


class DiagnosticsArguments(QueryFileArguments):
    uri: str = Field(
        min_length=1,
        description=_SCRIPT_DOC,
        examples=["res://player.gd"],
        json_schema_extra=_SCRIPT_PATTERN,
    )
    wait: float = Field(
        0.0,
        description=f"seconds to wait for diagnostics newer than the document's version "
        f"(long-poll; cut to 0..{MAX_WAIT:g})",
    )


class TextEdit(Arguments):
    range: Range = Field(description="in the current text, LSP's 0-based positions")
    newText: str


class ApplyChangesArguments(FileArguments):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [_FILE_NAMED, {"oneOf": [_given("text", "string"), _given("edits", "array")]}]
        }
    )

    text: str | None = Field(None, description="the whole new content (or give `edits`)")
    edits: list[TextEdit] | None = Field(
        None, description="LSP TextEdits against the current content (or give `text`)"
    )
    expected_sha256: str | None = Field(
        None,
        description="the sha256 you read (/edit/read); another one on disk → 409 stale_hash",
    )

    @model_validator(mode="after")
    def _one_content(self) -> ApplyChangesArguments:
        if self.text is None and self.edits is None:
            raise RequestError(
                "give exactly one of 'text' (the whole new content) or 'edits' "
                "(LSP TextEdits against the current content)",
                code="missing_field",
                details={"field": "text"},
            )
        if self.text is not None and self.edits is not None:
            raise RequestError(
                "give exactly one of 'text' or 'edits', not both",
                code="invalid_field",
                details={"field": "edits"},
            )
        return self

    def request(self) -> EditRequest:
        """The write these arguments ask for, as the project layer takes it."""
        edits = None if self.edits is None else [e.model_dump() for e in self.edits]
        expected = self.expected_sha256.strip().lower() if self.expected_sha256 else None
        return EditRequest(self.named()[0], self.text, edits, expected)


class ReadArguments(QueryFileArguments):
    start_line: int | None = Field(None, ge=1, description="first line, 1-based; absent: 1")
    end_line: int | None = Field(
        None,
        ge=1,
        description="last line, 1-based, inclusive; past the end: to the end; before "
        "start_line (or start_line past the end): an empty selection",
    )


# --- answers -----------------------------------------------------------------------------------


class LspPosition(Answer):
    line: int = Field(description="0-based (LSP)")
    character: int = Field(description="0-based, in UTF-16 code units (LSP)")


class LspRange(Answer):
    start: LspPosition
    end: LspPosition


class Location(Answer):
    uri: str = Field(description="Godot's file:/// URI of the file")
    range: LspRange


class Diagnostic(Answer):
    range: LspRange = Field(description="0-based lines (LSP): line 0 is the file's first line")
    message: str
    severity: int | None = Field(None, description="1 error, 2 warning, 3 information, 4 hint")


class DocumentState(Answer):
    uri: str = Field(description="Godot's file:/// URI of the document")
    path: str = Field(description="res:// path")
    version: int = Field(description="the shared document's version, as Godot knows it")
    open_by: dict[str, int] = Field(description="agent → how many opens it has not closed")


class Opened(DocumentState):
    created: bool = Field(description="false: another agent had it open already")
    text_matches: bool = Field(description="the shared text is the text you sent (or read)")
    text: str | None = Field(
        None, description="the shared text, only when it is not the one you sent"
    )


class Changed(Answer):
    uri: str
    path: str
    version: int


class Saved(Answer):
    uri: str
    path: str


class Closed(DocumentState):
    closed_in_godot: bool = Field(description="you were the last holder: Godot closed it")


class Completions(Answer):
    items: list[dict[str, Any]] = Field(description="LSP CompletionItems, best first")
    total: int = Field(description="items that matched before the limit")
    truncated: bool
    prefix: str = Field(description="the filter used (the typed word unless `prefix` given)")
    isIncomplete: bool


class Hover(Answer):
    contents: Any = Field(description="LSP MarkupContent (markdown or plaintext)")
    range: LspRange | None = None


class SignatureHelp(Answer):
    signatures: list[dict[str, Any]]
    activeSignature: int | None = None
    activeParameter: int | None = None


class DocumentSymbol(Answer):
    name: str
    kind: int = Field(description="LSP SymbolKind")


class DiagnosticsAnswer(Answer):
    uri: str
    path: str
    open: bool = Field(description="an agent holds the document open")
    document_version: int = Field(description="the version the diagnostics should be for")
    version: int | None = Field(description="the version Godot's diagnostics are for")
    stale: bool = Field(description="no diagnostics for `document_version` arrived (yet)")
    diagnostics: list[Diagnostic]


class Written(Answer):
    uri: str = Field(description="Godot's file:/// URI")
    path: str = Field(description="res:// path")
    sha256: str = Field(description="of the new content")
    previous_sha256: str | None = Field(description="of the content replaced; null: new file")
    created: bool
    bytes: int
    lsp: Literal["notified", "not_connected", "not_a_script"] = Field(
        description="what the language server was told: not_a_script for files not .gd"
    )
    diagnostics: list[Diagnostic] | None = Field(
        description="Godot's diagnostics for the new text (0-based lines); null: none came"
    )
    version: int | None = Field(None, description="the document version written")
    diagnostics_version: int | None = None


class FileText(Answer):
    uri: str = Field(description="res:// path of the file")
    text: str = Field(description="the lines asked for, with their line ends, as on disk")
    sha256: str = Field(description="of the whole file: what applyChanges' expected_sha256 takes")
    line_count: int
    start_line: int = Field(description="1-based")
    end_line: int = Field(
        description="1-based, inclusive; start_line - 1 for an empty selection (text '')"
    )


# --- declarations -----------------------------------------------------------------------------

_WHAT = "language server"
_TAGS = ("lsp",)
_ASK_ERRORS = (*SCRIPT_ERRORS, "not_found", *PEER_ERRORS)

DID_OPEN = Operation(
    name="did_open",
    effect="change",
    path="/lsp/didOpen",
    summary=f"{_WHAT}: open a shared document",
    description="Without text: join the shared copy if open, else take the file on disk "
    "(404 not_found when it is not there). An open document keeps its text: the answer "
    "gives it when it is not yours.",
    arguments=DidOpenArguments,
    answer=Opened,
    errors=(*SCRIPT_ERRORS, "not_found", "not_text", "not_connected"),
    tags=_TAGS,
)
DID_CHANGE = Operation(
    name="did_change",
    effect="change",
    path="/lsp/didChange",
    summary=f"{_WHAT}: full or incremental change",
    arguments=DidChangeArguments,
    answer=Changed,
    errors=(*SCRIPT_ERRORS, "not_open", "conflict", "not_connected"),
    tags=_TAGS,
)
DID_SAVE = Operation(
    name="did_save",
    effect="change",
    path="/lsp/didSave",
    summary=f"{_WHAT}: Godot reloads the script",
    arguments=DocumentArguments,
    answer=Saved,
    errors=(*SCRIPT_ERRORS, "not_connected"),
    tags=_TAGS,
)
DID_CLOSE = Operation(
    name="did_close",
    effect="change",
    path="/lsp/didClose",
    summary=f"{_WHAT}: release your hold",
    arguments=DocumentArguments,
    answer=Closed,
    errors=(*SCRIPT_ERRORS, "not_open", "not_open_by_agent"),
    tags=_TAGS,
)
COMPLETION = Operation(
    name="completion",
    path="/lsp/completion",
    summary=f"{_WHAT}: completion (prefix, limit)",
    arguments=CompletionArguments,
    answer=Completions,
    errors=_ASK_ERRORS,
    tags=_TAGS,
)


def _asking(
    name: str, method: str, arguments: type[PositionArguments], answer: Any
) -> Operation[PositionArguments]:
    return Operation(
        name=name,
        path=f"/lsp/{method}",
        summary=f"{_WHAT}: {method}",
        arguments=arguments,
        answer=answer,
        errors=_ASK_ERRORS,
        tags=_TAGS,
    )


HOVER = _asking("hover", "hover", PositionArguments, Hover | None)
DEFINITION = _asking("definition", "definition", PositionArguments, list[Location] | None)
DECLARATION = _asking("declaration", "declaration", PositionArguments, list[Location] | None)
REFERENCES = _asking("references", "references", ReferencesArguments, list[Location] | None)
SIGNATURE_HELP = _asking("signature_help", "signatureHelp", PositionArguments, SignatureHelp | None)
DOCUMENT_SYMBOL = Operation(
    name="document_symbol",
    path="/lsp/documentSymbol",
    summary=f"{_WHAT}: documentSymbol",
    arguments=DocumentArguments,
    answer=list[DocumentSymbol] | None,
    errors=_ASK_ERRORS,
    tags=_TAGS,
)
DIAGNOSTICS = Operation(
    name="diagnostics",
    path="/lsp/diagnostics",
    methods=("GET", "POST"),
    summary=f"{_WHAT}: diagnostics (uri, wait)",
    description="Lines are 0-based (LSP): a parse error on the file's third line has line 2 "
    "here and line 3 in /execute/reload's errors.",
    arguments=DiagnosticsArguments,
    answer=DiagnosticsAnswer,
    errors=(*SCRIPT_ERRORS, "not_found", "not_text", "not_connected"),
    tags=_TAGS,
)
APPLY_CHANGES = Operation(
    name="apply_changes",
    effect="change",
    path="/edit/applyChanges",
    summary="write a project file (hash-checked)",
    description="Any project file but Godot's own .godot/ and .import/; atomic; a script "
    "written is told to the language server and its diagnostics come back.",
    arguments=ApplyChangesArguments,
    answer=Written,
    errors=(*PATH_ERRORS, "not_text", "stale_hash"),
    tags=("edit",),
)
READ_FILE = Operation(
    name="read_file",
    path="/edit/read",
    methods=("GET", "POST"),
    summary="read a project file (text, sha256, lines)",
    arguments=ReadArguments,
    answer=FileText,
    errors=(*PATH_ERRORS, "not_found", "not_text"),
    tags=("edit",),
)

OPERATIONS = (
    DID_OPEN,
    DID_CHANGE,
    DID_SAVE,
    DID_CLOSE,
    COMPLETION,
    HOVER,
    DEFINITION,
    DECLARATION,
    REFERENCES,
    SIGNATURE_HELP,
    DOCUMENT_SYMBOL,
    DIAGNOSTICS,
    APPLY_CHANGES,
    READ_FILE,
)

# --- handlers ----------------------------------------------------------------------------------


@dataclass
class LspApi:
    session: LspSession
    editor: Editor

    # -- helpers ---------------------------------------------------------------------

    def _script(self, raw: str, field_name: str) -> ProjectFile:
        """The script named; 403 outside the project, 400 not a script.

        Only scripts: Godot parses anything it is given as GDScript (issue 11).
        """
        return self.session.paths.script(raw, field_name)

    def _existing_script(self, raw: str, field_name: str) -> ProjectFile:
        """The script named, open or on disk; else 404 (Godot would answer nothing)."""
        f = self._script(raw, field_name)
        if self.session.documents.get(f) is None:
            self.session.paths.existing(f.res, field_name)
        return f

    def _params(self, f: ProjectFile, args: PositionArguments) -> dict[str, Any]:
        return {
            "textDocument": {"uri": self.session.paths.uri(f)},
            "position": args.position.model_dump(),
        }

    def _text_of(self, f: ProjectFile) -> str:
        doc = self.session.documents.get(f)
        if doc is not None:
            return doc.text
        try:
            return _read_text(self.session.paths.path(f))
        except (OSError, UnicodeDecodeError):
            return ""

    def _disk_text(self, f: ProjectFile, field_name: str) -> str:
        try:
            return _read_text(self.session.paths.path(f))
        except FileNotFoundError:
            raise RequestError(
                f"no file {f.res} in the project; give 'textDocument.text' to open it anyway",
                code="not_found",
                details={"field": field_name, "path": f.res},
            ) from None
        except UnicodeDecodeError:
            raise RequestError(f"{f.res} is not UTF-8 text", code="not_text") from None

    # -- document notifications ---------------------------------------------------------

    async def did_open(self, args: DidOpenArguments, caller: Caller) -> dict[str, Any]:
        raw, where = args.named()
        f = self._script(raw, where)
        text, language = args.item()
        self.session.require_connected()
        if text is None:
            # No text: join the shared copy if there is one, else take the file on disk.
            shared = self.session.documents.get(f)
            text = shared.text if shared is not None else self._disk_text(f, where)
        doc, created = await self.session.documents.open(f, caller.identity, text, language)
        out = doc.summary()
        out.update(created=created, text_matches=doc.text == text)
        if doc.text != text:
            # Someone else holds it with other text: never overwrite silently.
            out["text"] = doc.text
        return out

    async def did_change(self, args: DidChangeArguments, caller: Caller) -> dict[str, Any]:
        f = self._script(*args.named())
        version = args.textDocument.version if args.textDocument is not None else None
        changes = [c.model_dump(exclude_none=True) for c in args.contentChanges]
        self.session.require_connected()
        doc = await self.session.documents.change(f, changes, version)
        return {"uri": doc.uri, "path": f.res, "version": doc.version}

    async def did_save(self, args: DocumentArguments, caller: Caller) -> dict[str, Any]:
        f = self._script(*args.named())
        self.session.require_connected()
        uri = await self.session.documents.save(f)
        return {"uri": uri, "path": f.res}

    async def did_close(self, args: DocumentArguments, caller: Caller) -> dict[str, Any]:
        f = self._script(*args.named())
        doc = await self.session.documents.close(f, caller.identity)
        return {**doc.summary(), "closed_in_godot": not doc.holders}

    # -- requests -------------------------------------------------------------------------

    async def completion(self, args: CompletionArguments, caller: Caller) -> dict[str, Any]:
        f = self._existing_script(*args.named())
        params = self._params(f, args)
        if args.context is not None:
            params["context"] = args.context.model_dump(exclude_none=True)
        # Godot's answer is shared by identical asks; the shaping below is each caller's own.
        result = await self.session.request(
            "textDocument/completion", params, agent=caller.identity, reads=f
        )
        typed = cursor_prefix(self._text_of(f), args.position.line, args.position.character)
        # Godot answers every name in scope (2000+) whatever is typed; like an editor,
        # keep those that start with the word left of the cursor unless the agent says
        # otherwise ("prefix": "" keeps everything).
        query = CompletionQuery(typed if args.prefix is None else args.prefix, args.limit)
        return shape_completion(result, typed, query)

    def asking(self, method: str) -> Any:
        """The handler of a position request: Godot's answer as it is."""

        async def handle(args: PositionArguments, caller: Caller) -> Any:
            f = self._existing_script(*args.named())
            params = self._params(f, args)
            if isinstance(args, ReferencesArguments):
                params["context"] = args.context.model_dump()
            return await self.session.request(
                f"textDocument/{method}", params, agent=caller.identity, reads=f
            )

        return handle

    async def document_symbol(self, args: DocumentArguments, caller: Caller) -> Any:
        f = self._existing_script(*args.named())
        params = {"textDocument": {"uri": self.session.paths.uri(f)}}
        return await self.session.request(
            "textDocument/documentSymbol", params, agent=caller.identity, reads=f
        )

    # -- diagnostics -----------------------------------------------------------------------

    async def diagnostics(self, args: DiagnosticsArguments, caller: Caller) -> dict[str, Any]:
        raw, where = args.named()
        f = self._existing_script(raw, where)
        wait = min(max(args.wait, 0.0), MAX_WAIT)
        store = self.session.documents
        doc = store.get(f)
        if doc is None:
            # Godot publishes only for open documents: open it briefly from disk.
            self.session.require_connected()
            text = self._disk_text(f, where)
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

    def _diagnostics_answer(
        self, f: ProjectFile, document_version: int, is_open: bool
    ) -> dict[str, Any]:
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

    async def apply_changes(self, args: ApplyChangesArguments, caller: Caller) -> dict[str, Any]:
        result = await self.editor.apply(args.request())
        out = result.as_json()
        out["uri"] = self.session.paths.uri(result.file)
        out.update(await self._after_write(result))
        return out

    async def read(self, args: ReadArguments, caller: Caller) -> dict[str, Any]:
        """A project file (any text file, not only scripts) and its sha256, from disk."""
        req = ReadRequest(args.named()[0], args.start_line, args.end_line)
        return (await self.editor.read(req)).as_json()

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


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


def register(routes: RouteTable, session: LspSession, editor: Editor | None = None) -> LspApi:
    """Serve the /lsp/*, /edit/applyChanges and /edit/read operations."""
    api = LspApi(session, editor or Editor(session.paths))
    routes.serve(DID_OPEN, api.did_open)
    routes.serve(DID_CHANGE, api.did_change)
    routes.serve(DID_SAVE, api.did_save)
    routes.serve(DID_CLOSE, api.did_close)
    routes.serve(COMPLETION, api.completion)
    for operation in (HOVER, DEFINITION, DECLARATION, REFERENCES, SIGNATURE_HELP):
        routes.serve(operation, api.asking(operation.path.rsplit("/", 1)[1]))
    routes.serve(DOCUMENT_SYMBOL, api.document_symbol)
    routes.serve(DIAGNOSTICS, api.diagnostics)
    routes.serve(APPLY_CHANGES, api.apply_changes)
    routes.serve(READ_FILE, api.read)
    return api

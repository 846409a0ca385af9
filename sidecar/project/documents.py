"""Documents shared by many agents over one LSP connection.

Godot tracks open documents per connection and honours only full-text sync (it keeps
the last ``contentChanges`` entry's text). All agents share our single connection, so
the sidecar owns each document: it applies agents' incremental changes itself, counts
who has the document open, and sends Godot one stream per document with full text and
strictly increasing versions. Godot closes its copy only when the last agent closes.

URIs: agents may name a file as ``res://``, project-relative, absolute or ``file://``.
Documents are keyed by their project-relative POSIX path; the URI sent to Godot is the
one Godot itself produces (``file:///`` + percent-encoded absolute path under the
project root Godot was opened with), so its diagnostics map back to our documents.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import RequestError, SidecarError
from sidecar.project.paths import ProjectFile, ProjectPaths

# Sends one LSP notification (method, params) to Godot, in call order.
Sink = Callable[[str, dict[str, Any]], Awaitable[None]]

SIDECAR_HOLDER = "<sidecar>"


class Conflict(SidecarError):
    """The agent acted on an out-of-date view of a document or file."""

    status = 409
    code = "conflict"


# --- positions and incremental changes --------------------------------------------------


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins; LSP counts \\n, \\r\\n and \\r as line ends."""
    starts = [0]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\r":
            if i + 1 < n and text[i + 1] == "\n":
                i += 1
            starts.append(i + 1)
        elif ch == "\n":
            starts.append(i + 1)
        i += 1
    return starts


def offset_at(text: str, starts: list[int], line: int, character: int) -> int:
    """The str index of an LSP position (UTF-16 `character`), clamped as the spec says."""
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    begin = starts[line]
    end = starts[line + 1] if line + 1 < len(starts) else len(text)
    # The line's own end excludes its terminator.
    while end > begin and text[end - 1] in "\r\n":
        end -= 1
    units = 0
    i = begin
    while i < end and units < character:
        units += 2 if ord(text[i]) > 0xFFFF else 1
        i += 1
    return i


# LSP JSON already checked for shape by the operation's arguments model (api/lsp.py):
# a TextDocumentContentChangeEvent {"text", "range"?} or a TextEdit {"range", "newText"},
# ranges as {"start": {"line", "character"}, "end": {...}} with non-negative integers.
# What only the text can tell (a range ending before it starts, overlapping edits) is
# checked here, naming the item at fault.
LspJson = dict[str, Any]


def apply_change(text: str, change: LspJson, index: int = 0) -> str:
    """One TextDocumentContentChangeEvent: full text, or a range replaced by text."""
    rng = change.get("range")
    if rng is None:
        return str(change["text"])
    a, b = _span(text, line_starts(text), rng)
    if b < a:
        raise _misplaced(f"contentChanges[{index}].range", "range end is before its start")
    return text[:a] + str(change["text"]) + text[b:]


def apply_changes(text: str, changes: list[LspJson]) -> str:
    """Changes in order, each against the result of the previous (LSP didChange rule)."""
    for i, change in enumerate(changes):
        text = apply_change(text, change, i)
    return text


def apply_text_edits(text: str, edits: list[LspJson]) -> str:
    """LSP TextEdits: all ranges refer to the original text and must not overlap."""
    starts = line_starts(text)
    spans: list[tuple[int, int, int, str]] = []
    for i, edit in enumerate(edits):
        a, b = _span(text, starts, edit["range"])
        if b < a:
            raise _misplaced(f"edits[{i}].range", "range end is before its start")
        spans.append((a, b, i, edit["newText"]))
    # Same-start inserts keep their array order (spec); sort is stable on the index.
    spans.sort(key=lambda s: (s[0], s[1], s[2]))
    for prev, cur in itertools.pairwise(spans):
        if cur[0] < prev[1]:
            raise _misplaced(f"edits[{cur[2]}].range", f"overlaps edit {prev[2]}")
    out: list[str] = []
    pos = 0
    for a, b, _, new_text in spans:
        out.append(text[pos:a])
        out.append(new_text)
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _span(text: str, starts: list[int], rng: LspJson) -> tuple[int, int]:
    start, end = rng["start"], rng["end"]
    return (
        offset_at(text, starts, start["line"], start["character"]),
        offset_at(text, starts, end["line"], end["character"]),
    )


def _misplaced(where: str, what: str) -> RequestError:
    return RequestError(f"'{where}': {what}", code="invalid_field", details={"field": where})


# --- the shared documents -----------------------------------------------------------------


@dataclass
class Document:
    file: ProjectFile
    uri: str
    text: str
    version: int
    language_id: str = "gdscript"
    # agent identity -> how many times it opened the document without closing it
    holders: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "path": self.file.res,
            "version": self.version,
            "open_by": dict(sorted(self.holders.items())),
        }


@dataclass
class Diagnostics:
    """Godot's latest diagnostics for one file and the document version they are for."""

    version: int | None
    items: list[Any]


class DocumentStore:
    """Open documents, their holders, and the diagnostics Godot published for them."""

    def __init__(self, paths: ProjectPaths, sink: Sink) -> None:
        self.paths = paths
        self._sink = sink
        self._docs: dict[str, Document] = {}
        self._diagnostics: dict[str, Diagnostics] = {}
        # Versions sent to Godot whose diagnostics have not arrived yet, oldest first.
        # Godot parses and publishes in the order it receives didOpen/didChange.
        self._pending: dict[str, deque[int]] = {}
        self._versions: dict[str, int] = {}  # last version per file, survives close
        self._lock = asyncio.Lock()
        # Replaced on every arrival; waiters re-check freshness when it fires.
        self._arrived = asyncio.Event()
        # Counts the notifications sent to Godot: a read asked at another count may be
        # answered against other text (the LSP session shares identical reads only at one).
        self.generation = 0

    # queries

    def get(self, f: ProjectFile) -> Document | None:
        return self._docs.get(f.rel)

    def documents(self) -> list[Document]:
        return list(self._docs.values())

    def diagnostics(self, f: ProjectFile) -> Diagnostics | None:
        return self._diagnostics.get(f.rel)

    def all_diagnostics(self) -> dict[str, Diagnostics]:
        """The latest diagnostics of every file Godot published some for, by relative path."""
        return dict(self._diagnostics)

    # agent operations; each sends Godot what it needs under one lock so that Godot's
    # stream has the same order as our versions

    async def open(
        self, f: ProjectFile, holder: str, text: str, language_id: str = "gdscript"
    ) -> tuple[Document, bool]:
        """Hold `f` open for `holder`. Returns the document and whether it was new.

        An already open document keeps its text: another agent may have unsaved changes
        in it, so the answer tells the caller the current version instead.
        """
        async with self._lock:
            doc = self._docs.get(f.rel)
            created = doc is None
            if doc is None:
                version = self._versions.get(f.rel, 0) + 1
                doc = Document(f, self.paths.uri(f), text, version, language_id)
                self._docs[f.rel] = doc
                await self._send_open(doc)
            doc.holders[holder] = doc.holders.get(holder, 0) + 1
            return doc, created

    async def change(
        self, f: ProjectFile, changes: list[LspJson], version: int | None = None
    ) -> Document:
        """Apply LSP content changes; `version`, if given, must be newer than ours."""
        async with self._lock:
            doc = self._require_open(f)
            if version is not None and version <= doc.version:
                raise Conflict(
                    f"document version {version} is stale: {f.res} is at version "
                    f"{doc.version}; fetch the current text and resend",
                    details={"current_version": doc.version, "uri": doc.uri},
                )
            doc.text = apply_changes(doc.text, changes)
            doc.version = max(doc.version + 1, version or 0)
            await self._send_change(doc)
            return doc

    async def replace(self, f: ProjectFile, text: str) -> Document | None:
        """Put new full text into an open document (after a write to disk)."""
        async with self._lock:
            doc = self._docs.get(f.rel)
            if doc is None:
                return None
            doc.text = text
            doc.version += 1
            await self._send_change(doc)
            return doc

    async def close(self, f: ProjectFile, holder: str) -> Document:
        """Release `holder`'s hold; Godot's copy goes when the last holder leaves."""
        async with self._lock:
            doc = self._require_open(f)
            count = doc.holders.get(holder, 0)
            if count == 0:
                raise Conflict(
                    f"{f.res} is not open for {holder!r}; it is held by "
                    f"{sorted(doc.holders) or 'nobody'}",
                    code="not_open_by_agent",
                    details={"uri": doc.uri, "open_by": sorted(doc.holders)},
                )
            if count == 1:
                del doc.holders[holder]
            else:
                doc.holders[holder] = count - 1
            if not doc.holders:
                del self._docs[f.rel]
                self._versions[f.rel] = doc.version
                self._pending.pop(f.rel, None)
                await self._tell("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
            return doc

    async def save(self, f: ProjectFile) -> str:
        """didSave for `f` (Godot reloads the script from disk on it). Returns its URI."""
        async with self._lock:
            uri = self.paths.uri(f)
            await self._tell("textDocument/didSave", {"textDocument": {"uri": uri}})
            return uri

    async def reopen_all(self) -> None:
        """A new connection to Godot knows no documents: open every one again."""
        async with self._lock:
            self._pending.clear()
            for doc in self._docs.values():
                await self._send_open(doc)

    async def _tell(self, method: str, params: dict[str, Any]) -> None:
        self.generation += 1
        await self._sink(method, params)

    def _require_open(self, f: ProjectFile) -> Document:
        doc = self._docs.get(f.rel)
        if doc is None:
            raise Conflict(
                f"{f.res} is not open; send didOpen first",
                code="not_open",
                details={"uri": self.paths.uri(f)},
            )
        return doc

    async def _send_open(self, doc: Document) -> None:
        self._pending.setdefault(doc.file.rel, deque()).append(doc.version)
        item = {
            "uri": doc.uri,
            "languageId": doc.language_id,
            "version": doc.version,
            "text": doc.text,
        }
        await self._tell("textDocument/didOpen", {"textDocument": item})

    async def _send_change(self, doc: Document) -> None:
        self._pending.setdefault(doc.file.rel, deque()).append(doc.version)
        params = {
            "textDocument": {"uri": doc.uri, "version": doc.version},
            "contentChanges": [{"text": doc.text}],
        }
        await self._tell("textDocument/didChange", params)

    # diagnostics

    def on_diagnostics(self, params: dict[str, Any]) -> None:
        """Godot's publishDiagnostics; attributed to the oldest version awaiting them."""
        f = self.paths.try_resolve(params.get("uri"))
        items = params.get("diagnostics")
        if f is None or not isinstance(items, list):
            return
        pending = self._pending.get(f.rel)
        doc = self._docs.get(f.rel)
        if pending:
            version: int | None = pending.popleft()
        else:
            version = doc.version if doc else self._versions.get(f.rel)
        self._diagnostics[f.rel] = Diagnostics(version, items)
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()

    def fresh(self, f: ProjectFile, version: int) -> Diagnostics | None:
        entry = self._diagnostics.get(f.rel)
        if entry is not None and entry.version is not None and entry.version >= version:
            return entry
        return None

    async def wait_diagnostics(self, f: ProjectFile, version: int, timeout: float) -> bool:
        """Until diagnostics for `version` (or newer) arrived; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while self.fresh(f, version) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return False
        return True

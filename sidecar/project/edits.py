"""`/edit/applyChanges` and `/edit/read`: safe paths, content hashes, atomic writes.

Agents write project files through here rather than by themselves so that two agents
never silently overwrite each other (`expected_sha256` → 409 when stale) and a half
written file is never seen by Godot's filesystem scanner (temp file + rename). Paths
are confined to the project after resolving symlinks, and Godot's own `.godot/` cache
is off limits: writing there corrupts the editor's import state.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from sidecar.errors import RequestError
from sidecar.project.documents import Conflict, apply_text_edits, line_starts
from sidecar.project.paths import Forbidden, ProjectFile, ProjectPaths

# Directories inside the project an agent must not write to.
_INTERNAL_DIRS = (".godot", ".import")
_DEFAULT_MODE = 0o644


@dataclass(frozen=True)
class Target:
    """A validated place to write: the project file and the real path on disk."""

    file: ProjectFile
    real_path: str


@dataclass(frozen=True)
class EditRequest:
    """A write: the whole new `text`, or LSP TextEdits against the current content."""

    uri: str
    text: str | None
    edits: list[Any] | None
    expected_sha256: str | None  # lowercase hex; None: write whatever is there


@dataclass(frozen=True)
class EditResult:
    file: ProjectFile
    text: str
    sha256: str
    previous_sha256: str | None
    created: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.file.res,
            "sha256": self.sha256,
            "previous_sha256": self.previous_sha256,
            "created": self.created,
            "bytes": len(self.text.encode("utf-8")),
        }


@dataclass(frozen=True)
class ReadRequest:
    """`/edit/read`: a file, optionally lines `start_line`..`end_line` (1-based, inclusive)."""

    uri: str
    start_line: int | None
    end_line: int | None


@dataclass(frozen=True)
class ReadResult:
    file: ProjectFile
    text: str  # the lines asked for, with their line ends, as on disk
    sha256: str  # of the whole file: what applyChanges' expected_sha256 compares
    line_count: int
    start_line: int
    end_line: int

    def as_json(self) -> dict[str, Any]:
        return {
            "uri": self.file.res,
            "text": self.text,
            "sha256": self.sha256,
            "line_count": self.line_count,
            "start_line": self.start_line,
            "end_line": self.end_line,
        }


def read_file(paths: ProjectPaths, req: ReadRequest) -> ReadResult:
    """The file (or its lines) and the hash of all of it, under the edits' path rules."""
    target = safe_target(paths, req.uri)
    data = read_current(target.real_path)
    if data is None:
        raise RequestError(
            f"no file {target.file.res} in the project",
            code="not_found",
            details={"field": "uri", "path": target.file.res},
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(f"{target.file.res} is not UTF-8 text", code="not_text") from None
    starts = line_starts(text)
    # A final line end does not begin another line (an editor's "lines" of the file).
    count = len(starts) - 1 if starts[-1] == len(text) else len(starts)
    first = req.start_line or 1
    # An end past the last line reads to the end, as `sed -n 10,999p` would; a start past
    # the end or an end before the start selects nothing (the answer's line_count says why).
    last = count if req.end_line is None else min(req.end_line, count)
    if first > count or last < first:
        return ReadResult(target.file, "", sha256_hex(data), count, first, first - 1)
    begin = starts[first - 1]
    stop = starts[last] if last < len(starts) else len(text)
    return ReadResult(target.file, text[begin:stop], sha256_hex(data), count, first, last)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_target(paths: ProjectPaths, raw: str) -> Target:
    """Where `raw` may be written, or 403 when it leaves the project or is internal."""
    f = paths.resolve(raw)  # lexical check: `..`, outside absolute paths
    _refuse_internal(f.rel, raw)
    real = paths.real_path(f)  # symlinks anywhere on the way may lead out of the project
    _refuse_internal(os.path.relpath(real, os.path.realpath(paths.root)).replace(os.sep, "/"), raw)
    if os.path.isdir(real):
        raise RequestError(
            f"{raw!r} is a directory, not a file", code="invalid_field", details={"field": "uri"}
        )
    return Target(f, real)


def _refuse_internal(rel: str, raw: str) -> None:
    first = rel.split("/", 1)[0]
    if first in _INTERNAL_DIRS:
        raise Forbidden(
            f"{raw!r} is inside Godot's internal {first}/ directory", details={"path": raw}
        )


def read_current(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def new_content(req: EditRequest, current: bytes | None) -> str:
    """The full text after the request: its `text`, or its edits applied to `current`."""
    if req.text is not None:
        return req.text
    if current is None:
        base = ""  # edits against a new file: inserts at 0:0 build it up
    else:
        try:
            base = current.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(
                "the file is not UTF-8 text; send 'text' to replace it whole",
                code="not_text",
            ) from None
    return apply_text_edits(base, req.edits or [])


def atomic_write(path: str, data: bytes) -> None:
    """Replace `path` with `data` in one rename, so readers see old or new, never half."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = _DEFAULT_MODE
    # A dot name keeps Godot's filesystem scanner from importing the temp file.
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def apply_edit(paths: ProjectPaths, req: EditRequest) -> EditResult:
    """Check the hash, compute the text, write it: the whole edit, blocking."""
    target = safe_target(paths, req.uri)
    current = read_current(target.real_path)
    previous = sha256_hex(current) if current is not None else None
    if req.expected_sha256 is not None and req.expected_sha256 != previous:
        raise Conflict(
            f"{target.file.res} changed since you read it: expected sha256 "
            f"{req.expected_sha256}, it is {previous}; re-read and retry",
            code="stale_hash",
            details={"current_sha256": previous, "path": target.file.res},
        )
    text = new_content(req, current)
    data = text.encode("utf-8")
    atomic_write(target.real_path, data)
    return EditResult(target.file, text, sha256_hex(data), previous, current is None)


class Editor:
    """Runs edits off the event loop, one at a time per file so hash checks hold."""

    def __init__(self, paths: ProjectPaths) -> None:
        self.paths = paths
        self._locks: dict[str, asyncio.Lock] = {}

    async def read(self, req: ReadRequest) -> ReadResult:
        # No lock: writes replace the file in one rename, so a read sees old or new.
        return await asyncio.to_thread(read_file, self.paths, req)

    async def apply(self, req: EditRequest) -> EditResult:
        target = safe_target(self.paths, req.uri)
        lock = self._locks.setdefault(target.real_path, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(apply_edit, self.paths, req)

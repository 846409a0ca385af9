"""The audit trail: who changed or drove what, when, with what arguments and outcome.

Every request of an operation whose effect is "change" or "control" (web/operation.py)
becomes one record, refused ones too, and so does every change of the control lease. The
records are numbered; agents read them with a cursor and filters (agent, kind).

They are appended, one JSON line each, to `audit.jsonl` in the project's
`.godot/godot_debug_connection/` (Godot's own cache folder, which a Godot project's
.gitignore leaves out of version control), so they outlive the sidecar. The file is
bounded: past `max_bytes` it becomes `audit.1.jsonl` (the one before goes) and a new one
starts, so at most twice `max_bytes` are kept on disk. A sidecar reads the newest
`capacity` records back when it starts, and numbers on from there.

A record is one short line written with one `write` to a file opened for appending: no
buffer to flush, no lock, nothing that waits (tools/bench.py measures it). Big arguments
(a whole file's text) are cut to their head, length and sha256.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DIRECTORY = (".godot", "godot_debug_connection")
FILE = "audit.jsonl"
OLDER = "audit.1.jsonl"
MAX_BYTES = 1024 * 1024
CAPACITY = 5000  # records kept in memory, for reading
MAX_WAIT = 30.0  # longest long-poll, in seconds

# How much of an argument is kept: text over MAX_TEXT characters is cut to its head, its
# length and its sha256 (an edit's whole file text); longer lists, deeper nesting, likewise.
MAX_TEXT = 200
MAX_ITEMS = 20
MAX_DEPTH = 4
MAX_RESULT_FIELDS = 12
# The longest line a record may take (a request's body may be 1 MiB of small fields).
MAX_LINE = 16 * 1024

Record = dict[str, Any]


def audit_path(project: str | os.PathLike[str]) -> Path:
    """Where a project's audit trail is kept."""
    return Path(project).joinpath(*DIRECTORY, FILE)


def bounded(value: Any, depth: int = 0) -> Any:
    """`value` (JSON) small enough for one audit line: long text cut to its head, length
    and sha256, long lists and deep nesting cut and said so."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{value[:MAX_TEXT]}… [{len(value)} characters, sha256 {digest}]"
    if depth >= MAX_DEPTH and isinstance(value, (dict, list)):
        return f"… [{type(value).__name__} nested too deep]"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k)[:MAX_TEXT]: bounded(v, depth + 1) for k, v in items[: MAX_ITEMS * 2]}
        if len(items) > MAX_ITEMS * 2:
            out["…"] = f"{len(items) - MAX_ITEMS * 2} more fields"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [bounded(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out_list.append(f"… {len(value) - MAX_ITEMS} more items")
        return out_list
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return bounded(str(value), depth)


def result_summary(answer: Any) -> Record | None:
    """The plain fields at the top of an answer (an edit's `sha256` and `previous_sha256`,
    a document's `version`), without the bulk (lists, objects)."""
    if not isinstance(answer, dict):
        return None
    plain = {
        k: bounded(v)
        for k, v in answer.items()
        if v is None or isinstance(v, (str, bool, int, float))
    }
    return dict(list(plain.items())[:MAX_RESULT_FIELDS]) or None


class AuditLog:
    """Numbered audit records: the newest in memory, all of them (bounded) in a file."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_bytes: int = MAX_BYTES,
        capacity: int = CAPACITY,
        clock: Any = time.time,
    ) -> None:
        self.path = path  # None: kept in memory only
        self.max_bytes = max_bytes
        self._clock = clock
        self._records: collections.deque[Record] = collections.deque(maxlen=capacity)
        self._latest = 0
        self._loaded = False
        self._fd: int | None = None
        self._size = 0
        self._changed: asyncio.Event | None = None
        self.write_errors = 0

    # -- writing --------------------------------------------------------------------------

    def record(
        self,
        *,
        agent: str,
        operation: str,
        effect: str,
        args: Any = None,
        outcome: Record | None = None,
        result: Record | None = None,
        lease: Record | None = None,
        ms: float | None = None,
    ) -> Record:
        """Add one record (and its line to the file)."""
        self.load()
        self._latest += 1
        rec: Record = {
            "seq": self._latest,
            "time": round(self._clock(), 3),
            "agent": agent,
            "operation": operation,
            "effect": effect,
            "args": bounded(args) if args is not None else {},
            "outcome": outcome or {"ok": True},
        }
        if result:
            rec["result"] = result
        if lease is not None:
            rec["lease"] = lease
        if ms is not None:
            rec["ms"] = round(ms, 1)
        line = _line(rec)
        if len(line) > MAX_LINE:  # many small fields: only how many bytes they took
            rec["args"] = f"… [arguments of {len(line)} bytes in a record, cut]"
            line = _line(rec)
        self._records.append(rec)
        self._write(line)
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return rec

    def _write(self, line: bytes) -> None:
        if self.path is None:
            return
        try:
            if self._fd is not None and self._size + len(line) > self.max_bytes:
                self._rotate()
            if self._fd is None:
                self._open()
            assert self._fd is not None
            os.write(self._fd, line)
            self._size += len(line)
        except OSError as exc:
            # The trail in memory goes on; the file is tried again with the next record.
            self.write_errors += 1
            self.close()
            log.warning("audit trail: could not write %s: %s", self.path, exc)

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        assert self.path is not None
        self.close()
        os.replace(self.path, self.path.with_name(OLDER))

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # -- reading ----------------------------------------------------------------------------

    def load(self) -> None:
        """The newest records of the files a sidecar before this one wrote."""
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        for name in (OLDER, FILE):
            for rec in _read_lines(self.path.with_name(name)):
                self._records.append(rec)
                self._latest = max(self._latest, int(rec["seq"]))
        # Opened now, not at the first record: a trail that cannot be written is said in
        # the log at start, and the sidecar's open files stay the same while it serves.
        try:
            self._open()
        except OSError as exc:
            log.warning("audit trail: could not open %s: %s", self.path, exc)

    @property
    def latest(self) -> int:
        self.load()
        return self._latest

    def read(
        self,
        since: int = 0,
        *,
        agent: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> Record:
        """Records numbered above `since` that match the filters, at most `limit`.

        `kind` is an operation name (`continue`), an effect (`change`, `control`) or
        `lease` (every change of the control lease). `next` is the cursor for the next
        read: past the last record returned, or past every record looked at.
        """
        self.load()
        since = min(max(since, 0), self._latest)
        first = self._records[0]["seq"] if self._records else self._latest + 1
        out: list[Record] = []
        cursor = since
        for rec in self._records:
            if rec["seq"] <= since:
                continue
            if len(out) >= limit:
                break
            cursor = rec["seq"]
            if matches(rec, agent, kind):
                out.append(rec)
        if len(out) < limit:
            cursor = self._latest
        return {
            "records": out,
            "next": cursor,
            "latest": self._latest,
            "dropped": max(0, first - 1 - since),
        }

    async def wait(self, since: int, timeout: float) -> None:
        """Return once there is a record after `since`, or after `timeout` seconds."""
        if self.latest > since or timeout <= 0:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), min(timeout, MAX_WAIT))

    def newest(self, count: int) -> list[Record]:
        """The latest `count` records, newest first."""
        self.load()
        return list(reversed(list(self._records)[-count:])) if count > 0 else []


def _line(rec: Record) -> bytes:
    return (json.dumps(rec, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def matches(rec: Record, agent: str | None, kind: str | None) -> bool:
    if agent is not None and rec.get("agent") != agent:
        return False
    if kind is None:
        return True
    if kind == "lease":
        return "lease" in rec
    return kind in (rec.get("operation"), rec.get("effect"))


def _read_lines(path: Path) -> Iterable[Record]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("audit trail: could not read %s: %s", path, exc)
        return
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(rec, dict) and isinstance(rec.get("seq"), int):
            yield rec

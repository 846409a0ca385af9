"""The audit trail (sidecar/control/audit.py): bounded records, a cursor and filters, a
bounded file that outlives the sidecar; and against a real editor, an edit's hashes and
the trail read back after the sidecar was killed and restarted by the addon."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from harness import REPO, Editor, call_json, ok_json

from sidecar.control.audit import (
    FILE,
    MAX_LINE,
    OLDER,
    AuditLog,
    audit_path,
    bounded,
    result_summary,
)

AGENT = "auditor"


def _record(log: AuditLog, agent: str, operation: str, effect: str = "control") -> None:
    log.record(agent=agent, operation=operation, effect=effect, args={"n": operation})


def test_issue_14_records_are_numbered_and_filtered(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / FILE)
    _record(log, "alice", "continue")
    _record(log, "bob", "set_breakpoints", "change")
    _record(log, "alice", "launch")
    log.record(agent="bob", operation="take_lease", effect="change", lease={"action": "taken"})

    everything = log.read(0)
    assert [r["seq"] for r in everything["records"]] == [1, 2, 3, 4]
    assert (everything["next"], everything["latest"], everything["dropped"]) == (4, 4, 0)
    assert [r["seq"] for r in log.read(0, agent="alice")["records"]] == [1, 3]
    assert [r["seq"] for r in log.read(0, kind="control")["records"]] == [1, 3]
    assert [r["seq"] for r in log.read(0, kind="change")["records"]] == [2, 4]
    assert [r["seq"] for r in log.read(0, kind="launch")["records"]] == [3]
    assert [r["seq"] for r in log.read(0, kind="lease")["records"]] == [4]
    # The cursor moves past what was looked at, matching or not.
    page = log.read(0, agent="alice", limit=1)
    assert [r["seq"] for r in page["records"]] == [1] and page["next"] == 1
    page = log.read(page["next"], agent="alice", limit=1)
    assert [r["seq"] for r in page["records"]] == [3] and page["next"] == 3
    assert log.read(3, agent="alice")["next"] == 4


def test_issue_14_big_arguments_are_cut_to_head_length_and_hash() -> None:
    text = "extends Node\n" + "x" * 100_000
    cut = bounded({"text": text, "lines": list(range(100)), "deep": {"a": {"b": {"c": {"d": 1}}}}})
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert cut["text"].startswith("extends Node\nxxx")
    assert cut["text"].endswith(f"[{len(text)} characters, sha256 {digest}]")
    assert len(cut["text"]) < 400
    assert cut["lines"][:20] == list(range(20)) and cut["lines"][20] == "… 80 more items"
    assert cut["deep"]["a"]["b"]["c"] == "… [dict nested too deep]"
    # An answer's plain fields (an edit's hashes), not its bulk.
    answer = {"sha256": "b" * 64, "previous_sha256": "a" * 64, "diagnostics": [1, 2], "ok": True}
    assert result_summary(answer) == {"sha256": "b" * 64, "previous_sha256": "a" * 64, "ok": True}


def test_issue_14_a_record_is_one_bounded_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / FILE)
    many = {f"field{i}": {f"k{j}": "v" * 150 for j in range(40)} for i in range(40)}
    rec = log.record(agent="alice", operation="launch", effect="control", args=many)
    assert str(rec["args"]).startswith("… [arguments of ")
    log.record(agent="alice", operation="launch", effect="control", args={"scene": "main"})
    lines = (tmp_path / FILE).read_bytes().splitlines()
    assert len(lines) == 2 and all(len(line) < MAX_LINE for line in lines)


def test_issue_14_the_file_is_bounded_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / ".godot" / "godot_debug_connection" / FILE
    log = AuditLog(path, max_bytes=4000)
    for i in range(100):
        _record(log, "alice", f"op{i}")
    log.close()
    older = path.with_name(OLDER)
    assert path.stat().st_size <= 4000 and older.stat().st_size <= 4000
    assert sorted(p.name for p in path.parent.iterdir()) == [OLDER, FILE]  # two files at most

    again = AuditLog(path, max_bytes=4000)  # a new sidecar
    kept = again.read(0, limit=500)
    seqs = [r["seq"] for r in kept["records"]]
    assert seqs == list(range(seqs[0], 101)) and seqs[0] > 1  # the newest, in order
    assert kept["dropped"] == seqs[0] - 1
    _record(again, "bob", "after")
    assert again.read(100)["records"][0]["seq"] == 101  # numbered on

    with path.open("a") as f:
        f.write('{"seq": 102, "cut short by a cra')  # a crash mid-line
    assert AuditLog(path).latest == 101


async def test_issue_14_wait_returns_at_the_next_record(tmp_path: Path) -> None:
    log = AuditLog(None)
    started = time.monotonic()
    waiting = asyncio.create_task(log.wait(0, 10))
    await asyncio.sleep(0.1)
    _record(log, "alice", "continue")
    await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 5


def test_issue_14_a_record_is_cheap(tmp_path: Path) -> None:
    """Writing stays far from anything an agent would notice (tools/bench.py has the figure)."""
    log = AuditLog(tmp_path / FILE)
    args = {"source": {"path": "res://demo/main.gd"}, "breakpoints": [{"line": 12}]}
    started = time.perf_counter()
    for _ in range(2000):
        log.record(agent="alice", operation="set_breakpoints", effect="change", args=args)
    per_record = (time.perf_counter() - started) / 2000
    assert per_record < 0.005, f"{per_record * 1e6:.0f} µs per record"


# --- a real editor ------------------------------------------------------------------------


def test_issue_14_an_edit_is_audited_with_its_hashes(editor: Editor) -> None:
    path = "res://demo/zz_audit.gd"
    first = "extends Node\n"
    wrote = ok_json(editor, "POST", "/edit/applyChanges", {"uri": path, "text": first}, AGENT)
    second = "extends Node\n# changed by the auditor\n"
    body = {"uri": path, "text": second, "expected_sha256": wrote["sha256"]}
    ok_json(editor, "POST", "/edit/applyChanges", body, AGENT)
    stale = call_json(editor, "POST", "/edit/applyChanges", body, AGENT)
    assert stale[0] == 409
    ok_json(editor, "GET", "/edit/read?uri=" + path, agent=AGENT)  # reads are not audited

    records = ok_json(editor, "GET", f"/audit?agent={AGENT}&kind=apply_changes", agent=AGENT)
    created, changed, refused = records["records"][-3:]
    sha = [hashlib.sha256(t.encode()).hexdigest() for t in (first, second)]
    assert created["result"]["sha256"] == sha[0]
    assert changed["args"]["expected_sha256"] == sha[0]
    assert (changed["result"]["previous_sha256"], changed["result"]["sha256"]) == tuple(sha)
    assert refused["outcome"] == {"ok": False, "status": 409, "code": "stale_hash"}
    assert all(r["effect"] == "change" for r in (created, changed, refused))
    every = ok_json(editor, "GET", f"/audit?agent={AGENT}&limit=500", agent=AGENT)["records"]
    assert "read_file" not in {r["operation"] for r in every}


def test_issue_14_the_trail_survives_a_sidecar_restart(editor: Editor) -> None:
    status = editor.wait_until_ready()
    before_pid = status["sidecar"]["pid"]
    mark = f"restart-{time.time()}"
    body = {"source": {"path": "res://demo/main.gd"}, "breakpoints": [], "zz_mark": mark}
    ok_json(editor, "POST", "/debug/setBreakpoints", body, AGENT)
    page = ok_json(editor, "GET", f"/audit?agent={AGENT}&kind=set_breakpoints", agent=AGENT)
    written = page["records"][-1]
    assert written["args"]["zz_mark"] == mark
    file = Path(page["file"])
    assert file == audit_path(editor.project) and file.is_file()
    assert mark in file.read_text(encoding="utf-8")

    os.kill(before_pid, signal.SIGKILL)  # no goodbye: what was written must already be there
    after_pid = _new_sidecar(editor, before_pid)
    assert after_pid != before_pid

    again = ok_json(editor, "GET", f"/audit?since={written['seq'] - 1}&agent={AGENT}", agent=AGENT)
    assert again["records"][0] == written
    editor.wait_until_ready()
    ok_json(editor, "POST", "/debug/setBreakpoints", body, AGENT)  # numbered on
    latest = ok_json(editor, "GET", f"/audit?since={written['seq']}&agent={AGENT}", agent=AGENT)
    assert latest["records"][-1]["seq"] > written["seq"]


def test_issue_14_the_trail_stays_out_of_version_control() -> None:
    """The trail is under `.godot/`, which this repository's (and Godot's own new-project)
    .gitignore leaves out: git never sees it."""
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".godot/" in ignored
    relative = audit_path(REPO).relative_to(REPO)
    assert relative.parts[0] == ".godot"
    check = subprocess.run(
        ["git", "check-ignore", "-q", str(relative)], cwd=REPO, check=False, capture_output=True
    )
    assert check.returncode == 0, check.stderr


def _new_sidecar(editor: Editor, old_pid: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, answer = call_json(editor, "GET", "/status", None, AGENT, timeout=5)
        except (OSError, ValueError):  # the addon between two sidecars
            status, answer = 0, None
        if status == 200 and answer["sidecar"]["pid"] != old_pid:
            return int(answer["sidecar"]["pid"])
        time.sleep(0.2)
    raise AssertionError("the addon never restarted the sidecar")

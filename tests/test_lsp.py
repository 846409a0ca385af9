"""The LSP session and /lsp/*, /edit/* endpoints against a real headless Godot editor.

One editor serves the module: a copy of the demo project without the addon (so only
Godot's own language server is involved), and the sidecar's LSP routes served
in-process on a free port. The last test compares hover latency through the sidecar
with the same request sent straight to Godot's LSP socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from harness import call_json, free_port, ok_json
from pydantic import TypeAdapter

from sidecar.agents import AgentRegistry
from sidecar.api.lsp import (
    APPLY_CHANGES,
    COMPLETION,
    DEFINITION,
    DIAGNOSTICS,
    DID_CLOSE,
    DID_OPEN,
    DOCUMENT_SYMBOL,
    HOVER,
    READ_FILE,
    REFERENCES,
    SIGNATURE_HELP,
    register,
)
from sidecar.config import Config
from sidecar.godot.lsp.session import LspSession
from sidecar.godot.service import ServiceStatus
from sidecar.godot.wire import MessageStream
from sidecar.web.http import RouteTable, make_app

REPO = Path(__file__).resolve().parent.parent
MAIN = "res://demo/main.gd"
pytestmark = pytest.mark.timeout(120)


# --- fixtures: one editor, one in-process sidecar --------------------------------------------


def _project_copy(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    text = (REPO / "project.godot").read_text()
    # No addon: only Godot's own language server is under test here.
    text = re.sub(r"\[editor_plugins\][^\[]*", "", text)
    (dst / "project.godot").write_text(text)
    shutil.copytree(REPO / "demo", dst / "demo")
    return dst


@dataclass
class Godot:
    project: Path
    lsp_port: int
    dap_port: int
    proc: subprocess.Popen[bytes]


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"godot exited with {proc.returncode} before serving LSP")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"godot's LSP never listened on {port}")


def _kill_tree(pid: int) -> None:
    pids = [pid]
    with contextlib.suppress(psutil.Error):
        pids += [p.pid for p in psutil.Process(pid).children(recursive=True)]
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


@pytest.fixture(scope="module")
def godot(tmp_path_factory: pytest.TempPathFactory, godot_bin: str) -> Iterator[Godot]:
    binary = godot_bin  # asking for godot_bin marks the tests `godot` (conftest.py)
    project = _project_copy(tmp_path_factory.mktemp("lsp") / "project")
    lsp_port, dap_port = free_port(), free_port()
    log = open(project.parent / "godot.log", "wb")
    args = [binary, "--headless", "--editor", "--path", str(project)]
    args += ["--lsp-port", str(lsp_port), "--dap-port", str(dap_port)]
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_port(lsp_port, proc, 60)
        yield Godot(project, lsp_port, dap_port, proc)
    finally:
        _kill_tree(proc.pid)
        proc.wait(10)
        log.close()


class Sidecar:
    """The LSP routes served on a free port from a loop on a thread of its own."""

    def __init__(self, godot: Godot, timeout: float = 10.0) -> None:
        self.port = free_port()
        self.config = Config(
            project=str(godot.project),
            link_port=None,
            link_token="",
            serve_port=self.port,
            lsp_port=godot.lsp_port,
            dap_port=godot.dap_port,
            request_timeout=timeout,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.session: LspSession | None = None
        self.runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sidecar:
        self.thread.start()
        self.call(self._start(), 90)
        return self

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        status = ServiceStatus("language_server", self.config.lsp_port)
        self.session = LspSession(self.config, status)
        routes = RouteTable()
        register(routes, self.session)
        self.runner = web.AppRunner(make_app(routes, AgentRegistry()), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        assert await self.session.connect(wait=80), status.as_json()

    async def _stop(self) -> None:
        if self.session is not None:
            await self.session.stop()
        if self.runner is not None:
            await self.runner.cleanup()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self._stop(), 20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def sidecar(godot: Godot) -> Iterator[Sidecar]:
    side = Sidecar(godot)
    try:
        yield side.start()
    finally:
        side.stop()


def call(
    side: Sidecar, path: str, body: dict[str, Any] | None = None, agent: str = "tester"
) -> tuple[int, Any]:
    """POST (or GET with `body=None` and a query in `path`); (status, decoded body)."""
    return _request(side.base, path, body, agent)


def _request(base: str, path: str, body: dict[str, Any] | None, agent: str) -> tuple[int, Any]:
    return call_json(base, "POST" if body is not None else "GET", path, body, agent)


def ok(side: Sidecar, path: str, body: dict[str, Any] | None = None, agent: str = "t") -> Any:
    return ok_json(side.base, "POST" if body is not None else "GET", path, body, agent)


def at(uri: str, line: int, character: int, **extra: Any) -> dict[str, Any]:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        **extra,
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- language features on demo/main.gd ---------------------------------------------------------


def _position_in(text: str, needle: str, delta: int = 0) -> tuple[int, int]:
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def where(godot: Godot, needle: str, delta: int = 0) -> tuple[int, int]:
    """The (line, character) of `needle` + `delta` in demo/main.gd, which keeps changing."""
    return _position_in((godot.project / "demo" / "main.gd").read_text(), needle, delta)


def _name(item: dict[str, Any]) -> str:
    return item["label"].split("(")[0]


def test_completion_ranks_the_member_being_typed_first(sidecar: Sidecar, godot: Godot) -> None:
    line, char = where(godot, "counter += 1", 3)  # the cursor after "cou"
    result = ok(sidecar, "/lsp/completion", at(MAIN, line, char, limit=1))
    assert result["prefix"] == "cou"
    assert result["items"][0]["label"] == "counter"
    assert len(result["items"]) == 1
    assert result["truncated"] is True and result["total"] > 1
    assert all("data" not in item for item in result["items"])


def test_issue_11_completion_default_prefix_filters_on_the_typed_word(
    sidecar: Sidecar, godot: Godot
) -> None:
    """The docs say the default prefix is the typed word: it filters, as an editor does."""
    line, char = where(godot, 'print("demo: total', 3)  # the cursor after "pri"
    typed = ok(sidecar, "/lsp/completion", at(MAIN, line, char, limit=0))
    names = [_name(i) for i in typed["items"]]
    assert typed["prefix"] == "pri"
    assert "print" in names and "print_rich" in names
    assert all(n.lower().startswith("pri") for n in names), names
    assert typed["total"] == len(names) < 100  # not Godot's 2000+ names in scope
    # "prefix": "" keeps every item; an explicit prefix replaces the typed word.
    everything = ok(sidecar, "/lsp/completion", at(MAIN, line, char, prefix="", limit=0))
    assert everything["total"] == len(everything["items"]) > 1000
    explicit = ok(sidecar, "/lsp/completion", at(MAIN, line, char, prefix="ADD_NUM", limit=0))
    assert [_name(i) for i in explicit["items"]] == ["add_numbers"]
    assert explicit["prefix"] == "ADD_NUM"


def test_completion_prefix_and_limit(sidecar: Sidecar, godot: Godot) -> None:
    line, char = where(godot, "counter += 1", 3)
    result = ok(sidecar, "/lsp/completion", at(MAIN, line, char, prefix="add_", limit=0))
    names = [_name(i) for i in result["items"]]
    assert "add_numbers" in names
    assert all(n.lower().startswith("add_") for n in names)
    assert result["total"] == len(names) and result["truncated"] is False
    line, char = where(godot, "counter += 1")  # nothing typed: no filter
    everything = ok(sidecar, "/lsp/completion", at(MAIN, line, char, limit=0))
    assert everything["prefix"] == ""
    assert everything["total"] == len(everything["items"]) > 1000
    default = ok(sidecar, "/lsp/completion", at(MAIN, line, char))
    assert len(default["items"]) == 100


def test_hover_on_a_variable_gives_its_declaration(sidecar: Sidecar, godot: Godot) -> None:
    result = ok(sidecar, "/lsp/hover", at("demo/main.gd", *where(godot, "counter += 1", 1)))
    assert "var counter: int = 0" in result["contents"]["value"]
    result = ok(sidecar, "/lsp/hover", at(MAIN, *where(godot, "return sum", 8)))
    assert "var sum: int" in result["contents"]["value"]


def test_references_of_a_member_list_all_its_uses(sidecar: Sidecar, godot: Godot) -> None:
    path = godot.project / "demo" / "main.gd"
    uses = [n for n, text in enumerate(path.read_text().splitlines()) if "counter" in text]
    params = at(path.as_uri(), *where(godot, "var counter", 5))
    params["context"] = {"includeDeclaration": True}
    result = ok(sidecar, "/lsp/references", params)
    assert len(uses) >= 4
    assert sorted({r["range"]["start"]["line"] for r in result}) == uses


def test_document_symbol_lists_the_functions(sidecar: Sidecar) -> None:
    result = ok(sidecar, "/lsp/documentSymbol", {"textDocument": {"uri": MAIN}})
    children = {s["name"] for s in result[0]["children"]}
    assert {"_ready", "_process", "add_numbers", "counter"} <= children


def test_definition_and_signature_help(sidecar: Sidecar, godot: Godot) -> None:
    declared, _ = where(godot, "func add_numbers")
    result = ok(sidecar, "/lsp/definition", at(MAIN, *where(godot, "add_numbers(2, 3)", 2)))
    assert result and result[0]["range"]["start"]["line"] == declared
    result = ok(sidecar, "/lsp/signatureHelp", at(MAIN, *where(godot, "add_numbers(2, 3)", 14)))
    assert "add_numbers" in result["signatures"][0]["label"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"position": {"line": 0, "character": 0}}, "textDocument"),
        ({"textDocument": {}, "position": {"line": 0, "character": 0}}, "textDocument.uri"),
        ({"textDocument": {"uri": MAIN}}, "position"),
        (
            {"textDocument": {"uri": MAIN}, "position": {"line": "1", "character": 0}},
            "position.line",
        ),
    ],
)
def test_missing_or_wrong_fields_are_400_naming_them(
    sidecar: Sidecar, body: dict[str, Any], field: str
) -> None:
    status, answer = call(sidecar, "/lsp/hover", body)
    assert status == 400
    assert answer["error"]["field"] == field
    assert field in answer["error"]["message"]


NOT_SCRIPTS = ("res://demo/main.tscn", "demo/main.gd.uid", "res://project.godot")
SCRIPT_ONLY = (
    "/lsp/hover",
    "/lsp/definition",
    "/lsp/declaration",
    "/lsp/references",
    "/lsp/signatureHelp",
    "/lsp/completion",
    "/lsp/documentSymbol",
    "/lsp/didOpen",
    "/lsp/didChange",
    "/lsp/didSave",
    "/lsp/didClose",
    "/lsp/diagnostics",
)


@pytest.mark.parametrize("uri", NOT_SCRIPTS)
def test_issue_11_files_that_are_not_scripts_are_400_on_every_lsp_endpoint(
    sidecar: Sidecar, uri: str
) -> None:
    """Godot parses anything as GDScript: main.tscn gave dozens of false errors."""
    status, answer = call(sidecar, f"/lsp/diagnostics?uri={uri}")
    assert status == 400, answer
    # issue 12: the condition's own code (was invalid_field)
    assert answer["error"]["code"] == "not_a_script" and answer["error"]["field"] == "uri"
    assert ".gd" in answer["error"]["message"] and "/edit/read" in answer["error"]["message"]
    for path in SCRIPT_ONLY:
        # /lsp/diagnostics takes `uri` (issue 12: it is its required field)
        body = {**at(uri, 0, 0, contentChanges=[{"text": "x"}]), "uri": uri}
        status, answer = call(sidecar, path, body)
        assert status == 400, (path, answer)
        assert answer["error"]["code"] == "not_a_script", (path, answer)
        field = "uri" if path == "/lsp/diagnostics" else "textDocument.uri"
        assert answer["error"]["field"] == field, (path, answer)
    assert ok(sidecar, "/lsp/diagnostics?uri=res://demo/main.gd")["diagnostics"] == []


def test_issue_11_apply_changes_writes_any_text_file_without_the_lsp(
    sidecar: Sidecar, godot: Godot
) -> None:
    """Edits are not script-only; a scene is written but not shown to the language server."""
    scene = godot.project / "demo" / "extra.tscn"
    text = '[gd_scene format=3]\n\n[node name="Extra" type="Node"]\n'
    answer = ok(sidecar, "/edit/applyChanges", {"uri": "res://demo/extra.tscn", "text": text})
    assert answer["lsp"] == "not_a_script" and answer["diagnostics"] is None
    assert scene.read_text() == text
    read = ok(sidecar, "/edit/read", {"uri": "res://demo/extra.tscn"})
    assert read["text"] == text and read["sha256"] == answer["sha256"]


# --- /edit/read ------------------------------------------------------------------------------


def test_issue_11_read_gives_the_hash_apply_changes_checks(sidecar: Sidecar, godot: Godot) -> None:
    uri = "res://demo/read_me.gd"
    path = godot.project / "demo" / "read_me.gd"
    path.write_text(GOOD)
    whole = ok(sidecar, "/edit/read", {"uri": uri})
    assert whole == {
        "uri": uri,
        "text": GOOD,
        "sha256": sha(path),
        "line_count": 6,
        "start_line": 1,
        "end_line": 6,
    }
    # The same through GET, and with any spelling of the path.
    assert ok(sidecar, "/edit/read?uri=demo/read_me.gd") == whole
    assert ok(sidecar, "/edit/read", {"uri": path.as_uri()}) == whole
    new = GOOD.replace("n * 2", "n + n")
    edited = ok(
        sidecar, "/edit/applyChanges", {"uri": uri, "text": new, "expected_sha256": whole["sha256"]}
    )
    assert edited["previous_sha256"] == whole["sha256"] and path.read_text() == new
    status, stale = call(
        sidecar,
        "/edit/applyChanges",
        {"uri": uri, "text": GOOD, "expected_sha256": whole["sha256"]},
    )
    assert status == 409 and stale["error"]["code"] == "stale_hash", stale
    assert ok(sidecar, "/edit/read", {"uri": uri})["sha256"] == edited["sha256"]


def test_issue_11_read_line_ranges(sidecar: Sidecar, godot: Godot) -> None:
    path = godot.project / "demo" / "ranges.gd"
    path.write_bytes(b"one\r\ntwo\nthree\n")
    uri = "res://demo/ranges.gd"
    part = ok(sidecar, "/edit/read", {"uri": uri, "start_line": 2, "end_line": 3})
    assert (part["text"], part["start_line"], part["end_line"]) == ("two\nthree\n", 2, 3)
    assert part["line_count"] == 3 and part["sha256"] == sha(path)
    first = ok(sidecar, f"/edit/read?uri={uri}&end_line=1")
    assert (first["text"], first["start_line"], first["end_line"]) == ("one\r\n", 1, 1)
    # An end past the last line reads to the end.
    tail = ok(sidecar, "/edit/read", {"uri": uri, "start_line": 3, "end_line": 99})
    assert (tail["text"], tail["end_line"]) == ("three\n", 3)
    path.write_text("")
    empty = ok(sidecar, "/edit/read", {"uri": uri})
    assert (empty["text"], empty["line_count"], empty["end_line"]) == ("", 0, 0)


def test_issue_12_read_of_no_lines_is_an_empty_selection(sidecar: Sidecar, godot: Godot) -> None:
    """An end before the start, or a start past the end, was a 400 the document could not
    state (JSON Schema compares no two fields); it selects nothing, and line_count says why."""
    path = godot.project / "demo" / "lines.txt"
    path.write_text("one\ntwo\nthree\n")
    uri = "res://demo/lines.txt"
    backwards = ok(sidecar, "/edit/read", {"uri": uri, "start_line": 3, "end_line": 2})
    assert (backwards["text"], backwards["start_line"], backwards["end_line"]) == ("", 3, 2)
    past = ok(sidecar, "/edit/read", {"uri": uri, "start_line": 999})
    assert (past["text"], past["line_count"], past["start_line"], past["end_line"]) == (
        "",
        3,
        999,
        998,
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "uri"),
        ({"uri": "res://demo/main.gd", "start_line": 0}, 400, "start_line"),
        ({"uri": "res://demo/main.gd", "start_line": "2"}, 400, "start_line"),
        ({"uri": "res://demo/main.gd", "end_line": -1}, 400, "end_line"),
        ({"uri": "res://demo/main.gd", "end_line": True}, 400, "end_line"),
        ({"uri": "res://../outside.gd"}, 403, None),
        ({"uri": "/etc/passwd"}, 403, None),
        ({"uri": "res://.godot/editor/x.cfg"}, 403, None),
        ({"uri": "res://demo/no_such_file.gd"}, 404, None),
        ({"uri": "res://demo"}, 400, None),
    ],
)
def test_issue_11_read_refuses_bad_requests(
    sidecar: Sidecar, body: dict[str, Any], status: int, field: str | None
) -> None:
    got, answer = call(sidecar, "/edit/read", body)
    assert got == status, answer
    assert answer["status"] == "error"
    if field is not None:
        assert answer["error"]["field"] == field and field in answer["error"]["message"]


# --- shared documents ------------------------------------------------------------------------


def test_shared_document_lives_in_godot_until_the_last_agent_closes(sidecar: Sidecar) -> None:
    uri = "res://memory_only/shared.gd"  # never on disk: Godot can only know it via didOpen
    text = "extends Node\nvar shared_value: int = 7\n"
    item = {"textDocument": {"uri": uri, "languageId": "gdscript", "text": text}}
    first = ok(sidecar, "/lsp/didOpen", item, agent="alice")
    second = ok(sidecar, "/lsp/didOpen", item, agent="bob")
    assert first["created"] and not second["created"]
    assert second["open_by"] == {"alice": 1, "bob": 1}
    ok(sidecar, "/lsp/didClose", {"textDocument": {"uri": uri}}, agent="alice")
    hover = ok(sidecar, "/lsp/hover", at(uri, 1, 6))
    assert "shared_value" in hover["contents"]["value"]
    last = ok(sidecar, "/lsp/didClose", {"textDocument": {"uri": uri}}, agent="bob")
    assert last["closed_in_godot"] is True
    # Neither open nor on disk: 404 not_found (issue 12; was 200 with an empty answer).
    status, forgotten = call(sidecar, "/lsp/hover", at(uri, 1, 6))
    assert (status, forgotten["error"]["code"]) == (404, "not_found"), forgotten


def test_incremental_change_reaches_godot_as_full_text(sidecar: Sidecar) -> None:
    uri = "res://memory_only/incremental.gd"
    text = "extends Node\nvar before_name: int = 1\n"
    ok(sidecar, "/lsp/didOpen", {"textDocument": {"uri": uri, "text": text}}, agent="alice")
    try:
        rng = {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 15}}
        change = {"textDocument": {"uri": uri, "version": 2}}
        change["contentChanges"] = [{"range": rng, "text": "after_name"}]
        assert ok(sidecar, "/lsp/didChange", change, agent="bob")["version"] == 2
        hover = ok(sidecar, "/lsp/hover", at(uri, 1, 6))
        assert "var after_name: int = 1" in hover["contents"]["value"]
        status, stale = call(sidecar, "/lsp/didChange", change, agent="carol")
        assert status == 409
        assert stale["error"]["current_version"] == 2
    finally:
        ok(sidecar, "/lsp/didClose", {"textDocument": {"uri": uri}}, agent="alice")


# --- edits and diagnostics ----------------------------------------------------------------------


GOOD = (
    "extends Node\n\n\nfunc twice(n: int) -> int:\n\tvar doubled: int = n * 2\n\treturn doubled\n"
)


def test_syntax_error_via_edit_gives_godots_message_and_line(
    sidecar: Sidecar, godot: Godot
) -> None:
    uri = "res://demo/edited.gd"
    created = ok(sidecar, "/edit/applyChanges", {"uri": uri, "text": GOOD})
    assert created["created"] and created["diagnostics"] == []
    assert created["sha256"] == sha(godot.project / "demo" / "edited.gd")
    broken = GOOD.replace("n * 2", "n *")
    answer = ok(
        sidecar,
        "/edit/applyChanges",
        {"uri": uri, "text": broken, "expected_sha256": created["sha256"]},
    )
    messages = [(d["message"], d["range"]["start"]["line"]) for d in answer["diagnostics"]]
    assert ('Expected expression after "*" operator.', 4) in messages
    polled = ok(sidecar, f"/lsp/diagnostics?uri={uri}&wait=2")
    assert [(d["message"], d["range"]["start"]["line"]) for d in polled["diagnostics"]] == messages
    edit = {
        "range": {"start": {"line": 4, "character": 22}, "end": {"line": 4, "character": 23}},
        "newText": "* 2",
    }
    fixed = ok(sidecar, "/edit/applyChanges", {"uri": uri, "edits": [edit]})
    assert fixed["diagnostics"] == []
    assert (godot.project / "demo" / "edited.gd").read_text() == GOOD
    assert ok(sidecar, f"/lsp/diagnostics?uri={uri}")["diagnostics"] == []


def test_edit_of_an_open_document_updates_it_and_its_diagnostics(sidecar: Sidecar) -> None:
    uri = "res://demo/open_edit.gd"
    ok(sidecar, "/edit/applyChanges", {"uri": uri, "text": GOOD})
    opened = ok(sidecar, "/lsp/didOpen", {"textDocument": {"uri": uri}}, agent="alice")
    try:
        answer = ok(sidecar, "/edit/applyChanges", {"uri": uri, "text": GOOD + "func (\n"})
        assert answer["version"] == opened["version"] + 1
        assert answer["diagnostics"]
        diag = ok(sidecar, f"/lsp/diagnostics?uri={uri}&wait=1")
        assert diag["open"] and diag["version"] == answer["version"] and not diag["stale"]
        assert diag["diagnostics"] == answer["diagnostics"]
    finally:
        ok(sidecar, "/lsp/didClose", {"textDocument": {"uri": uri}}, agent="alice")


def test_two_agents_editing_one_file_stale_hash_is_409(sidecar: Sidecar, godot: Godot) -> None:
    uri = "res://demo/contested.gd"
    base = ok(sidecar, "/edit/applyChanges", {"uri": uri, "text": GOOD})["sha256"]
    alice_text = GOOD.replace("doubled", "by_alice")
    bob_text = GOOD.replace("doubled", "by_bob")
    ok(
        sidecar,
        "/edit/applyChanges",
        {"uri": uri, "text": alice_text, "expected_sha256": base},
        agent="alice",
    )
    status, answer = call(
        sidecar,
        "/edit/applyChanges",
        {"uri": uri, "text": bob_text, "expected_sha256": base},
        agent="bob",
    )
    assert status == 409
    assert answer["error"]["current_sha256"] == sha(godot.project / "demo" / "contested.gd")
    assert (godot.project / "demo" / "contested.gd").read_text() == alice_text


@pytest.mark.parametrize(
    "uri", ["../escaped.gd", "res://../escaped.gd", "/tmp/escaped.gd", "res://.godot/x.gd"]
)
def test_traversal_is_403_and_nothing_is_written(sidecar: Sidecar, godot: Godot, uri: str) -> None:
    before = sorted(str(p) for p in godot.project.parent.rglob("*"))
    status, answer = call(sidecar, "/edit/applyChanges", {"uri": uri, "text": "pwned"})
    assert status == 403, answer
    assert sorted(str(p) for p in godot.project.parent.rglob("*")) == before
    assert not Path("/tmp/escaped.gd").exists()


# --- one code per condition (issue 12) -------------------------------------------------------

ASKING = (
    "/lsp/hover",
    "/lsp/definition",
    "/lsp/declaration",
    "/lsp/references",
    "/lsp/signatureHelp",
    "/lsp/completion",
    "/lsp/documentSymbol",
)


def test_issue_12_hover_and_definition_on_a_missing_file_are_404_not_found(
    sidecar: Sidecar,
) -> None:
    """Was `200 []` (Godot answers nothing for a file it does not know)."""
    missing = "res://demo/no_such_script.gd"
    for path in ASKING:
        status, answer = call(sidecar, path, at(missing, 0, 0))
        assert status == 404, (path, answer)
        assert answer["error"]["code"] == "not_found", (path, answer)
        assert answer["error"]["field"] == "textDocument.uri", (path, answer)
        assert answer["error"]["path"] == missing, (path, answer)
    status, answer = call(sidecar, f"/lsp/diagnostics?uri={missing}")
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (404, "not_found", "uri")
    # A document open but not on disk is there: Godot knows it through didOpen.
    memory = "res://memory_only/hover_me.gd"
    opened = {"textDocument": {"uri": memory, "text": "extends Node\nvar here: int = 1\n"}}
    ok(sidecar, "/lsp/didOpen", opened, agent="memo")
    try:
        assert call(sidecar, "/lsp/hover", at(memory, 1, 5))[0] == 200
    finally:
        ok(sidecar, "/lsp/didClose", {"textDocument": {"uri": memory}}, agent="memo")


@pytest.mark.parametrize("uri", ["../escaped.gd", "file:///etc/escaped.gd", "/tmp/escaped.gd"])
def test_issue_12_outside_is_403_outside_project_on_lsp_and_edit_endpoints(
    sidecar: Sidecar, godot: Godot, uri: str
) -> None:
    before = sorted(str(p) for p in godot.project.parent.rglob("*"))
    bodies = {
        path: {**at(uri, 0, 0, contentChanges=[{"text": "x"}]), "uri": uri} for path in SCRIPT_ONLY
    }
    bodies["/edit/read"] = {"uri": uri}
    bodies["/edit/applyChanges"] = {"uri": uri, "text": "pwned"}
    for path, body in bodies.items():
        status, answer = call(sidecar, path, body)
        assert status == 403, (path, answer)
        assert answer["error"]["code"] == "outside_project", (path, answer)
    for path in ("/lsp/diagnostics", "/edit/read"):
        status, answer = call(sidecar, f"{path}?uri={quote(uri, safe='')}")
        assert (status, answer["error"]["code"]) == (403, "outside_project"), (path, answer)
    assert sorted(str(p) for p in godot.project.parent.rglob("*")) == before


def test_issue_12_file_uris_are_accepted_on_lsp_and_edit_endpoints(
    sidecar: Sidecar, godot: Godot
) -> None:
    main = godot.project / "demo" / "main.gd"
    uri = main.as_uri()
    position = _position_in(main.read_text(), "counter += 1", 1)
    hover = ok(sidecar, "/lsp/hover", at(uri, *position))
    assert "var counter: int = 0" in hover["contents"]["value"]
    assert ok(sidecar, "/lsp/documentSymbol", {"uri": uri})
    diagnostics = ok(sidecar, f"/lsp/diagnostics?uri={quote(uri, safe='')}")
    assert diagnostics["path"] == MAIN
    read = ok(sidecar, "/edit/read", {"uri": uri})
    assert read["uri"] == MAIN and read["text"] == main.read_text()
    copy = godot.project / "demo" / "via_file_uri.gd"
    written = ok(sidecar, "/edit/applyChanges", {"uri": copy.as_uri(), "text": GOOD})
    assert written["path"] == "res://demo/via_file_uri.gd" and copy.read_text() == GOOD


@pytest.mark.parametrize("body", [None, {}, {"wait": 1}])
def test_issue_12_diagnostics_without_uri_is_400_naming_uri(
    sidecar: Sidecar, body: dict[str, Any] | None
) -> None:
    """`uri` is required (the document said optional) and the GET's error named textDocument;
    LSP's `textDocument.uri` is not a second spelling of it here (the document has one)."""
    status, answer = call(sidecar, "/lsp/diagnostics", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "missing_field" and answer["error"]["field"] == "uri"
    assert "'uri'" in answer["error"]["message"]
    lsp_shaped, answer = call(sidecar, "/lsp/diagnostics", {"textDocument": {"uri": MAIN}})
    assert (lsp_shaped, answer["error"]["field"]) == (400, "uri")


def test_issue_12_apply_changes_with_both_text_and_edits_is_400(
    sidecar: Sidecar, godot: Godot
) -> None:
    target = godot.project / "demo" / "both.gd"
    body = {"uri": "res://demo/both.gd", "text": GOOD, "edits": []}
    status, answer = call(sidecar, "/edit/applyChanges", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_field" and answer["error"]["field"] == "edits"
    assert "not both" in answer["error"]["message"]
    assert not target.exists()


def test_issue_12_lsp_rules_are_in_the_declarations() -> None:
    """What the server refuses, the schema says: one of textDocument/uri, integers only."""
    hover = HOVER.arguments.model_json_schema()
    assert [a["required"] for a in hover["anyOf"]] == [["textDocument"], ["uri"]]
    assert "position" in hover["required"]
    # A GET can only carry `uri`: required (a POST may still spell it textDocument.uri).
    assert DIAGNOSTICS.arguments.model_json_schema()["required"] == ["uri"]
    assert "not_found" in HOVER.errors and "outside_project" in HOVER.errors
    assert "not_a_script" not in APPLY_CHANGES.errors  # edits take any project file
    one_of = APPLY_CHANGES.arguments.model_json_schema()["allOf"][1]["oneOf"]
    assert [a["required"] for a in one_of] == [["text"], ["edits"]]


def test_issue_12_answers_follow_their_declared_models(sidecar: Sidecar, godot: Godot) -> None:
    main = godot.project / "demo" / "main.gd"
    here = at(MAIN, *_position_in(main.read_text(), "counter += 1", 1))
    memory = "res://memory_only/declared.gd"
    calls: list[tuple[Any, str, dict[str, Any] | None]] = [
        (HOVER, "/lsp/hover", here),
        (DEFINITION, "/lsp/definition", here),
        (REFERENCES, "/lsp/references", here),
        (SIGNATURE_HELP, "/lsp/signatureHelp", here),
        (COMPLETION, "/lsp/completion", here),
        (DOCUMENT_SYMBOL, "/lsp/documentSymbol", {"uri": MAIN}),
        (DIAGNOSTICS, f"/lsp/diagnostics?uri={MAIN}", None),
        (READ_FILE, "/edit/read", {"uri": MAIN, "start_line": 2}),
        (APPLY_CHANGES, "/edit/applyChanges", {"uri": "res://demo/declared.gd", "text": GOOD}),
        (DID_OPEN, "/lsp/didOpen", {"uri": memory, "text": "extends Node\n"}),
        (DID_CLOSE, "/lsp/didClose", {"uri": memory}),
    ]
    for operation, path, body in calls:
        answer = ok(sidecar, path, body, agent="declared")
        TypeAdapter(operation.answer).validate_python(answer)


# --- many agents at once -------------------------------------------------------------------


async def test_twenty_agents_each_get_their_own_answer(sidecar: Sidecar) -> None:
    agents = 20

    async def one(session: aiohttp.ClientSession, i: int) -> tuple[int, str, list[str]]:
        uri = f"res://agents/agent_{i}.gd"
        text = f"extends Node\nvar marker_{i}: int = {i}\n\n\nfunc f() -> void:\n\tmarker_\n"
        headers = {"X-Agent-Id": f"agent-{i}"}

        async def post(path: str, body: dict[str, Any]) -> Any:
            async with session.post(sidecar.base + path, json=body, headers=headers) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
                return answer["result"]

        await post("/lsp/didOpen", {"textDocument": {"uri": uri, "text": text}})
        hover, completion = await asyncio.gather(
            post("/lsp/hover", at(uri, 1, 6)),
            post("/lsp/completion", at(uri, 5, 8, limit=3)),
        )
        await post("/lsp/didClose", {"textDocument": {"uri": uri}})
        return i, hover["contents"]["value"], [c["label"] for c in completion["items"]]

    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(one(session, i) for i in range(agents)))
    for i, hover, labels in answers:
        assert f"var marker_{i}: int = {i}" in hover
        assert labels[0] == f"marker_{i}"
        assert not any(re.fullmatch(rf"marker_(?!{i}$)\d+", label) for label in labels)


# --- failure paths, against a scripted stand-in for Godot (no editor needed) -----------------


class FakeLsp:
    """Answers initialize and hover (with float ids, as Godot may); ignores completion.

    It names its project root `root` in `gdscript_client/changeWorkspace`, as Godot does when
    the rootPath it was sent is spelled differently from its own (a symlink, say).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.opened: list[list[str]] = []  # didOpen URIs per connection
        self.server: asyncio.AbstractServer | None = None
        self.streams: list[MessageStream] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = MessageStream(reader, writer, "fake")
        self.streams.append(stream)
        opened: list[str] = []
        self.opened.append(opened)
        with contextlib.suppress(Exception):
            while True:
                msg = await stream.read()
                method, ident = msg.get("method"), msg.get("id")
                if method == "initialize":
                    note = {"path": self.root}
                    stream.write(
                        {
                            "jsonrpc": "2.0",
                            "method": "gdscript_client/changeWorkspace",
                            "params": note,
                        }
                    )
                    stream.write(
                        {"jsonrpc": "2.0", "id": float(ident), "result": {"capabilities": {}}}
                    )
                elif method == "textDocument/didOpen":
                    opened.append(msg["params"]["textDocument"]["uri"])
                elif method == "textDocument/hover":
                    uri = msg["params"]["textDocument"]["uri"]
                    stream.write(
                        {"jsonrpc": "2.0", "id": float(ident), "result": {"contents": uri}}
                    )
                elif method == "textDocument/definition":
                    error = {"code": -32603, "message": "boom"}
                    stream.write({"jsonrpc": "2.0", "id": ident, "error": error})

    def drop_connections(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams.clear()

    async def stop(self) -> None:
        self.drop_connections()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def _config(project: Path, lsp_port: int, timeout: float) -> Config:
    return Config(
        project=str(project),
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=lsp_port,
        dap_port=0,
        request_timeout=timeout,
    )


def _alias(tmp_path: Path) -> str:
    """Another spelling of the project directory (a symlink to it), Godot's root in the fake."""
    alias = tmp_path.parent / f"{tmp_path.name}-alias"
    if not alias.exists():
        alias.symlink_to(tmp_path, target_is_directory=True)
    return str(alias)


async def _with_fake(
    check: Any, tmp_path: Path, timeout: float = 0.5, root: str | None = None
) -> None:
    fake = FakeLsp(root or _alias(tmp_path))
    port = await fake.start()
    config = _config(tmp_path, port, timeout)
    session = LspSession(config, ServiceStatus("language_server", port))
    routes = RouteTable()
    register(routes, session)
    client = TestClient(TestServer(make_app(routes, AgentRegistry())))
    await client.start_server()
    try:
        assert await session.connect(wait=5)
        await check(client, session, fake)
    finally:
        await session.stop()
        await client.close()
        await fake.stop()


# slow: the 504 comes only once the 0.5 s request timeout has run out.
@pytest.mark.slow
async def test_silent_godot_is_504_and_float_ids_still_match(tmp_path: Path) -> None:
    (tmp_path / "a.gd").write_text("extends Node\n")  # a missing file is 404 (issue 12)

    async def check(client: Any, session: LspSession, fake: FakeLsp) -> None:
        resp = await client.post("/lsp/hover", json=at("res://a.gd", 0, 0))
        assert resp.status == 200
        # Godot's root from changeWorkspace is the one its URIs use.
        assert (await resp.json())["result"] == {"contents": f"file://{_alias(tmp_path)}/a.gd"}
        started = time.monotonic()
        resp = await client.post("/lsp/completion", json=at("res://a.gd", 0, 0))
        assert resp.status == 504
        assert (await resp.json())["error"]["code"] == "timeout"
        assert time.monotonic() - started < 3
        resp = await client.post("/lsp/definition", json=at("res://a.gd", 0, 0))
        assert resp.status == 502
        assert (await resp.json())["error"]["lsp_error"]["message"] == "boom"

    await _with_fake(check, tmp_path)


# slow: the peer backs off ~1 s before it reconnects.
@pytest.mark.slow
async def test_reconnect_replays_open_documents(tmp_path: Path) -> None:
    async def check(client: Any, session: LspSession, fake: FakeLsp) -> None:
        body = {"textDocument": {"uri": "res://kept.gd", "text": "extends Node\n"}}
        resp = await client.post("/lsp/didOpen", json=body, headers={"X-Agent-Id": "a"})
        assert resp.status == 200
        fake.drop_connections()
        for _ in range(100):  # the peer notices, backs off ~1 s, reconnects
            if len(fake.opened) == 2 and fake.opened[1]:
                break
            await asyncio.sleep(0.05)
        assert fake.opened[1] == [f"file://{_alias(tmp_path)}/kept.gd"]
        assert session.peer.connected

    await _with_fake(check, tmp_path)


async def test_not_connected_is_503_with_retry_after(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port(), 0.5)
    session = LspSession(config, ServiceStatus("language_server", config.lsp_port))
    routes = RouteTable()
    register(routes, session)
    (tmp_path / "a.gd").write_text("extends Node\n")  # a missing file is 404 (issue 12)
    async with TestClient(TestServer(make_app(routes, AgentRegistry()))) as client:
        for path in ("/lsp/hover", "/lsp/didOpen"):
            resp = await client.post(path, json=at("res://a.gd", 0, 0))
            assert resp.status == 503
            assert "Retry-After" in resp.headers
        # Writing files does not need the language server.
        resp = await client.post("/edit/applyChanges", json={"uri": "a.gd", "text": "x"})
        assert resp.status == 200
        assert (await resp.json())["result"]["lsp"] == "not_connected"
    assert (tmp_path / "a.gd").read_text() == "x"


# --- the whole stack: editor + addon + sidecar (tests/harness.py) ----------------------------


def _through(editor: Any, path: str, body: dict[str, Any] | None, agent: str) -> tuple[int, Any]:
    return _request(editor.base_url, path, body, agent)


def _wait_connected(
    editor: Any, service: str = "language_server", timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, answer = _through(editor, "/status", None, "probe")
        status = answer[service]
        if status["state"] == "connected":
            return status
        time.sleep(0.2)
    raise AssertionError(f"{service} never connected: {status}")


def test_bridge_hover_and_diagnostics_through_the_addon(editor: Any) -> None:
    status = _wait_connected(editor)
    assert set(status) >= {"service", "port", "state", "retry_count", "last_activity"}
    assert status["port"] == editor.lsp_port
    main = editor.project / "demo" / "main.gd"
    position = _position_in(main.read_text(), "counter += 1", 1)
    code, answer = _through(editor, "/lsp/hover", at(MAIN, *position), "alice")
    assert code == 200, answer
    assert "var counter: int = 0" in answer["result"]["contents"]["value"]

    uri = "res://demo/via_bridge.gd"
    code, answer = _through(editor, "/edit/applyChanges", {"uri": uri, "text": "func (\n"}, "bob")
    assert code == 200, answer
    assert answer["result"]["diagnostics"], answer
    code, answer = _through(editor, "/edit/applyChanges", {"uri": uri, "text": GOOD}, "bob")
    assert answer["result"]["diagnostics"] == []
    assert (editor.project / "demo" / "via_bridge.gd").read_text() == GOOD


async def test_bridge_twenty_agents_each_get_their_own_hover(editor: Any) -> None:
    _wait_connected(editor)
    base = editor.base_url

    async def agent(session: aiohttp.ClientSession, i: int) -> str:
        uri = f"res://bridge_agents/agent_{i}.gd"
        text = f"extends Node\nvar marker_{i}: int = {i}\n"
        headers = {"X-Agent-Id": f"agent-{i}"}
        opened = {"textDocument": {"uri": uri, "text": text}}
        async with session.post(base + "/lsp/didOpen", json=opened, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        async with session.post(base + "/lsp/hover", json=at(uri, 1, 6), headers=headers) as r:
            value = (await r.json())["result"]["contents"]["value"]
        closing = {"textDocument": {"uri": uri}}
        async with session.post(base + "/lsp/didClose", json=closing, headers=headers) as resp:
            assert resp.status == 200
        return value

    # One connection per agent: each is its own client of the addon.
    sessions = [aiohttp.ClientSession() for _ in range(20)]
    try:
        values = await asyncio.gather(*(agent(s, i) for i, s in enumerate(sessions)))
    finally:
        for s in sessions:
            await s.close()
    for i, value in enumerate(values):
        assert f"var marker_{i}: int = {i}" in value


def test_edit_hot_reloads_the_running_game(editor: Any) -> None:
    """applyChanges ends in didSave, on which Godot reloads the script into the game."""
    _wait_connected(editor)
    _wait_connected(editor, "debug_adapter")
    code, answer = _through(editor, "/debug/launch", {}, "runner")
    assert code == 200, answer
    try:
        main = editor.project / "demo" / "main.gd"
        text = main.read_text()
        assert '"demo: tick %d"' in text
        new = text.replace('"demo: tick %d"', '"demo: hot reloaded %d"')
        code, answer = _through(
            editor, "/edit/applyChanges", {"uri": MAIN, "text": new}, "editor-agent"
        )
        assert code == 200 and answer["result"]["diagnostics"] == [], answer
        since, seen = 0, ""
        deadline = time.monotonic() + 20
        while "demo: hot reloaded" not in seen:
            assert time.monotonic() < deadline, f"new string never printed; last output {seen!r}"
            _, events = _through(editor, f"/debug/events?since={since}&wait=1", None, "runner")
            since = events["result"]["next"]
            outputs = [e for e in events["result"]["events"] if e.get("event") == "output"]
            seen += "".join(e["body"]["output"] for e in outputs)
    finally:
        _through(editor, "/debug/terminate", {}, "runner")


async def test_issue_11_lsp_of_another_project_is_wrong_editor(tmp_path: Path) -> None:
    """Godot names a project root that is not ours: the session says so and stays out."""
    other = tmp_path / "other-game"
    other.mkdir()
    fake = FakeLsp(str(other))
    port = await fake.start()
    session = LspSession(_config(tmp_path, port, 0.5), ServiceStatus("language_server", port))
    try:
        assert not await session.connect(wait=5)
        shown = session.status.as_json()
        assert shown["state"] == "wrong_editor" and shown["ready"] is False, shown
        assert str(other) in shown["message"] and str(tmp_path) in shown["message"]
        assert session.identified is False
        assert fake.opened == [[]]  # no document was replayed to the other editor
    finally:
        await session.stop()
        await fake.stop()

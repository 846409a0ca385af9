"""`POST /execute/reload` (sidecar/api/editor.py + the addon's `reload_scripts` action).

Against the real stack: a headless editor with the addon and its sidecar, files written
straight to disk as an agent working without the bridge would, the demo game running
under the debugger. Then the endpoint alone, with a fake editor behind it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from harness import REPO, Editor, call_json, ok_json

from sidecar.agents import AgentRegistry
from sidecar.api.editor import ReloadError, register
from sidecar.api.lsp import DIAGNOSTICS, Diagnostic
from sidecar.app import Sidecar
from sidecar.config import Config
from sidecar.errors import TransportError
from sidecar.project.documents import DocumentStore
from sidecar.project.paths import ProjectFile, ProjectPaths
from sidecar.web.http import RouteTable, make_app

MAIN_TEXT = (REPO / "demo" / "main.gd").read_text()
TICK = '"demo: tick %d"'
assert TICK in MAIN_TEXT


AGENT = "reloader"


def call(ed: Editor, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
    """(status, JSON answer) of one request to the bridge."""
    return call_json(ed, method, path, body, AGENT, timeout=40, raw=raw)


def ok(ed: Editor, method: str, path: str, body: Any = None) -> Any:
    return ok_json(ed, method, path, body, AGENT, timeout=40)


def reload(ed: Editor, body: Any = None) -> dict[str, Any]:
    result = ok(ed, "POST", "/execute/reload", {} if body is None else body)
    assert result["rescanned"] is True
    return result


def status_of(ed: Editor) -> dict[str, Any]:
    """GET /status: the seed's shape at the top level."""
    code, answer = call(ed, "GET", "/status")
    assert code == 200, answer
    assert "result" not in answer, answer
    return answer


def godot_has_logger(ed: Editor) -> bool:
    """Godot 4.5+ lets the addon catch the parse error's own message."""
    m = re.search(r"Godot Engine v(\d+)\.(\d+)", ed.output)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= (4, 5)


# --- the real stack ------------------------------------------------------------------------


def test_script_written_on_disk_is_reloaded_and_open_documents_follow(editor: Editor) -> None:
    editor.wait_until_ready()
    copy = editor.project / "demo" / "reload_copy.gd"
    res = "res://demo/reload_copy.gd"
    copy.write_text(MAIN_TEXT)
    assert res in reload(editor)["scripts"]  # a new file counts as changed
    assert res not in reload(editor)["scripts"]  # and is not listed again unchanged

    ok(editor, "POST", "/lsp/didOpen", {"textDocument": {"uri": res}})
    try:
        new = MAIN_TEXT.replace(TICK, '"copy: reloaded %d"') + "\n\nfunc marker_func() -> void:\n"
        # Maybe within the second of the last scan (same mtime): then found by content.
        copy.write_text(new + "\tpass\n")
        result = reload(editor)
        assert res in result["scripts"], result
        assert result["errors"] == [] and result["game_reloaded"] is False
        assert result["documents"] == [res]  # the shared document took the disk's text
        symbols = ok(editor, "POST", "/lsp/documentSymbol", {"textDocument": {"uri": res}})
        assert "marker_func" in json.dumps(symbols)  # Godot's LSP sees the new text

        # Named explicitly, in any spelling, the file is reloaded even if unchanged.
        for spelling in (str(copy), copy.as_uri(), "demo/reload_copy.gd", res):
            named = reload(editor, {"paths": [spelling]})
            assert named["scripts"] == [res] and named["errors"] == [], (spelling, named)
            assert named["documents"] == []  # already the text on disk
    finally:
        ok(editor, "POST", "/lsp/didClose", {"textDocument": {"uri": res}})

    copy.unlink()
    assert res in reload(editor)["removed"]


def test_running_game_gets_the_new_script(editor: Editor) -> None:
    editor.wait_until_ready()
    main = editor.project / "demo" / "main.gd"
    since = ok(editor, "GET", "/debug/events")["next"]
    ok(editor, "POST", "/debug/launch", {"scene": "main"})
    try:
        since, _ = wait_output(editor, since, "demo: tick")
        main.write_text(MAIN_TEXT.replace(TICK, '"demo: tock %d"'))
        start = time.monotonic()
        result = reload(editor)
        assert result["scripts"] == ["res://demo/main.gd"], result
        assert result["game_running"] is True and result["game_reloaded"] is True
        assert result["game_reload"] == "next_frame"
        _, seen = wait_output(editor, since, "demo: tock", timeout=10)
        print(f"new string printed {time.monotonic() - start:.2f} s after the reload")
        # The game kept its state: the counter goes on instead of starting over.
        ticks = [int(n) for n in re.findall(r"demo: (?:tick|tock) (\d+)", seen)]
        assert ticks == sorted(ticks) and ticks[-1] > 60, seen
    finally:
        ok(editor, "POST", "/debug/terminate", {})
        main.write_text(MAIN_TEXT)
        reload(editor, {"paths": ["res://demo/main.gd"]})


def test_issue_11_reload_while_stopped_waits_until_the_game_runs_on(editor: Editor) -> None:
    """Godot's game notes a reload and applies it in its next idle frame: none while stopped."""
    editor.wait_until_ready()
    main = editor.project / "demo" / "main.gd"
    tick_line = next(i + 1 for i, t in enumerate(MAIN_TEXT.splitlines()) if TICK in t)
    source = {"path": "res://demo/main.gd"}
    ok(
        editor,
        "POST",
        "/debug/setBreakpoints",
        {"source": source, "breakpoints": [{"line": tick_line}]},
    )
    since = ok(editor, "GET", "/debug/events")["next"]
    ok(editor, "POST", "/debug/launch", {"scene": "main"})
    try:
        since = wait_stopped(editor, since)
        main.write_text(MAIN_TEXT.replace(TICK, '"demo: tock %d"'))
        result = reload(editor, {"paths": ["res://demo/main.gd"]})
        assert result["scripts"] == ["res://demo/main.gd"] and result["game_running"], result
        assert result["game_reloaded"] is False, result
        assert result["game_reload"] == "pending_until_resume", result
        # Still stopped: the game has not taken the new source yet.
        assert not reloaded_in_game(editor)
        ok(editor, "POST", "/debug/continue", {})
        since = wait_stopped(editor, since)  # 60 frames later, at the same breakpoint
        assert reloaded_in_game(editor)
        ok(editor, "POST", "/debug/setBreakpoints", {"source": source, "breakpoints": []})
        ok(editor, "POST", "/debug/continue", {})
        wait_output(editor, since, "demo: tock")
    finally:
        ok(editor, "POST", "/debug/setBreakpoints", {"source": source, "breakpoints": []})
        call(editor, "POST", "/debug/terminate", {})
        main.write_text(MAIN_TEXT)
        reload(editor, {"paths": ["res://demo/main.gd"]})


def reloaded_in_game(ed: Editor) -> bool:
    expression = 'get_script().source_code.contains("demo: tock")'
    value = ok(ed, "POST", "/debug/evaluate", {"expression": expression, "frameId": 0})["result"]
    assert value in ("true", "false"), value
    return value == "true"


def wait_stopped(ed: Editor, since: int, timeout: float = 30) -> int:
    """Reads /debug/events from `since` until a `stopped` event; the position after it."""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, "the game never stopped"
        page = ok(ed, "GET", f"/debug/events?since={since}&wait=1")
        for event in page["events"]:
            if event.get("event") == "stopped":
                return int(event["seq"])
        since = page["next"]


def wait_output(ed: Editor, since: int, needle: str, timeout: float = 20) -> tuple[int, str]:
    """Reads /debug/events from `since` until an output event contains `needle`."""
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        assert time.monotonic() < deadline, f"{needle!r} never printed; output so far {seen!r}"
        page = ok(ed, "GET", f"/debug/events?since={since}&wait=1")
        since = page["next"]
        outputs = [e for e in page["events"] if e.get("event") == "output"]
        seen += "".join(e["body"].get("output", "") for e in outputs)
    return since, seen


def test_script_that_does_not_parse_is_an_error_not_a_crash(editor: Editor) -> None:
    broken = editor.project / "demo" / "broken_copy.gd"
    res = "res://demo/broken_copy.gd"
    broken.write_text("extends Node\n\nfunc broken(:\n\tpass\n")
    try:
        for body in ({}, {"paths": [res]}):  # found as new, then named
            result = reload(editor, body)
            assert res not in result["scripts"]
            mine = [e for e in result["errors"] if e["path"] == res]
            assert mine and all(e["message"] for e in mine), result
            if godot_has_logger(editor):
                assert "Parse Error" in mine[0]["message"] and mine[0]["line"] == 3, mine
        assert status_of(editor)["sidecar"]["pid"]  # still serving

        broken.write_text("extends Node\n\nfunc fixed() -> void:\n\tpass\n")
        fixed = reload(editor, {"paths": [res]})
        assert fixed["scripts"] == [res] and fixed["errors"] == [], fixed
    finally:
        broken.unlink()
        reload(editor)


def diagnostics_when_connected(ed: Editor, res: str, timeout: float = 60) -> dict[str, Any]:
    """GET /lsp/diagnostics once the language server is connected (it may still start)."""
    deadline = time.monotonic() + timeout
    while True:
        code, answer = call(ed, "GET", f"/lsp/diagnostics?uri={res}&wait=5")
        if code == 200:
            return dict(answer["result"])
        assert code == 503 and time.monotonic() < deadline, answer
        time.sleep(0.5)


def test_issue_12_reload_lines_are_1_based_diagnostics_0_based_and_both_say_so(
    editor: Editor,
) -> None:
    """The same parse error: line 3 in the reload's errors, line 2 in the diagnostics."""
    assert "1-based" in str(ReloadError.model_fields["line"].description)
    assert "0-based" in str(Diagnostic.model_fields["range"].description)
    assert "0-based" in DIAGNOSTICS.description and "/execute/reload" in DIAGNOSTICS.description
    if not godot_has_logger(editor):
        pytest.skip(
            "this Godot is older than 4.5: it has no script Logger, so the addon cannot catch a "
            "parse error's line (the declared line bases were checked above)"
        )
    broken = editor.project / "demo" / "broken_lines.gd"
    res = "res://demo/broken_lines.gd"
    broken.write_text("extends Node\n\nfunc broken(:\n\tpass\n")
    try:
        reloaded = [e for e in reload(editor, {"paths": [res]})["errors"] if e["path"] == res]
        diagnostics = diagnostics_when_connected(editor, res)["diagnostics"]
        assert reloaded and diagnostics, (reloaded, diagnostics)
        assert reloaded[0]["line"] == 3, reloaded  # the file's third line, as Godot prints it
        lsp_line = diagnostics[0]["range"]["start"]["line"]
        assert reloaded[0]["line"] == lsp_line + 1, (reloaded, diagnostics)
    finally:
        broken.unlink()
        reload(editor)


@pytest.mark.parametrize("path", ["/etc/hosts", "../outside.gd", "file:///tmp/x.gd"])
def test_path_outside_the_project_is_403(editor: Editor, path: str) -> None:
    status, answer = call(editor, "POST", "/execute/reload", {"paths": [path]})
    assert status == 403, answer
    assert answer["error"]["code"] == "outside_project"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"paths": "res://demo/main.gd"}, "paths"),
        ({"paths": {"a": 1}}, "paths"),
        ({"paths": [1]}, "paths[0]"),
        ({"paths": ["res://demo/main.gd", ""]}, "paths[1]"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(editor: Editor, body: Any, field: str) -> None:
    status, answer = call(editor, "POST", "/execute/reload", body)
    assert status == 400, answer
    assert answer["error"]["field"] == field


def test_malformed_json_is_400(editor: Editor) -> None:
    for raw in (b"{", b"[1]"):
        status, answer = call(editor, "POST", "/execute/reload", raw=raw)
        assert status == 400 and answer["error"]["code"] == "invalid_json", answer


# --- the endpoint with a fake editor ---------------------------------------------------------


class FakeBridge:
    """Stands in for `app.Sidecar`: records actions, answers with `reply`."""

    def __init__(self, root: Path, reply: Any) -> None:
        paths = ProjectPaths(str(root))
        self.sent: list[tuple[str, dict[str, Any]]] = []

        async def sink(method: str, params: dict[str, Any]) -> None:
            self.sent.append((method, params))

        self.lsp_session = SimpleNamespace(paths=paths, documents=DocumentStore(paths, sink))
        self.dap_session = SimpleNamespace(stopped=None)
        self.reply = reply
        self.actions: list[tuple[str, dict[str, Any], float]] = []

    async def editor_action(self, name: str, args: dict[str, Any], timeout: float = 30) -> Any:
        self.actions.append((name, args, timeout))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


async def serve(bridge: Any, body: Any, *, setup: Any = None) -> tuple[int, dict[str, Any]]:
    routes = RouteTable()
    register(routes, bridge)
    if setup is not None:
        await setup()
    async with TestClient(TestServer(make_app(routes, AgentRegistry()))) as client:
        resp = await client.post("/execute/reload", json=body)
        return resp.status, await resp.json()


REPLY = {"rescanned": True, "scripts": [], "game_reloaded": False, "errors": []}


async def test_paths_reach_the_editor_as_res_paths(tmp_path: Path) -> None:
    fake = FakeBridge(tmp_path, dict(REPLY))
    body = {
        "paths": [str(tmp_path / "a.gd"), (tmp_path / "b c.gd").as_uri(), "a.gd", "res://d/e.gd"]
    }
    status, answer = await serve(fake, body)
    assert status == 200, answer
    assert fake.actions[0][:2] == (
        "reload_scripts",
        {"paths": ["res://a.gd", "res://b c.gd", "res://d/e.gd"]},
    )
    assert (await serve(fake, {}))[0] == 200 and fake.actions[1][1] == {}  # the editor looks itself


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (TimeoutError(), 504, "timeout"),
        (TransportError("no editor", code="no_editor"), 503, "no_editor"),
        (RuntimeError("reload_scripts: 'paths' must be an array"), 502, "editor_action_failed"),
        (ConnectionResetError("link gone"), 503, "no_editor"),
    ],
)
async def test_editor_trouble_maps_to_http(
    tmp_path: Path, error: Exception, status: int, code: str
) -> None:
    got, answer = await serve(FakeBridge(tmp_path, error), {})
    assert (got, answer["error"]["code"]) == (status, code), answer


async def test_open_document_takes_the_reloaded_text(tmp_path: Path) -> None:
    (tmp_path / "a.gd").write_text("extends Node\n# new\n")
    fake = FakeBridge(tmp_path, dict(REPLY, scripts=["res://a.gd"]))
    store = fake.lsp_session.documents

    async def open_old() -> None:
        await store.open(ProjectFile("a.gd"), "agent", "extends Node\n# old\n")

    status, answer = await serve(fake, {}, setup=open_old)
    assert status == 200 and answer["result"]["documents"] == ["res://a.gd"], answer
    method, params = fake.sent[-1]
    assert method == "textDocument/didChange"
    assert params["contentChanges"] == [{"text": "extends Node\n# new\n"}]


async def test_bridge_without_an_editor_answers_503(tmp_path: Path) -> None:
    config = Config(
        project=str(tmp_path),
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=1,
        dap_port=1,
    )
    sidecar = Sidecar(config)  # not started: no link to an addon, no Godot
    async with TestClient(TestServer(sidecar.app)) as client:
        resp = await client.post("/execute/reload", json={})
        status, answer = resp.status, await resp.json()
        retry = resp.headers.get("Retry-After")
    assert status == 503 and retry and answer["error"]["code"] == "no_editor", answer


@pytest.mark.parametrize(
    ("reply", "stopped", "reloaded", "when"),
    [
        ({"game_running": False, "game_reloaded": False}, False, False, "not_running"),
        ({"game_running": True, "game_reloaded": False}, False, False, "nothing_to_reload"),
        ({"game_running": True, "game_reloaded": True}, False, True, "next_frame"),
        ({"game_running": True, "game_reloaded": True}, True, False, "pending_until_resume"),
    ],
)
async def test_issue_11_reload_says_when_the_game_takes_it(
    tmp_path: Path, reply: dict[str, Any], stopped: bool, reloaded: bool, when: str
) -> None:
    fake = FakeBridge(tmp_path, dict(REPLY, **reply))
    fake.dap_session.stopped = object() if stopped else None
    status, answer = await serve(fake, {})
    assert status == 200, answer
    assert answer["result"]["game_reloaded"] is reloaded
    assert answer["result"]["game_reload"] == when

"""Two editors on one machine, each with the addon: each bridge serves its own editor.

Real headless editors on two copies of the demo project. Editor settings are shared by every
editor of a machine (one file per Godot major.minor under $XDG_CONFIG_HOME/godot), so they
cannot tell two editors apart: the ports an editor really serves come from its own command
line, and the remote-debug port its games connect back to is the addon's choice per session.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import Editor, free_port, make_demo_project, settings_home

MAIN = "res://demo/main.gd"
MAIN_GD = (Path(__file__).resolve().parent.parent / "demo" / "main.gd").read_text().splitlines()
TWICE_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "var doubled: int" in t)
ONLY_B = "extends Node\n\nvar only_in_b: int = 1\n\n\nfunc only_b_function() -> int:\n\treturn 2\n"

# Every test here starts editors.
pytestmark = pytest.mark.usefixtures("godot_bin")


def call(
    editor: Editor, method: str, path: str, body: dict[str, Any] | None = None, agent: str = "t"
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(editor.base_url + path, data=data, method=method)
    req.add_header("X-Agent-Id", agent)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def ok(editor: Editor, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    status, answer = call(editor, method, path, body)
    assert status == 200, (editor.base_url, path, answer)
    # /status answers the seed's shape at the top level; everything else in "result".
    return answer if path == "/status" else answer["result"]


def wait_event(
    editor: Editor, since: int, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """The first event after `since` that `wanted` accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = ok(editor, "GET", f"/debug/events?since={since}&wait=2")
        for event in page["events"]:
            if wanted(event):
                return event
        since = page["next"]
    raise AssertionError(f"{editor.base_url}: no such event within {timeout} s")


def is_output(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "output" and text in e["body"].get("output", "")


def test_issue_11_ports_from_flags_not_from_another_editors_settings(tmp_path: Path) -> None:
    first = Editor(make_demo_project(tmp_path / "a"))
    second_project = make_demo_project(tmp_path / "b")
    (second_project / "only_b.gd").write_text(ONLY_B)
    second: Editor | None = None
    try:
        first.start()
        first.wait_until_ready()
        bps = ok(
            first,
            "POST",
            "/debug/setBreakpoints",
            {"source": {"path": MAIN}, "breakpoints": [{"line": TWICE_LINE}]},
        )
        assert [b["verified"] for b in bps["breakpoints"]] == [True]

        # The second editor: Godot's own flags only, and editor settings that name the first
        # editor's servers (what a machine's shared settings file says after the user moved
        # the ports for the first one).
        env = settings_home(
            tmp_path / "config",
            {
                "network/language_server/remote_port": first.lsp_port,
                "network/debug_adapter/remote_port": first.dap_port,
            },
        )
        second = Editor(second_project, env=env, flags_only=True)
        second.start()
        status = second.wait_until_ready()
        assert status["language_server"]["port"] == second.lsp_port
        assert status["debug_adapter"]["port"] == second.dap_port
        second.wait_for(
            rf"language server on port {second.lsp_port} \(flag\), "
            rf"debug adapter on port {second.dap_port} \(flag\)",
            10,
        )

        # Its language server is its own editor's: it knows a file only the second has.
        symbols = ok(
            second, "POST", "/lsp/documentSymbol", {"textDocument": {"uri": "res://only_b.gd"}}
        )
        names = {s["name"] for s in symbols[0]["children"]}
        assert {"only_in_b", "only_b_function"} <= names

        # The first editor's breakpoint survived: its game still stops there.
        since = ok(first, "GET", "/debug/events")["latest"]
        ok(first, "POST", "/debug/launch", {"scene": "main"})
        stop = wait_event(first, since, lambda e: e["event"] == "stopped")
        assert stop["body"]["reason"] == "breakpoint"
        top = ok(first, "POST", "/debug/stackTrace", {"threadId": 1})["stackFrames"][0]
        assert (top["name"], top["line"]) == ("twice", TWICE_LINE)
        ok(first, "POST", "/debug/terminate", {})
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_issue_11_two_editors_launch_games_at_once(tmp_path: Path) -> None:
    # Both editors' settings name one remote-debug port (the file is the machine's), and the
    # four after it are taken, as by other editors' games on a busy machine or CI host: Godot
    # tries five ports from the setting, then gives up remote debugging.
    import socket

    held: list[socket.socket] = []
    base = 0
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        try:
            for port in range(base + 1, base + 5):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
                s.listen(1)
            break
        except OSError:
            for s in held:
                s.close()
            held.clear()
    assert held, "no five free ports in a row"
    env = settings_home(tmp_path / "config", {"network/debug/remote_port": base})
    editors = [Editor(make_demo_project(tmp_path / name), env=env) for name in ("a", "b")]
    try:
        for ed in editors:
            ed.start()
        for ed in editors:
            ed.wait_until_ready()
        marks = [ok(ed, "GET", "/debug/events")["latest"] for ed in editors]
        for ed in editors:
            ok(ed, "POST", "/debug/launch", {"scene": "main"})
        for ed, since in zip(editors, marks, strict=True):
            wait_event(ed, since, is_output("demo: ready"))
        for ed in editors:
            ok(ed, "POST", "/debug/terminate", {})
    finally:
        for ed in editors:
            ed.stop()
        for s in held:
            s.close()


def test_issue_11_the_session_debug_port_is_never_saved(tmp_path: Path) -> None:
    # The port the addon picks lives in memory: the editor settings file (the machine's,
    # shared by every editor) holds the user's own value after a normal quit.
    users = free_port()
    env = settings_home(tmp_path / "config", {"network/debug/remote_port": users})
    ed = Editor(make_demo_project(tmp_path / "p"), env=env, extra_args=["--quit-after", "3000"])
    try:
        ed.start()
        session = int(ed.wait_for(r"games of this editor debug on port (\d+)", 10).group(1))
        assert session != users
        ed.wait_exit(120)
        ed.wait_for(r"GodotBridge HTTP server stopped", 5)
        files = list((tmp_path / "config" / "godot").glob("editor_settings-*.tres"))
        assert len(files) == 1
        saved = re.findall(r"^network/debug/remote_port = (\d+)$", files[0].read_text(), re.M)
        assert saved == [str(users)]
    finally:
        ed.stop()


def _saved_remote_ports(config: Path) -> list[str]:
    files = list((config / "godot").glob("editor_settings-*.tres"))
    assert len(files) == 1, files
    return re.findall(r"^network/debug/remote_port = (\d+)$", files[0].read_text(), re.M)


def test_issue_11_a_session_port_saved_before_a_crash_is_put_back_at_the_next_start(
    tmp_path: Path,
) -> None:
    # Should anything save the editor settings during a session (the Editor Settings dialog
    # does), the session's port lands in the machine's settings file; an editor that is then
    # killed never puts the user's value back. The addon remembers both in the project's
    # .godot/ and the next editor on the project restores the user's value.
    users = free_port()
    config = tmp_path / "config"
    env = settings_home(config, {"network/debug/remote_port": users})
    project = make_demo_project(tmp_path / "p")
    record = project / ".godot" / "godot_debug_connection" / "debug_port"
    first = Editor(project, env=env)
    try:
        first.start()
        session = int(first.wait_for(r"games of this editor debug on port (\d+)", 10).group(1))
        assert session != users
        assert json.loads(record.read_text()) == {"claimed": session, "previous": users}
    finally:
        first.stop()  # SIGKILL: no quit path, nothing put back
    # What a save during that session left in the file.
    settings_home(config, {"network/debug/remote_port": session})
    second = Editor(project, env=env, extra_args=["--quit-after", "3000"])
    try:
        second.start()
        second.wait_for(rf"still held port {session} of a session .*; put back {users}", 10)
        again = int(second.wait_for(r"games of this editor debug on port (\d+)", 10).group(1))
        assert json.loads(record.read_text()) == {"claimed": again, "previous": users}
        second.wait_exit(120)
        second.wait_for(r"GodotBridge HTTP server stopped", 5)
        assert _saved_remote_ports(config) == [str(users)]
        assert not record.exists()
    finally:
        second.stop()

"""sidecar.client.client, the gdbridge CLI and the README's examples, against a real editor.

Every answer the client gets here is also checked against its operation's declared answer
(sidecar/api/catalog.py), so the OpenAPI
document and HTTP_API.md describe what the server really says.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import REPO, Editor
from pydantic import TypeAdapter, ValidationError

from sidecar.api.catalog import OPERATIONS
from sidecar.client import cli
from sidecar.client import client as client_module
from sidecar.client.client import BridgeClient, BridgeHTTPError, BridgeUnreachable

MAIN = "res://demo/main.gd"
MAIN_GD = (REPO / "demo" / "main.gd").read_text().splitlines()
COUNTER_LINE = next(i + 1 for i, t in enumerate(MAIN_GD) if "counter += 1" in t)
README = REPO / "README.md"


DECLARED = {(method, op.path): op for op in OPERATIONS for method in op.methods}


class CheckedClient(BridgeClient):
    """A BridgeClient that checks every answer against the declaration of its operation."""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        result = super().request(method, path, body)
        operation = DECLARED.get((method, path))
        if operation is not None:
            try:
                TypeAdapter(operation.answer).validate_python(result)
            except ValidationError as err:
                pytest.fail(f"{method} {path} answered off its declaration: {err}\n{result!r}")
        return result


@pytest.fixture(scope="module")
def bridge(editor: Editor) -> Iterator[CheckedClient]:
    c = CheckedClient(editor.base_url, agent="carol", timeout=30)
    assert c.wait_ready(60)["overall_ready"]
    yield c
    c.terminate()


def test_client_drives_a_debug_session(bridge: CheckedClient) -> None:
    bps = bridge.add_breakpoint(MAIN, COUNTER_LINE)
    assert [(b["line"], b["verified"]) for b in bps] == [(COUNTER_LINE, True)]
    assert bridge.my_lines(MAIN) == [COUNTER_LINE]
    since = bridge.events()["latest"]
    bridge.launch()
    stop = bridge.wait_for("stopped", since, 30)
    assert stop is not None and stop["body"]["reason"] == "breakpoint"

    top = bridge.stack_trace()["stackFrames"][0]
    assert (top["name"], top["line"]) == ("_process", COUNTER_LINE)
    scopes = bridge.scopes(0)["scopes"]
    members = next(s for s in scopes if s["name"] == "Members")
    names = [v["name"] for v in bridge.variables(members["variablesReference"])["variables"]]
    assert "counter" in names
    assert bridge.evaluate("counter + 1")["result"].isdigit()
    assert bridge.threads()["threads"][0]["id"] == 1

    with pytest.raises(BridgeHTTPError) as err:
        bridge.post("/debug/evaluate", {"frameId": 0})
    assert (err.value.status, err.value.code) == (400, "missing_field")
    assert err.value.error["field"] == "expression"

    assert bridge.remove_breakpoint(MAIN) == []
    assert bridge.breakpoints()["breakpoints"] == {}
    bridge.terminate()


def test_issue_14_client_breakpoints_keep_their_conditions(bridge: CheckedClient) -> None:
    """add_breakpoint takes a condition, hit condition or log message, and adding or
    removing another line keeps them (the whole set is sent again each time)."""
    bridge.add_breakpoint(MAIN, COUNTER_LINE, condition="counter >= 3", hit_condition="% 2")
    bridge.add_breakpoint(MAIN, COUNTER_LINE + 1, log_message="at {counter}")
    assert bridge.my_breakpoints(MAIN) == [
        {"line": COUNTER_LINE, "condition": "counter >= 3", "hitCondition": "% 2", "hitCount": 0},
        {"line": COUNTER_LINE + 1, "logMessage": "at {counter}", "hitCount": 0},
    ]
    bridge.remove_breakpoint(MAIN, COUNTER_LINE + 1)
    assert [bp.get("condition") for bp in bridge.my_breakpoints(MAIN)] == ["counter >= 3"]
    with pytest.raises(BridgeHTTPError) as err:
        bridge.add_breakpoint(MAIN, COUNTER_LINE, hit_condition="sometimes")
    assert (err.value.status, err.value.error["field"]) == (400, "breakpoints[0].hitCondition")
    assert bridge.remove_breakpoint(MAIN) == []


def test_client_language_server_and_meta(bridge: CheckedClient) -> None:
    # Line 10 `\tprint(...)`, after "pri": the typed word is the filter.
    done = bridge.completion(MAIN, 9, 4, limit=5)
    assert done["prefix"] == "pri" and any(i["label"].startswith("print") for i in done["items"])
    line = next(i for i, t in enumerate(MAIN_GD) if "add_numbers(2, 3)" in t)
    character = MAIN_GD[line].index("add_numbers") + 2
    hover = bridge.hover(MAIN, line, character)
    assert hover is not None and "add_numbers" in json.dumps(hover["contents"])
    assert bridge.definition(MAIN, line, character)[0]["range"]["start"]["line"] == next(
        i for i, t in enumerate(MAIN_GD) if t.startswith("func add_numbers")
    )
    diagnostics = bridge.diagnostics(MAIN, wait=5)
    assert diagnostics["path"] == MAIN and diagnostics["diagnostics"] == []
    assert bridge.health()
    doc = bridge.openapi()
    assert doc["openapi"] == "3.1.0" and "/debug/setBreakpoints" in doc["paths"]


def test_client_errors_name_the_problem(editor: Editor) -> None:
    with pytest.raises(BridgeUnreachable):
        BridgeClient("http://127.0.0.1:9", timeout=2).status()
    with pytest.raises(BridgeHTTPError) as err:
        BridgeClient(editor.base_url).get("/no/such/thing")
    assert err.value.status == 404 and err.value.code == "not_found"


def test_default_url_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GODOT_BRIDGE_URL", raising=False)
    monkeypatch.setenv("GODOT_BRIDGE_PORT", "9123")
    assert client_module.default_url() == "http://127.0.0.1:9123"
    monkeypatch.setenv("GODOT_BRIDGE_URL", "127.0.0.1:7000")
    assert client_module.default_url() == "http://127.0.0.1:7000"


# -- the CLI ----------------------------------------------------------------------------


def test_cli_positions_are_one_based() -> None:
    assert cli.file_line("res://demo/main.gd:14") == ("res://demo/main.gd", 14)
    # LSP wants 0-based: line 10 column 5 is line 9 character 4.
    assert cli.file_position("res://demo/main.gd:10:5") == ("res://demo/main.gd", 9, 4)
    assert cli.file_position("C:/x.gd:1:1") == ("C:/x.gd", 0, 0)
    for parse, bad in (
        (cli.file_line, "res://demo/main.gd"),
        (cli.file_line, "res://demo/main.gd:0"),
        (cli.file_position, "res://demo/main.gd:x:1"),
        (cli.file_position, "res://demo/main.gd:3"),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def _env(editor: Editor) -> dict[str, str]:
    env = dict(os.environ)
    env["GODOT_BRIDGE_URL"] = editor.base_url
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GODOT_BRIDGE_AGENT", None)
    return env


def gdbridge(editor: Editor, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.client.cli", *args],
        env=_env(editor),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_cli_json_output_and_exit_codes(editor: Editor) -> None:
    status = gdbridge(editor, "--json", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["debug_adapter"]["state"] == "connected"
    text = gdbridge(editor, "status")
    assert "debug_adapter: connected" in text.stdout

    bad = gdbridge(editor, "break", "res://demo/main.gd")
    assert bad.returncode == 2 and "FILE:LINE" in bad.stderr
    refused = gdbridge(editor, "--json", "eval", "1 + 1")  # no game: 409
    assert refused.returncode == 1 and json.loads(refused.stdout)["code"] == "not_stopped"
    gone = gdbridge(editor, "--url", "http://127.0.0.1:9", "status")
    assert gone.returncode == 3 and "no bridge" in gone.stderr

    complete = gdbridge(editor, "--json", "complete", f"{MAIN}:10:5", "--limit", "3")
    assert complete.returncode == 0, complete.stderr
    assert json.loads(complete.stdout)["prefix"] == "pri"


def test_issue_11_cli_prints_res_locations_from_a_real_editor(
    editor: Editor, bridge: CheckedClient
) -> None:
    """Godot answers file:// URIs (LSP) and absolute paths (DAP): printed as res://."""
    add = next(i + 1 for i, t in enumerate(MAIN_GD) if t.startswith("func add_numbers"))
    call = next(i + 1 for i, t in enumerate(MAIN_GD) if "add_numbers(2, 3)" in t)
    at_call = f"{MAIN}:{call}:{MAIN_GD[call - 1].index('add_numbers') + 2}"
    name_col = MAIN_GD[add - 1].index("add_numbers") + 1

    definition = _ok(gdbridge(editor, "definition", at_call))
    assert definition == f"{MAIN}:{add}:{name_col}\n"
    hover = _ok(gdbridge(editor, "hover", at_call))
    assert "add_numbers" in hover and not hover.startswith(("[", "{"))
    refs = _ok(gdbridge(editor, "refs", f"{MAIN}:{add}:{name_col + 1}")).splitlines()
    assert f"{MAIN}:{call}:" in "\n".join(refs) and all(r.startswith(MAIN + ":") for r in refs)
    symbols = _ok(gdbridge(editor, "symbols", MAIN)).splitlines()
    assert any(s.startswith(f"{MAIN}:{add}:") and s.endswith(" add_numbers") for s in symbols)
    assert _ok(gdbridge(editor, "diagnostics", MAIN)) == f"{MAIN}: no diagnostics\n"
    blank = MAIN_GD.index("") + 1
    assert _ok(gdbridge(editor, "definition", f"{MAIN}:{blank}:1")) == "no result\n"
    for out in (definition, hover, *refs, *symbols):
        assert "file://" not in out and str(editor.project) not in out, out

    assert _ok(gdbridge(editor, "break", f"{MAIN}:{COUNTER_LINE}")).startswith(
        f"{MAIN}:{COUNTER_LINE} verified"
    )
    try:
        launched = _ok(gdbridge(editor, "launch", "--wait", "stopped"))
        assert re.fullmatch(r"launch: ok scene=main\n#\d+ stopped breakpoint.*\n", launched)
        top = _ok(gdbridge(editor, "stack")).splitlines()[0]
        assert top == f"#0 _process {MAIN}:{COUNTER_LINE}"
        assert _ok(gdbridge(editor, "continue")) == "continue: ok\n"
    finally:
        gdbridge(editor, "break", "--delete", f"{MAIN}:{COUNTER_LINE}")
        assert _ok(gdbridge(editor, "terminate")) == "terminate: ok\n"


def test_issue_11_cli_read_edit_and_clear_on_a_real_editor(
    editor: Editor, bridge: CheckedClient
) -> None:
    new = "res://demo/cli_edit.gd"
    written = _ok(gdbridge(editor, "edit", new, "--text", "extends Node\n\nvar a := 1\n"))
    assert written.startswith(f"{new}: created, 25 bytes, sha256 ")
    read = _ok(gdbridge(editor, "read", f"{new}:3-3")).splitlines()
    assert read[0].startswith(f"{new}:3-3 (of 3 lines) sha256 ")
    assert read[1:] == ["     3\tvar a := 1"]
    assert _ok(gdbridge(editor, "edit", f"{new}:3-3", "--if-unchanged", "--text", "var a := 2\n"))
    assert _ok(gdbridge(editor, "read", "--raw", new)) == "extends Node\n\nvar a := 2\n"
    # Someone else writes in between: the next --if-unchanged edit is refused.
    BridgeClient(editor.base_url, agent="bob").apply_changes(new, text="extends Node\n")
    stale = gdbridge(editor, "edit", new, "--if-unchanged", "--text", "lost\n")
    assert stale.returncode == 1 and "409 stale_hash" in stale.stderr

    assert _ok(gdbridge(editor, "break", f"{MAIN}:{COUNTER_LINE}"))
    cleared = _ok(gdbridge(editor, "clear", MAIN))
    assert cleared == f"{MAIN}:{COUNTER_LINE} cleared (gdbridge)\n"
    assert _ok(gdbridge(editor, "clear")) == "no breakpoints to clear\n"


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0 and done.stderr == "", f"{done.args}\n{done.stderr}"
    return str(done.stdout)


# -- the README -------------------------------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    """The ```language blocks of the README's "Talking to it" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Talking to it\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def readme_commands() -> list[str]:
    return [
        line.strip()
        for block in readme_blocks("sh")
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_readme_examples_run_against_a_real_editor(editor: Editor) -> None:
    commands = readme_commands()
    assert any(c.startswith("curl ") for c in commands)
    assert any(c.startswith("gdbridge ") for c in commands)
    assert shutil.which("curl"), "the README's curl examples need curl"
    env = _env(editor)
    if shutil.which("gdbridge", path=env["PATH"]) is None:
        pytest.fail("gdbridge is not installed in the venv: pip install -e . (make setup)")
    host = f"127.0.0.1:{editor.bridge_port}"
    editor.wait_until_ready()  # the README's examples are for a ready editor
    outputs = {}
    try:
        for command in commands:
            outputs[command] = _run_readme_command(command.replace("127.0.0.1:8080", host), env)
    finally:
        subprocess.run(["bash", "-c", "gdbridge terminate"], env=env, capture_output=True)
    followed = next(out for cmd, out in outputs.items() if "--follow" in cmd)
    assert re.search(r"#\d+ stopped breakpoint", followed), followed

    program = "\n".join(readme_blocks("python"))
    run = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "True" in run.stdout and "add_numbers" in run.stdout


def _run_readme_command(command: str, env: dict[str, str]) -> str:
    if "--follow" in command:  # runs until Ctrl-C: give it a few seconds
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            out, _ = proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return out
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    if command.startswith("curl "):
        answer = json.loads(done.stdout)
        assert answer["status"] == "ok", f"{command}\n{answer}"
    return done.stdout

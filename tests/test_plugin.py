"""plugin.gd's start and stop: the editor quits, everything the addon started goes with it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from harness import (
    REPO,
    Editor,
    free_port,
    http_get,
    make_demo_project,
    port_is_free,
    read_response,
)


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.usefixtures("godot_bin")
def test_editor_quit_closes_clients_stops_sidecar_and_frees_port(tmp_path: Path) -> None:
    # --quit-after ends the editor through its normal quit path (plugins' _exit_tree);
    # Godot has no signal that does that.
    project = make_demo_project(tmp_path / "p")
    before = (project / "project.godot").read_text()
    ed = Editor(project, extra_args=["--quit-after", "3000"])
    try:
        ed.start()
        sidecars = ed.sidecar_pids()
        assert len(sidecars) == 1
        socks = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", ed.bridge_port), timeout=10)
            s.sendall(http_get(ed.bridge_port, "/status"))
            assert read_response(s).status == 200
            socks.append(s)
        ed.wait_exit(120)
        ed.wait_for(r"Cleaning up 2 client connections\.\.\.", 5)
        ed.wait_for(r"GodotBridge HTTP server stopped", 5)
        for s in socks:
            s.settimeout(5)
            assert s.recv(1) == b""  # closed by the addon
            s.close()
        assert _gone(sidecars[0], 5), "sidecar outlived the editor"
        assert port_is_free(ed.bridge_port)
        assert "leaked at exit" not in ed.output_to_the_end()  # nothing the addon made is left
        # The headless run argument was set for the session only, never saved.
        assert (project / "project.godot").read_text() == before
    finally:
        ed.stop()


@pytest.mark.usefixtures("godot_bin")
def test_killed_editor_leaves_no_sidecar(tmp_path: Path) -> None:
    ed = Editor(make_demo_project(tmp_path / "p"))
    try:
        ed.start()
        (sidecar,) = ed.sidecar_pids()
        os.kill(ed.pid, signal.SIGKILL)
        # The link closes with the editor, and the sidecar exits on its own.
        assert _gone(sidecar, 10), "sidecar outlived a killed editor"
        assert port_is_free(ed.bridge_port)
    finally:
        ed.stop()


def test_addon_in_a_fresh_project_serves_status(tmp_path: Path, godot_bin: str) -> None:
    project = tmp_path / "fresh"
    project.mkdir()
    (project / "project.godot").write_text(
        'config_version=5\n\n[application]\n\nconfig/name="fresh"\n\n'
        "[editor_plugins]\n\n"
        'enabled=PackedStringArray("res://addons/godot_debug_connection/plugin.cfg")\n'
    )
    from harness import install_addon

    install_addon(project)
    ed = Editor(project)
    try:
        status = ed.start().wait_until_serving()
        assert status["sidecar"]["project"] == str(project.resolve())
        assert not (project / "demo").exists()
    finally:
        ed.stop()


def test_issue_11_every_tracked_script_has_its_uid_tracked() -> None:
    # Godot writes a `.uid` beside every script on first import; one missing from git gets a
    # different uid in every copy of the addon, and `uid://` references break between them.
    listed = subprocess.run(
        ["git", "ls-files", "--", "addons", "demo"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    tracked = set(listed)
    scripts = [p for p in listed if p.endswith(".gd")]
    assert scripts, "git lists no scripts under addons/ or demo/"
    missing = [p for p in scripts if p + ".uid" not in tracked]
    assert not missing, f"scripts without a tracked .uid: {missing}"
    for p in scripts:
        assert (REPO / (p + ".uid")).read_text().startswith("uid://"), p


def test_issue_11_gdscript_settings_read_godots_own_port_flags(godot_bin: str) -> None:
    lsp, dap = free_port(), free_port()
    cmd = [godot_bin, "--headless", "--path", str(REPO), "--lsp-port", str(lsp)]
    cmd += ["--dap-port", str(dap), "--script", "res://tests/gd/test_settings.gd"]
    proc = subprocess.run(
        [*cmd, "--", str(lsp), str(dap)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    summary = re.search(r"^gdscript: (\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert summary, output[-3000:]
    assert (int(summary[1]), int(summary[2])) == (18, 0), output[-3000:]
    # The one warning is the one for the `--lsp-port=N` form.
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "Godot ignores '--lsp-port=16505'" in warnings[0], warnings


@pytest.mark.usefixtures("godot_bin")
def test_issue_12_failed_start_leaves_nothing_behind(tmp_path: Path) -> None:
    # The agent port is taken, so the bridge cannot start. What it made for the session (the
    # editor-action runner among them) must still go when the editor quits: Godot reports any
    # object left undeleted at exit ("ObjectDB instances leaked at exit").
    ed = Editor(make_demo_project(tmp_path / "p"), extra_args=["--quit-after", "3000"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ed.bridge_port))
        taken.listen()
        try:
            ed.spawn()
            ed.wait_for(rf"cannot listen on 127\.0\.0\.1:{ed.bridge_port}", 120)
            assert ed.wait_exit(120) == 0
            output = ed.output_to_the_end()
            assert "GodotBridge sidecar started" not in output
            for leak in ("leaked at exit", "still in use at exit"):
                assert leak not in output, output[-3000:]
        finally:
            ed.stop()

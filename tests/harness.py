"""Start a real headless Godot editor with the addon and its sidecar, on free ports.

Every process started here is tracked by pid and killed on stop, even when a test fails.
Godot's output is read continuously (a full pty would block the editor's pump thread on
`print`), kept in memory and in a log file, and searched with `wait_for`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pexpect
import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
ADDON = REPO / "addons" / "godot_debug_connection"


# Set by `make unit` (pytest -m "not godot"): a test that starts Godot without asking for
# the `godot_bin` fixture (which marks it `godot`) would slip into the fast subset.
UNIT_ONLY = "GDB_UNIT_ONLY"
# The share of a property test's examples that `make unit` runs: enough to catch a broken
# codec in seconds; the whole suite runs them all.
UNIT_EXAMPLES_SHARE = 10
UNIT_EXAMPLES_MIN = 10


def examples(full: int) -> int:
    """Hypothesis examples for a property test that asks for `full` of them: all of them in
    the whole suite, a tenth (at least ten) in `make unit`. A test's own @settings wins over
    the `unit` profile loaded in conftest, so tests with a count of their own use this."""
    if os.environ.get(UNIT_ONLY):
        return max(UNIT_EXAMPLES_MIN, full // UNIT_EXAMPLES_SHARE)
    return full


def godot_binary() -> str:
    """The Godot editor binary: $GODOT, else what tools/install_godot prints last."""
    if os.environ.get(UNIT_ONLY):
        raise RuntimeError(
            "this test starts Godot but is not marked `godot`: ask for the godot_bin fixture"
        )
    env = os.environ.get("GODOT")
    if env:
        return env
    out = subprocess.run(
        [str(REPO / "tools" / "install_godot")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    return out.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when a server could listen on `port` now (as Godot's TCPServer does, with
    SO_REUSEADDR, so connections in TIME_WAIT don't count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def make_demo_project(dst: Path) -> Path:
    """A copy of the repository's demo project (project.godot, demo/, the addon) in `dst`."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "project.godot", dst / "project.godot")
    shutil.copytree(REPO / "demo", dst / "demo", dirs_exist_ok=True)
    install_addon(dst)
    return dst


def install_addon(project: Path) -> None:
    """Copy the addon into `project` as a user would."""
    target = project / "addons" / "godot_debug_connection"
    shutil.copytree(ADDON, target, dirs_exist_ok=True)


PLUGIN_CFG = "res://addons/godot_debug_connection/plugin.cfg"


def enable_addon(project: Path) -> None:
    """Enable the plugin in `project.godot` as the README says ([editor_plugins] enabled=...),
    keeping any plugin the project already enables."""
    settings = project / "project.godot"
    text = settings.read_text(encoding="utf-8")
    if PLUGIN_CFG in text:
        return
    line = re.search(r"^enabled=PackedStringArray\((.*)\)$", text, re.MULTILINE)
    if line is None:
        text = (
            text.rstrip("\n")
            + f'\n\n[editor_plugins]\n\nenabled=PackedStringArray("{PLUGIN_CFG}")\n'
        )
    else:
        listed = f"{line.group(1)}, " if line.group(1).strip() else ""
        entry = f'enabled=PackedStringArray({listed}"{PLUGIN_CFG}")'
        text = text[: line.start()] + entry + text[line.end() :]
    settings.write_text(text, encoding="utf-8")


REAL_PROJECTS = REPO / "tests" / "projects"


def make_real_project(name: str, dst: Path) -> Path:
    """A copy of the vendored game `tests/projects/<name>` in `dst`, the addon installed and
    enabled the way the README tells a user to."""
    shutil.copytree(REAL_PROJECTS / name, dst, dirs_exist_ok=True)
    install_addon(dst)
    enable_addon(dst)
    return dst


def settings_home(root: Path, settings: dict[str, Any]) -> dict[str, str]:
    """Environment for editors whose editor settings file holds `settings` (the file Godot
    reads is `editor_settings-<major.minor>.tres`, so the running Godot's version names it)."""
    version = subprocess.run(
        [godot_binary(), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    major_minor = ".".join(version.splitlines()[-1].split(".")[:2])
    (root / "godot").mkdir(parents=True, exist_ok=True)
    lines = ['[gd_resource type="EditorSettings" format=3]', "", "[resource]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    (root / "godot" / f"editor_settings-{major_minor}.tres").write_text("\n".join(lines) + "\n")
    return {"XDG_CONFIG_HOME": str(root)}


class Editor:
    """One headless Godot editor on a project, with the bridge on a free port."""

    def __init__(
        self,
        project: Path,
        *,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        token: str | None = None,
        flags_only: bool = False,
        port_flags: bool = True,
    ) -> None:
        self.project = project
        # Godot's --lsp-port/--dap-port flags only, no GODOT_LSP_PORT/GODOT_DAP_PORT in the
        # environment: how a user starts an editor on other ports.
        self.flags_only = flags_only
        # False: no --lsp-port/--dap-port either, the ports come from the editor settings.
        self.port_flags = port_flags
        # Sent as a bearer token by wait_until_serving, for a bridge that needs one.
        self.token = token
        self.bridge_port = free_port()
        self.lsp_port = free_port()
        self.dap_port = free_port()
        self.log_path = log_path or project / "editor.log"
        self.extra_args = extra_args or []
        self.extra_env = env or {}
        self.child: pexpect.spawn | None = None
        self.output = ""
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._pids: set[int] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def start(self, timeout: float = 120.0) -> Editor:
        self.spawn(timeout)
        self.wait_for(r"GodotBridge HTTP server listening on 127\.0\.0\.1:\d+", timeout)
        self.wait_until_serving(timeout)
        return self

    def spawn(self, timeout: float = 120.0) -> None:
        """Starts the editor process and the reader of its output; waits for nothing."""
        env = dict(os.environ)
        env.update(
            {
                "GODOT_BRIDGE_PORT": str(self.bridge_port),
                "GODOT_LSP_PORT": str(self.lsp_port),
                "GODOT_DAP_PORT": str(self.dap_port),
                "GODOT_BRIDGE_PYTHON": sys.executable,
                "NO_COLOR": "1",
            }
        )
        env.update(self.extra_env)
        if "XDG_CONFIG_HOME" not in self.extra_env:
            # Editor settings of its own (Godot creates its defaults there), never the user's
            # ~/.config/godot file, which every editor of the machine reads and writes.
            config = Path(tempfile.mkdtemp(prefix="config-", dir=self.project.parent))
            env.update(settings_home(config, {}))
        if self.flags_only:
            env.pop("GODOT_LSP_PORT", None)
            env.pop("GODOT_DAP_PORT", None)
        args = ["--headless", "--editor", "--path", str(self.project)]
        if self.port_flags:
            args += ["--lsp-port", str(self.lsp_port), "--dap-port", str(self.dap_port)]
        args += self.extra_args
        self.child = pexpect.spawn(
            godot_binary(),
            args,
            env=env,
            encoding="utf-8",
            codec_errors="replace",
            timeout=timeout,
            dimensions=(50, 400),
        )
        self._pids.add(self.child.pid)
        self._reader = threading.Thread(target=self._read, name="editor-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.child is not None
        with open(self.log_path, "a", encoding="utf-8") as log:
            while True:
                try:
                    chunk = self.child.read_nonblocking(65536, timeout=0.2)
                except pexpect.TIMEOUT:
                    continue
                except (pexpect.EOF, OSError, ValueError):
                    break
                log.write(chunk)
                log.flush()
                with self._cond:
                    self.output += chunk
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match[str]:
        """The first match of `pattern` in the editor's output after offset `start`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = regex.search(self.output, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self._reader is not None and not self._reader.is_alive()):
                    tail = self.output[-3000:]
                    raise AssertionError(f"editor never printed /{pattern}/; output tail:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def mark(self) -> int:
        """An offset into the output, to look only at what comes after it."""
        with self._cond:
            return len(self.output)

    def count(self, pattern: str, start: int = 0) -> int:
        with self._cond:
            return len(re.findall(pattern, self.output[start:]))

    def wait_until_serving(self, timeout: float = 60.0) -> dict[str, Any]:
        """Polls `GET /status` until the sidecar answers 200."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                auth = {"Authorization": f"Bearer {self.token}"} if self.token else None
                status = get_json(self.base_url + "/status", timeout=2, headers=auth)
                self._pids.add(int(status["sidecar"]["pid"]))
                return status
            except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
                last = exc
                time.sleep(0.1)
        raise AssertionError(f"bridge never served /status: {last}\n{self.output[-3000:]}")

    def wait_until_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Polls `GET /status` until both of Godot's services are connected (overall_ready)."""
        deadline = time.monotonic() + timeout
        status = self.wait_until_serving(timeout)
        while not status["overall_ready"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"services never both ready: {status}\n{self.output[-2000:]}")
            time.sleep(0.1)
            status = self.wait_until_serving(max(deadline - time.monotonic(), 1.0))
        return status

    def sidecar_pids(self) -> list[int]:
        """Pids of live sidecar processes started by this editor."""
        found = []
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in psutil.Process(self.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    # `python -m sidecar ...`: not a game whose project path says "sidecar".
                    if p.cmdline()[1:3] == ["-m", "sidecar"]:
                        found.append(p.pid)
        self._pids.update(found)
        return found

    def wait_exit(self, timeout: float) -> int | None:
        assert self.child is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.isalive():
                return self.child.exitstatus
            time.sleep(0.05)
        raise AssertionError("editor did not exit")

    def output_to_the_end(self, timeout: float = 10.0) -> str:
        """All the editor printed, once it exited: waits until its output is read to the end."""
        assert self.child is not None and self._reader is not None
        self._reader.join(timeout)
        assert not self._reader.is_alive(), "the editor's output did not end"
        return self.output

    def stop(self) -> None:
        """Ends the editor and everything it started, by pid."""
        if self.child is not None:
            with contextlib.suppress(psutil.Error):
                for p in psutil.Process(self.child.pid).children(recursive=True):
                    self._pids.add(p.pid)
        for pid in self._pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.child is not None:
            with contextlib.suppress(Exception):
                self.child.close(force=True)
        if self._reader is not None:
            self._reader.join(timeout=5)
        for pid in self._pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


def get_json(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket, buf: bytearray | None = None) -> RawResponse:
    """Reads one HTTP/1.1 response with a Content-Length body from `sock`.

    `buf` carries bytes already read past the previous response (pipelining).
    """
    buf = buf if buf is not None else bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete response head: {bytes(buf)!r}")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of a response body")
        body += chunk
    buf[:] = body[length:]
    return RawResponse(status, headers, bytes(body[:length]))


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- one JSON request to the bridge, as the real-editor tests make it -------------------------


def call_json(
    editor: Editor | str,
    method: str,
    path: str,
    body: Any = None,
    agent: str | None = "tester",
    timeout: float = 30.0,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """(HTTP status, JSON answer) of one request to the bridge of `editor` (or a base URL).

    `agent` is sent as X-Agent-Id (None: no header, a connection-scoped agent); `raw` is sent
    as the body instead of `body` encoded (malformed JSON, say). An HTTP error is an answer
    too: its status and JSON body are returned, not raised.
    """
    base = editor if isinstance(editor, str) else editor.base_url
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if agent is not None:
        req.add_header("X-Agent-Id", agent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def ok_json(
    editor: Editor | str,
    method: str,
    path: str,
    body: Any = None,
    agent: str | None = "tester",
    timeout: float = 30.0,
) -> Any:
    """The answer of a request that must succeed (200, "status": "ok").

    GET /status answers the seed's shape at the top level, so that is returned whole;
    every other endpoint's answer is in "result", which is returned.
    """
    status, answer = call_json(editor, method, path, body, agent, timeout)
    assert status == 200 and answer["status"] == "ok", (method, path, status, answer)
    return answer if path == "/status" else answer["result"]


def query(endpoint: str, /, **params: Any) -> str:
    """`endpoint` with `params` as its query string (a parameter may be called `path`)."""
    return f"{endpoint}?{urllib.parse.urlencode(params)}"


def latest_event(editor: Editor, agent: str | None = "tester") -> int:
    """The number of the newest entry of the debug event log."""
    return int(ok_json(editor, "GET", "/debug/events", agent=agent)["latest"])


def wait_event(
    editor: Editor, since: int, names: set[str], timeout: float = 20, agent: str | None = "tester"
) -> dict[str, Any]:
    """The first event named in `names` after event `since` (long-polls /debug/events)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = ok_json(editor, "GET", query("/debug/events", since=since, wait=2), agent=agent)
        for event in page["events"]:
            if event["event"] in names:
                return dict(event)
        since = page["next"]
    raise AssertionError(f"no {sorted(names)} event within {timeout} s")


# Tests of rendered games need Debian's Xvfb. `make test` installs it (tools/ensure_xvfb), so
# they skip only in a hand-run pytest on a machine without it; under CI (CI set) they run
# and fail, so a missing Xvfb never hides as a skip.
needs_xvfb = pytest.mark.skipif(
    shutil.which("Xvfb") is None and not os.environ.get("CI"),
    reason="Xvfb is not installed (`make display` installs it; `make test` does first): "
    "without it a game cannot render, which is what this test checks",
)


def game_processes(editor: Editor) -> list[psutil.Process]:
    """The games the editor runs: its children that talk to the editor's remote debugger."""
    games = []
    for child in psutil.Process(editor.pid).children(recursive=True):
        try:
            if "--remote-debug" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                games.append(child)
        except psutil.Error:
            continue
    return games


def offline_routes() -> Any:
    """The route table a sidecar serves (`Sidecar.routes`), built without starting anything."""
    from sidecar.app import Sidecar
    from sidecar.config import Config

    config = Config(
        project=".",
        link_port=None,
        link_token="",
        serve_port=None,
        lsp_port=6005,
        dap_port=6006,
    )
    return Sidecar(config).routes


def wait_connected(editor: Editor, display: str | None = None) -> dict[str, Any]:
    """`/status` once the debug adapter is connected and the sidecar knows where games
    render (`display`, when given, must be that mode)."""
    deadline = time.monotonic() + 60
    while True:
        status: dict[str, Any] = ok_json(editor, "GET", "/status")
        mode = status["game_display"]["mode"]
        if status["debug_adapter"]["state"] == "connected" and mode != "unknown":
            assert display is None or mode == display, status["game_display"]
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def end_game(editor: Editor, timeout: float = 20.0) -> None:
    """Terminate the game and wait until it is gone (the next test may want no game)."""
    call_json(editor, "POST", "/debug/terminate", {})
    deadline = time.monotonic() + timeout
    while call_json(editor, "GET", "/game/tree")[0] != 409:
        assert time.monotonic() < deadline, "the game outlived /debug/terminate"
        time.sleep(0.2)


def wait_for_main(editor: Editor, timeout: float = 40.0) -> dict[str, Any]:
    """The game's tree once the launched demo answers with its Main scene in it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = call_json(editor, "GET", "/game/tree")
        status, answer = last
        if status == 200 and any(c["name"] == "Main" for c in answer["result"]["root"]["children"]):
            return answer["result"]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"the game's tree never came: {last}")

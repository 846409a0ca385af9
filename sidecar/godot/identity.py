"""Proof that a port belongs to *this* sidecar's editor before anything is sent to it.

Ports are easy to get wrong (an environment variable left over, another editor on the
default 6005/6006), and a DAP `initialize` clears the breakpoints of whichever editor
receives it. The addon hands over its editor's pid (`--editor-pid`); before a handshake
the sidecar checks that the process listening on the port is that editor. Another Godot
process there is another editor: `wrong_editor`. Where the operating system will not tell
(no permission, a psutil before 6), or the listener is not Godot at all (a relay, an SSH
tunnel, a container's port forwarder), the check says "unknown" and the LSP's own project
root (see godot/lsp/session.py) is the remaining proof.

psutil is a dependency of the sidecar because it answers "who listens on this port" on
Linux, macOS and Windows alike; reading /proc by hand would cover Linux only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

import psutil

from sidecar.errors import TransportError, WrongEditor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listener:
    """Who serves a port, as far as the operating system tells."""

    ours: bool | None  # True: our editor; False: someone else; None: cannot tell
    pid: int | None = None  # the other process, when known
    project: str | None = None  # its project directory, when known
    absent: bool = False  # nobody listens on the port at all (yet): nothing to connect to


def project_of(pid: int) -> str | None:
    """The project directory of a Godot process: its `--path`, else its working directory."""
    try:
        proc = psutil.Process(pid)
        args = proc.cmdline()
        cwd = proc.cwd()
    except (psutil.Error, OSError):
        return None
    for i, arg in enumerate(args):
        if arg in ("--path", "-path") and i + 1 < len(args):
            return os.path.normpath(os.path.join(cwd, args[i + 1]))
        if arg.startswith("--path="):
            return os.path.normpath(os.path.join(cwd, arg.split("=", 1)[1]))
    return cwd


def listener_of(port: int, editor_pid: int | None) -> Listener:
    """Whether `editor_pid` is the process listening on TCP `port` (blocking; run in a thread)."""
    if editor_pid is None:
        return Listener(None)
    try:
        mine = psutil.Process(editor_pid).net_connections(kind="tcp")
    except (psutil.Error, OSError, AttributeError) as exc:  # AttributeError: psutil < 6
        log.debug("cannot list the editor's sockets: %s", exc)
        return Listener(None)
    if any(_listens(c, port) for c in mine):
        return Listener(True)
    listeners = _listeners(port)
    if listeners is not None and not listeners:
        return Listener(None, absent=True)  # the editor has not opened its server yet
    other = next((pid for pid in listeners or [] if pid is not None), None)
    if other is None:
        return Listener(None)  # someone we may not look at: maybe a relay to our editor
    project = project_of(other)
    return Listener(False if is_godot(other) else None, other, project)


def is_godot(pid: int) -> bool:
    """Whether `pid` runs a Godot binary (Godot_v4.3-stable_linux.x86_64, godot4, ...)."""
    try:
        proc = psutil.Process(pid)
        names = [proc.name(), *proc.cmdline()[:1]]
    except (psutil.Error, OSError):
        return False
    return any("godot" in os.path.basename(n).lower() for n in names)


def _listens(conn: object, port: int) -> bool:
    laddr = getattr(conn, "laddr", None)
    status = getattr(conn, "status", None)
    return status == "LISTEN" and bool(laddr) and getattr(laddr, "port", None) == port


def _listeners(port: int) -> list[int | None] | None:
    """The pids listening on `port` (None for a process we may not look at), or None when
    the system will not list sockets (macOS needs root for this)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError, AttributeError):  # AttributeError: psutil < 6
        return None
    return [None if c.pid is None else int(c.pid) for c in conns if _listens(c, port)]


def editor_of_link(link_port: int | None) -> int | None:
    """The editor's pid when the addon did not pass it: our parent, if it serves the link.

    The addon listens on the link port and spawns us, so a parent listening there is the
    editor (an older addon that does not pass --editor-pid, or a wrapper script in between,
    which then gives None).
    """
    if link_port is None:
        return None
    parent = os.getppid()
    found = listener_of(link_port, parent)
    return parent if found.ours else None


def mismatch_message(service: str, port: int, project: str, other: str | None) -> str:
    """The sentence /status shows for a port served by another editor."""
    theirs = f"the editor of project {other}" if other else "another process (not this editor)"
    return (
        f"wrong editor: port {port} ({service}) is served by {theirs}, not by this sidecar's "
        f"editor of project {project}; nothing was sent to it. Start the editor with its own "
        "--lsp-port/--dap-port (or fix GODOT_LSP_PORT/GODOT_DAP_PORT); probing again every "
        "few seconds"
    )


class EditorIdentity:
    """Checks, before each handshake, that a port is served by the editor that started us."""

    def __init__(self, editor_pid: int | None, project: str) -> None:
        self.editor_pid = editor_pid
        self.project = project

    async def check(self, service: str, port: int) -> bool | None:
        """True: proven ours; None: cannot tell; raises WrongEditor when it is someone else's,
        TransportError when nobody listens there yet. Opens no connection."""
        found = await asyncio.to_thread(listener_of, port, self.editor_pid)
        if found.absent:
            # As a refused connection would say, without knocking on anyone's door.
            raise TransportError(
                f"nothing listens on port {port} ({service}) yet",
                code="not_connected",
                details={"service": service, "state": "absent"},
            )
        if found.ours is False:
            raise WrongEditor(
                mismatch_message(service, port, self.project, found.project),
                details={"service": service, "state": "wrong_editor", "other_pid": found.pid},
            )
        return found.ours


# -- the games an editor launches (process inspection for dap.py) --------------------


def cmdline(pid: int) -> list[str]:
    """A live process's command line; [] for one that is gone (or a zombie)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return []
        return list(proc.cmdline())
    except (psutil.Error, OSError):  # gone, or not ours to look at
        return []


def _option(cmd: list[str], name: str) -> str | None:
    """The value of `name value` (or `name=value`) on a command line."""
    for i, arg in enumerate(cmd):
        if arg == name and i + 1 < len(cmd):
            return cmd[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def is_game_of(
    cmd: list[str], project: str, exe: str | None = None, editor_pid: int | None = None
) -> bool:
    """A Godot game on `project` under a remote debugger: what the editor launches.

    A game carrying `--editor-pid` (Godot 4.4+) must name `editor_pid` when that is known:
    two editors on one project must not end each other's games.
    """
    if not cmd or "--remote-debug" not in cmd:
        return False
    binary = cmd[0]
    if "godot" not in os.path.basename(binary).lower() and binary != exe:
        return False
    path = _option(cmd, "--path")
    if path is None or os.path.realpath(path) != os.path.realpath(project):
        return False
    launcher = _option(cmd, "--editor-pid")
    return editor_pid is None or launcher is None or launcher == str(editor_pid)


def games_of(editor_pid: int, project: str, exe: str | None = None) -> list[int]:
    """The pids of the games `editor_pid` runs on `project` (blocking; run in a thread)."""
    try:
        children = psutil.Process(editor_pid).children(recursive=True)
    except (psutil.Error, OSError):
        return []
    return [c.pid for c in children if is_game_of(cmdline(c.pid), project, exe, editor_pid)]


class ProcessWatch:
    """One process, recognised again later: its pid may have gone to another process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._started = _started(pid)

    def gone(self) -> bool:
        """Whether the process ended (a zombie has ended too) or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except (psutil.Error, OSError):
            return True
        # Unknown at the start: it had ended already.
        return self._started is None or _started(self.pid) != self._started


def _started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None

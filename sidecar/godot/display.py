"""A virtual X display (Xvfb) for games launched by a headless editor, so they can render.

A game started without `--headless` needs a display; with `DISPLAY` naming an Xvfb and
`--rendering-driver opengl3` it renders on Mesa's software OpenGL (llvmpipe), invisible,
and answers screenshots with real pixels. The bridge starts the Xvfb itself and stops it.

A game renders on the display as long as it runs, and the agents' game outlives a sidecar that
restarts while its editor lives (issue 11). So a display made for an editor (`keep_for`, the
editor's pid) runs under a small keeper process (`python -m sidecar.godot.display`): the
Xvfb dies with its keeper, and the keeper ends when it is told to (SIGTERM: the sidecar's
`stop`) or when the editor ends, whatever way. A sidecar leaving while a game renders there
can `leave` the display running instead of stopping it; the next sidecar finds it again
(the addon still names it) and the keeper ends it with the editor.

Without an editor to keep it for, the Xvfb is the sidecar's own child: it is started with
the parent-death signal (prctl PR_SET_PDEATHSIG) set to SIGTERM, so it never outlives the
sidecar, whatever way the sidecar ends (even SIGKILL). The kernel ties that signal to the
thread that started the Xvfb: start it from the event loop's thread, which lives as long as
the sidecar, never from a worker thread that may end first. An Xvfb killed hard leaves its lock
file behind; `stop` removes it, and the display search takes a number whose lock names a
dead process (Xvfb replaces a stale lock itself), so stale ones never use the numbers up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

INSTALL_HINT = (
    "install Debian's xvfb and libgl1-mesa-dri (as root: tools/ensure_xvfb, or "
    "apt-get install xvfb libgl1-mesa-dri)"
)
# Where X servers of this machine announce themselves.
SOCKET_DIR = Path("/tmp/.X11-unix")
LOCK_DIR = Path("/tmp")
FIRST_NUMBER = 90  # above what desktops and CI services usually take
NUMBER_ATTEMPTS = 20
READY_TIMEOUT = 10.0  # seconds for an Xvfb to accept connections
STOP_TIMEOUT = 3.0  # seconds between SIGTERM and SIGKILL
POLL = 0.05
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Started:
    """An Xvfb is up: `display` is what `DISPLAY` must say, `pid` its process."""

    display: str
    pid: int


@dataclass(frozen=True)
class Unavailable:
    """No virtual display could be started; `reason` says why and what to do."""

    reason: str


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the sidecar (its parent) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _socket_path(number: int) -> Path:
    return SOCKET_DIR / f"X{number}"


def _lock_path(number: int) -> Path:
    return LOCK_DIR / f".X{number}-lock"


def _taken(number: int) -> bool:
    """A live X server has `number`: its socket answers, or its lock names a live process.

    A server killed hard (SIGKILL: a test's clean-up, the OOM killer) leaves its lock and
    socket behind, naming a dead process: such a number is free, and Xvfb replaces the
    stale lock itself. A lock that cannot be read is someone else's: left alone.
    """
    if _accepts(number):
        return True
    try:
        pid = int(_lock_path(number).read_text().strip())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _accepts(number: int) -> bool:
    """True when the X server of `number` accepts a connection on its socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(_socket_path(number)))
        except OSError:
            return False
        return True


def _owned_by(number: int, pid: int) -> bool:
    """Whether the X server of `number` is ours: its lock names `pid` or a child of it (the
    keeper's Xvfb). Two sidecars may try one number at the same moment: the one whose Xvfb
    lost the race must not take the winner's display for its own (its games would lose
    their display when the other editor ends)."""
    try:
        owner = int(_lock_path(number).read_text().strip())
    except (OSError, ValueError):
        return False
    if owner == pid:
        return True
    with contextlib.suppress(psutil.Error):
        return psutil.Process(owner).ppid() == pid
    return False


class VirtualDisplay:
    """One Xvfb, started and stopped by its owner (the sidecar, or a test)."""

    def __init__(
        self,
        *,
        width: int = 1280,
        height: int = 720,
        depth: int = 24,
        first_number: int = FIRST_NUMBER,
        attempts: int = NUMBER_ATTEMPTS,
        ready_timeout: float = READY_TIMEOUT,
        keep_for: int | None = None,
    ) -> None:
        self.screen = f"{width}x{height}x{depth}"
        self.first_number = first_number
        self.attempts = attempts
        self.ready_timeout = ready_timeout
        self.keep_for = keep_for  # the editor's pid: the Xvfb runs under a keeper while it lives
        self.number: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def display(self) -> str | None:
        """`:N` while the Xvfb runs, else None."""
        return f":{self.number}" if self.number is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def env(self) -> dict[str, str]:
        """The environment a game needs to render here (empty when not started)."""
        return {"DISPLAY": self.display} if self.display is not None else {}

    async def start(self) -> Started | Unavailable:
        """Start an Xvfb on the first free display number; say why not when it cannot."""
        if self._process is not None and self.display is not None:
            return Started(self.display, self._process.pid)
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            return Unavailable(f"Xvfb is not installed: {INSTALL_HINT}")
        last = "every display number tried was taken"
        for number in range(self.first_number, self.first_number + self.attempts):
            if _taken(number):
                continue
            outcome = await self._try(xvfb, number)
            if isinstance(outcome, Started):
                return outcome
            last = outcome.reason
        return Unavailable(
            f"no Xvfb could start on displays :{self.first_number} to "
            f":{self.first_number + self.attempts - 1}: {last}"
        )

    async def _try(self, xvfb: str, number: int) -> Started | Unavailable:
        command = [xvfb, f":{number}", "-screen", "0", self.screen, "-nolisten", "tcp"]
        if self.keep_for is not None:
            # Not tied to the sidecar: the keeper ends with the editor, or when stopped.
            keeper = [sys.executable, "-m", "sidecar.godot.display", str(self.keep_for)]
            process = await asyncio.create_subprocess_exec(
                *keeper,
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C meant for the sidecar is not for it
            )
        else:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if process.returncode is not None:
                # Lost a race for the number, or cannot run at all: its words say which.
                err = b"" if process.stderr is None else await process.stderr.read()
                words = err.decode("utf-8", "replace").strip().splitlines()
                return Unavailable(f"Xvfb :{number} exited ({words[-1] if words else 'no output'})")
            if _accepts(number) and _owned_by(number, process.pid):
                self._process, self.number = process, number
                # Nobody reads its complaints from now on: a full pipe must never block it.
                if process.stderr is not None:
                    self._drain = asyncio.ensure_future(_drain(process.stderr))
                return Started(f":{number}", process.pid)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), POLL)
        await _end(process)
        return Unavailable(f"Xvfb :{number} did not accept connections in {self.ready_timeout} s")

    def terminate(self) -> None:
        """Tell the Xvfb (its keeper) to end now, without waiting: `stop` waits for it. For a
        sidecar told to stop, which the addon may kill as soon as the link is down."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)

    async def leave(self) -> None:
        """Leave the display running for a game that renders there (its keeper ends it
        with the editor); this object forgets it."""
        self._process, self.number = None, None
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; the display number is free again."""
        process, number = self._process, self.number
        self._process, self.number = None, None
        if process is None:
            return
        await _end(process)
        if self._drain is not None:
            await self._drain
            self._drain = None
        if number is not None:
            # Only ours: a lock naming a dead pid, left by a hard kill (the Xvfb's own pid
            # is the keeper's child, not ours to know: any dead one will do).
            lock = _lock_path(number)
            with contextlib.suppress(OSError, ValueError):
                if not _alive(int(lock.read_text().strip())):
                    lock.unlink()
                    _socket_path(number).unlink(missing_ok=True)


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(65536):
            pass


@dataclass(frozen=True)
class GameDisplay:
    """Where the games of this sidecar's editor show their window (for /status and the
    screenshot's 409): `virtual` on the bridge's own Xvfb (or a display the user named),
    `window` as usual (a GUI editor), `headless` nowhere, `unknown` before the editor said."""

    mode: str  # "virtual" | "window" | "headless" | "unknown"
    display: str | None
    reason: str

    def as_json(self) -> dict[str, str | None]:
        return {"mode": self.mode, "display": self.display, "reason": self.reason}


def accepts(display: str) -> bool:
    """Whether an X server answers on `display` (`:N`) of this machine."""
    return display.startswith(":") and display[1:].isdigit() and _accepts(int(display[1:]))


KEEPER_POLL = 0.5  # seconds between looks at the editor


def keep(editor_pid: int, command: list[str]) -> int:
    """The keeper: run `command` (the Xvfb) until the editor `editor_pid` ends or we are
    told to stop (SIGTERM/SIGINT); the Xvfb dies with us whatever way we end."""
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None and not stopping and _alive(editor_pid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(KEEPER_POLL)
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode or 0


if __name__ == "__main__":
    sys.exit(keep(int(sys.argv[1]), sys.argv[2:]))

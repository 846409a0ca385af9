"""`POST /execute/reload`: the editor rescans its files and reloads changed scripts.

For files changed behind the bridge's back (an agent writing to disk itself; edits made
through `/edit/applyChanges` or `/lsp/didSave` are reloaded by Godot already). The addon's
`reload_scripts` action (docs/LINK.md) runs on the editor's main thread: it rescans the
editor filesystem, recompiles each changed script in the editor and sends the running
game, if any, Godot's own `reload_scripts` debugger message. Documents agents hold open
in the shared LSP session then take the text on disk, so Godot's language server sees
what the editor compiled.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from sidecar.errors import PeerTimeout, ProtocolError, TransportError
from sidecar.project.documents import DocumentStore
from sidecar.project.paths import ProjectPaths
from sidecar.web.http import RouteTable
from sidecar.web.operation import Answer, Arguments, Caller, Operation

# Reloading compiles every changed script on the editor's main thread (and an unfocused
# GUI editor runs ~10 frames a second): more patience than a DAP/LSP request.
RELOAD_TIMEOUT = 30.0


class EditorActionError(ProtocolError):
    """The editor ran the action and reported a failure."""

    code = "editor_action_failed"


class _Lsp(Protocol):
    @property
    def paths(self) -> ProjectPaths: ...

    @property
    def documents(self) -> DocumentStore: ...


class _Dap(Protocol):
    @property
    def stopped(self) -> object | None: ...


class EditorHost(Protocol):
    """What these endpoints need of `app.Sidecar` (a fake in unit tests)."""

    @property
    def lsp_session(self) -> _Lsp: ...

    @property
    def dap_session(self) -> _Dap: ...

    async def editor_action(self, name: str, args: dict[str, Any], timeout: float = ...) -> Any: ...


class ReloadArguments(Arguments):
    paths: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        description="the files to reload (res://, project-relative, absolute or file://); "
        "absent: every script changed on disk since the last reload",
        examples=[["res://player.gd"]],
    )


class ReloadError(Answer):
    path: str = Field(description="res:// path of the file")
    message: str = Field(description="why it was not reloaded (Godot's parse error, if any)")
    line: int | None = Field(
        None,
        description="1-based, as Godot's console shows it (Godot 4.5+); the same parse "
        "error is line - 1 in /lsp/diagnostics, whose lines are LSP's (0-based)",
    )


class Reloaded(Answer):
    rescanned: bool = Field(description="the editor rescanned its filesystem")
    scripts: list[str] = Field(description="scripts reloaded in the editor (res:// paths)")
    removed: list[str] = Field(description="scripts gone from disk since the last reload")
    errors: list[ReloadError] = Field(description="files not reloaded, and why")
    documents: list[str] = Field(
        description="open LSP documents that took the text on disk (res:// paths)"
    )
    game_running: bool
    game_reload: Literal["not_running", "nothing_to_reload", "next_frame", "pending_until_resume"]
    game_reloaded: bool = Field(
        description="the game applies it on its next frame (false while it is stopped)"
    )


RELOAD = Operation(
    name="reload",
    effect="change",
    path="/execute/reload",
    summary="editor: rescan files, reload changed scripts (paths optional), hot-reload the game",
    description="For files changed behind the bridge's back; edits through "
    "/edit/applyChanges or /lsp/didSave are reloaded by Godot already.",
    arguments=ReloadArguments,
    answer=Reloaded,
    errors=(
        "invalid_field",
        "outside_project",
        "no_editor",
        "timeout",
        "editor_action_failed",
        "bad_peer_message",
    ),
    tags=("editor",),
)

OPERATIONS = (RELOAD,)


def requested_paths(raw: list[str] | None, paths: ProjectPaths) -> list[str] | None:
    """`paths` as res:// paths, once each; None when absent (the editor finds changes).

    403 for a path outside the project, 400 naming the item for a bad spelling.
    """
    if raw is None:
        return None
    out: list[str] = []
    for i, item in enumerate(raw):
        res = paths.resolve(item, f"paths[{i}]").res
        if res not in out:
            out.append(res)
    return out


async def run_action(host: EditorHost, name: str, args: dict[str, Any], timeout: float) -> Any:
    """The result of editor action `name`: 503 without an editor, 504 when it is late."""
    try:
        return await host.editor_action(name, args, timeout)
    except (asyncio.TimeoutError, TimeoutError):  # one class from Python 3.11 on
        raise PeerTimeout(
            f"the editor did not finish '{name}' within {timeout:g} s; it may still be "
            "working (a busy or unfocused editor runs few frames), retry later",
            details={"action": name},
        ) from None
    except TransportError:
        raise
    except RuntimeError as exc:  # the addon's `ok: false`
        raise EditorActionError(f"the editor refused '{name}': {exc}") from None
    except Exception as exc:  # the link dropped mid-request (link.LinkClosed)
        raise TransportError(
            f"the link to the editor closed during '{name}' ({exc}); retry in a second",
            code="no_editor",
        ) from None


async def refresh_documents(lsp: _Lsp, res_paths: list[str]) -> list[str]:
    """Open documents among `res_paths` take the text on disk; returns those refreshed."""
    refreshed: list[str] = []
    for res in res_paths:
        f = lsp.paths.try_resolve(res)
        doc = lsp.documents.get(f) if f is not None else None
        if f is None or doc is None:
            continue
        try:
            text = await asyncio.to_thread(_read_text, lsp.paths.path(f))
        except (OSError, UnicodeDecodeError):
            continue
        if text != doc.text:
            await lsp.documents.replace(f, text)
            refreshed.append(f.res)
    return refreshed


def game_reload(result: dict[str, Any], stopped: bool) -> str:
    """What the game does with the reload the editor sent it.

    The game's RemoteDebugger only notes the paths when the message arrives and reloads
    them in its next idle poll (core/debugger/remote_debugger.cpp, `poll_events`). While
    the game is stopped in the debugger it runs no frames: the reload waits until it
    continues (a step may stop again before that). A second reload sent while stopped
    replaces the paths of the first.
    """
    if not result.get("game_running"):
        return "not_running"
    if not result.get("game_reloaded"):
        return "nothing_to_reload"
    return "pending_until_resume" if stopped else "next_frame"


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


def register(routes: RouteTable, host: EditorHost) -> None:
    """Serve `POST /execute/reload`."""

    async def reload(args: ReloadArguments, caller: Caller) -> dict[str, Any]:
        lsp = host.lsp_session
        paths = requested_paths(args.paths, lsp.paths)
        action: dict[str, Any] = {} if paths is None else {"paths": paths}
        result = await run_action(host, "reload_scripts", action, RELOAD_TIMEOUT)
        if not isinstance(result, dict):
            raise ProtocolError(f"the editor answered reload_scripts with {result!r}")
        touched = list(result.get("scripts") or [])
        touched += [e["path"] for e in result.get("errors") or [] if isinstance(e, dict)]
        result["documents"] = await refresh_documents(lsp, [p for p in touched if p])
        when = game_reload(result, host.dap_session.stopped is not None)
        result["game_reload"] = when
        # Reloaded means applied: not yet while the game is stopped (issue 11).
        result["game_reloaded"] = when == "next_frame"
        return result

    routes.serve(RELOAD, reload)

"""Settings of one sidecar run, from the command line and the environment."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    project: str
    link_port: int | None
    link_token: str
    serve_port: int | None
    lsp_port: int
    dap_port: int
    godot_host: str = "127.0.0.1"
    request_timeout: float = 10.0
    max_clients: int = 100
    # Agents must send `Authorization: Bearer <token>` when set (sidecar/web/guard.py).
    token: str = ""
    # The editor that started us (the addon passes OS.get_process_id()): a port must be served
    # by this process before any handshake (sidecar/godot/identity.py). None: cannot be checked.
    editor_pid: int | None = None
    # Requests in flight at Godot's language server, in all and for one agent; 0: the
    # session's defaults (GODOT_BRIDGE_LSP_WINDOW / GODOT_BRIDGE_LSP_PER_AGENT, for measuring).
    lsp_window: int = 0
    lsp_per_agent: int = 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        prog="python -m sidecar",
        description="Serve many agents' HTTP requests for one Godot editor (started by the addon).",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--link-port", type=int, help="addon's link port on 127.0.0.1")
    mode.add_argument(
        "--serve", type=int, metavar="PORT", help="serve HTTP directly on 127.0.0.1:PORT (no addon)"
    )
    p.add_argument("--project", default=os.getcwd(), help="the Godot project's directory")
    # The addon passes its agents' port; the addon itself listens there, the sidecar never does.
    p.add_argument("--bridge-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--lsp-port", type=int, default=_env_int("GODOT_LSP_PORT", 6005))
    p.add_argument("--dap-port", type=int, default=_env_int("GODOT_DAP_PORT", 6006))
    p.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("GODOT_BRIDGE_TIMEOUT", "10")),
        help="seconds to wait for Godot before answering 504",
    )
    p.add_argument("--max-clients", type=int, default=_env_int("GODOT_BRIDGE_MAX_CLIENTS", 100))
    p.add_argument(
        "--editor-pid",
        type=int,
        default=None,
        help="pid of the editor whose LSP/DAP ports these are (checked before connecting)",
    )
    args = p.parse_args(argv)
    return Config(
        project=os.path.abspath(args.project),
        link_port=args.link_port,
        link_token=os.environ.pop("GODOT_BRIDGE_LINK_TOKEN", ""),
        serve_port=args.serve,
        lsp_port=args.lsp_port,
        dap_port=args.dap_port,
        request_timeout=args.timeout,
        max_clients=args.max_clients,
        token=os.environ.get("GODOT_BRIDGE_TOKEN", "").strip(),
        editor_pid=args.editor_pid,
        lsp_window=_env_int("GODOT_BRIDGE_LSP_WINDOW", 0),
        lsp_per_agent=_env_int("GODOT_BRIDGE_LSP_PER_AGENT", 0),
    )

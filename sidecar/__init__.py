"""Sidecar of the godot_debug_connection addon: HTTP for many agents over one DAP/LSP session."""

from __future__ import annotations

__version__ = "0.1.0"

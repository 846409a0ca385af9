"""Talking to Godot: message framing, peers, DAP and LSP protocol sessions."""

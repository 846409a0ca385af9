"""The running game, as its remote-debugger messages describe it (issue 13 groundwork)."""

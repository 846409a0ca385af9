"""The one shared language server session."""

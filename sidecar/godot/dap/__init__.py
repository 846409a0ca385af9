"""The one shared debug adapter session."""

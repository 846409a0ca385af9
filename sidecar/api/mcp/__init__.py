"""The Model Context Protocol endpoint and its tools."""

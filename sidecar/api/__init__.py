"""The operations agents call, declared once; REST, OpenAPI, MCP derive from them."""

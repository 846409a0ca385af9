"""The stdlib-only client and the gdbridge CLI (imports nothing else of sidecar)."""

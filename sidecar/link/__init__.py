"""The link to the addon: frames, the link session, virtual connections."""

"""Who may drive the shared game (the control lease) and who did what (the audit trail)."""

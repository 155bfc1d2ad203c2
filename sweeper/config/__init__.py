"""Configuration: the typed schema, the checks, the key roles and trial identity."""
